package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/relaycap/relaycap/quota"
)

// The accounts live in Redis too, so an admin change made on one host
// applies at the next RCPT on every host. A record, its audit trail and its
// purchases share the account's hash tag, and every change is one
// optimistic transaction (WATCH, MULTI/EXEC) over them: all or nothing,
// serialised per account. Two things cross slots and are written apart:
//   - the name index (a sorted set for ListAccounts), written after the
//     record; a crash between the two leaves a record the list misses
//     until its next change;
//   - a purchase id's claim, which makes ids unique across accounts: it is
//     set (SET NX) before the purchase is applied in the account's slot,
//     and dropped again if the purchase is refused.
// The top-N report is a sorted set per day and the day's total (UsedOn) a
// counter per day, both bumped after each commit, in their own slots: a
// report, not money. A host that dies between a commit and its bump, or a
// bump that fails (logged), leaves them short by that commit.

var _ quota.Accounts = (*Store)(nil)

func (s *Store) accountKey(name string) string { return s.key(name, "acct", "") }
func (s *Store) auditKey(name string) string   { return s.key(name, "audit", "") }
func (s *Store) purchasesKey(name string) string {
	return s.key(name, "purchases", "")
}
func (s *Store) purchaseKey(account, id string) string { return s.key(account, "purchase", id) }
func (s *Store) claimKey(id string) string             { return s.prefix + "{purchase:" + id + "}:claim" }
func (s *Store) indexKey() string                      { return s.prefix + "accounts" }
func (s *Store) topKey(day quota.Day) string           { return s.prefix + "top:" + string(day) }
func (s *Store) totalKey(day quota.Day) string         { return s.prefix + "total:" + string(day) }

// maxRetries bounds the optimistic transactions of one call.
const maxRetries = 20

// Account returns name's record.
func (s *Store) Account(ctx context.Context, name string) (quota.AccountRecord, bool, error) {
	var r quota.AccountRecord
	var ok bool
	err := s.call(ctx, "account", func(ctx context.Context) error {
		var err error
		r, ok, err = getRecord(ctx, s.c, s.accountKey(name))
		return err
	})
	return r, ok, err
}

func getRecord(ctx context.Context, c redis.Cmdable, key string) (quota.AccountRecord, bool, error) {
	var r quota.AccountRecord
	b, err := c.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, false, fmt.Errorf("account record %s: %w", key, err)
	}
	return r, true, nil
}

// ListAccounts returns a page of records in name order.
func (s *Store) ListAccounts(ctx context.Context, q quota.ListQuery) ([]quota.AccountRecord, error) {
	if q.Limit <= 0 {
		return nil, fmt.Errorf("redisstore: list limit %d", q.Limit)
	}
	var out []quota.AccountRecord
	after := "-"
	if q.After != "" {
		after = "(" + q.After
	}
	for len(out) < q.Limit {
		var names []string
		err := s.call(ctx, "list", func(ctx context.Context) error {
			var err error
			names, err = s.c.ZRangeByLex(ctx, s.indexKey(), &redis.ZRangeBy{Min: after, Max: "+", Count: int64(q.Limit)}).Result()
			return err
		})
		if err != nil {
			return nil, err
		}
		recs, err := s.records(ctx, names)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if (q.Status == "" || r.Status == q.Status) && len(out) < q.Limit {
				out = append(out, r)
			}
		}
		if len(names) < q.Limit {
			break
		}
		after = "(" + names[len(names)-1]
	}
	return out, nil
}

// records reads the records of names in one pipeline (on a cluster, one
// per node), in names' order; a name without a record (its deletion raced
// the index) is left out.
func (s *Store) records(ctx context.Context, names []string) ([]quota.AccountRecord, error) {
	if len(names) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.StringCmd, len(names))
	err := s.call(ctx, "list", func(ctx context.Context) error {
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, name := range names {
				cmds[i] = p.Get(ctx, s.accountKey(name))
			}
			return nil
		})
		if errors.Is(err, redis.Nil) { // Pipelined returns the first command's error
			err = nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]quota.AccountRecord, 0, len(names))
	for i, cmd := range cmds {
		b, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("redis list: %w", err)
		}
		var r quota.AccountRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("account record %s: %w", s.accountKey(names[i]), err)
		}
		out = append(out, r)
	}
	return out, nil
}

// watched runs fn in an optimistic transaction over keys (all of one
// account's slot) and retries when another client changed them.
func (s *Store) watched(ctx context.Context, what string, fn func(ctx context.Context, tx *redis.Tx) error, keys ...string) error {
	return s.call(ctx, what, func(ctx context.Context) error {
		for range maxRetries {
			err := s.c.Watch(ctx, func(tx *redis.Tx) error { return fn(ctx, tx) }, keys...)
			if !errors.Is(err, redis.TxFailedErr) {
				return err
			}
		}
		return fmt.Errorf("%s: still contended after %d tries", what, maxRetries)
	})
}

// pass carries an error of the caller's (a refused change) through call
// without counting it as a failure of Redis.
type pass struct{ err error }

func (p pass) Error() string { return p.err.Error() }
func (p pass) Unwrap() error { return p.err }

func unpass(err error) error {
	var p pass
	if errors.As(err, &p) {
		return p.err
	}
	return err
}

// UpdateAccount writes what change makes of name's record, with its audit
// entry, in one transaction.
func (s *Store) UpdateAccount(ctx context.Context, name string, change func(quota.AccountRecord, bool) (quota.AccountRecord, quota.AuditEntry, error)) (quota.AccountRecord, error) {
	var next quota.AccountRecord
	key := s.accountKey(name)
	err := s.watched(ctx, "update account", func(ctx context.Context, tx *redis.Tx) error {
		cur, ok, err := getRecord(ctx, tx, key)
		if err != nil {
			return err
		}
		var entry quota.AuditEntry
		if next, entry, err = change(cur, ok); err != nil {
			return pass{err}
		}
		next.Name = name
		rec, err := json.Marshal(next)
		if err != nil {
			return err
		}
		audit, err := json.Marshal(entry)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, rec, 0)
			p.LPush(ctx, s.auditKey(name), audit)
			return nil
		})
		return err
	}, key)
	if err = unpass(err); err != nil {
		return quota.AccountRecord{}, err
	}
	return next, s.index(ctx, name, true)
}

// index adds name to the list of accounts or removes it.
func (s *Store) index(ctx context.Context, name string, add bool) error {
	return s.call(ctx, "index", func(ctx context.Context) error {
		if add {
			return s.c.ZAdd(ctx, s.indexKey(), redis.Z{Member: name}).Err()
		}
		return s.c.ZRem(ctx, s.indexKey(), name).Err()
	})
}

// DeleteAccount removes name's record, keeping its audit trail, purchases
// and usage.
func (s *Store) DeleteAccount(ctx context.Context, name string, check func(quota.AccountRecord) (quota.AuditEntry, error)) error {
	key := s.accountKey(name)
	err := s.watched(ctx, "delete account", func(ctx context.Context, tx *redis.Tx) error {
		cur, ok, err := getRecord(ctx, tx, key)
		if err != nil {
			return err
		}
		if !ok {
			return pass{quota.ErrNoAccount}
		}
		entry, err := check(cur)
		if err != nil {
			return pass{err}
		}
		audit, err := json.Marshal(entry)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, key)
			p.LPush(ctx, s.auditKey(name), audit)
			return nil
		})
		return err
	}, key)
	if err = unpass(err); err != nil {
		return err
	}
	return s.index(ctx, name, false)
}

// Purchase applies p once per purchase id: the id is claimed first (its
// own slot), then applied in the account's slot with its record, its
// result and its audit entry in one transaction.
func (s *Store) Purchase(ctx context.Context, p quota.Purchase) (quota.Purchase, bool, error) {
	req, err := json.Marshal(p)
	if err != nil {
		return quota.Purchase{}, false, err
	}
	var claimed bool
	var prior []byte
	err = s.call(ctx, "claim purchase", func(ctx context.Context) error {
		var err error
		if claimed, err = s.c.SetNX(ctx, s.claimKey(p.ID), req, 0).Result(); err != nil || claimed {
			return err
		}
		prior, err = s.c.Get(ctx, s.claimKey(p.ID)).Bytes()
		return err
	})
	if err != nil {
		return quota.Purchase{}, false, err
	}
	if !claimed {
		var first quota.Purchase
		if err := json.Unmarshal(prior, &first); err != nil {
			return quota.Purchase{}, false, fmt.Errorf("purchase claim %s: %w", p.ID, err)
		}
		if _, err := quota.ReplayOf(first, p); err != nil {
			return quota.Purchase{}, false, err
		}
		// The same request: answer its result, or apply it if the first
		// call claimed the id and stopped there.
	}
	out, replay, err := s.applyPurchase(ctx, p)
	if err != nil && claimed && !errors.Is(err, quota.ErrPurchaseConflict) {
		// Refused (no such account, terminated): the id stays free.
		s.call(context.WithoutCancel(ctx), "unclaim purchase", func(ctx context.Context) error {
			return s.c.Del(ctx, s.claimKey(p.ID)).Err()
		})
	}
	return out, replay, err
}

func (s *Store) applyPurchase(ctx context.Context, p quota.Purchase) (quota.Purchase, bool, error) {
	var out quota.Purchase
	var replay bool
	acctKey, resultKey := s.accountKey(p.Account), s.purchaseKey(p.Account, p.ID)
	err := s.watched(ctx, "purchase", func(ctx context.Context, tx *redis.Tx) error {
		b, err := tx.Get(ctx, resultKey).Bytes()
		if err == nil {
			replay = true
			var first quota.Purchase
			if err := json.Unmarshal(b, &first); err != nil {
				return err
			}
			out, err = quota.ReplayOf(first, p)
			return pass{err}
		}
		if !errors.Is(err, redis.Nil) {
			return err
		}
		cur, ok, err := getRecord(ctx, tx, acctKey)
		if err != nil {
			return err
		}
		if !ok {
			return pass{quota.ErrNoAccount}
		}
		next, done, err := quota.ApplyPurchase(cur, p)
		if err != nil {
			return pass{err}
		}
		out = done
		rec, err := json.Marshal(next)
		if err != nil {
			return err
		}
		result, err := json.Marshal(done)
		if err != nil {
			return err
		}
		audit, err := json.Marshal(quota.PurchaseAudit(done, cur, next))
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(pl redis.Pipeliner) error {
			pl.Set(ctx, acctKey, rec, 0)
			pl.Set(ctx, resultKey, result, 0)
			pl.LPush(ctx, s.purchasesKey(p.Account), p.ID)
			pl.LPush(ctx, s.auditKey(p.Account), audit)
			return nil
		})
		return err
	}, acctKey, resultKey)
	if err = unpass(err); err != nil {
		return quota.Purchase{}, false, err
	}
	return out, replay, nil
}

// Purchases returns up to n of account's purchases, newest first.
func (s *Store) Purchases(ctx context.Context, account string, n int) ([]quota.Purchase, error) {
	var out []quota.Purchase
	err := s.call(ctx, "purchases", func(ctx context.Context) error {
		ids, err := s.c.LRange(ctx, s.purchasesKey(account), 0, int64(n)-1).Result()
		if err != nil || len(ids) == 0 {
			return err
		}
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = s.purchaseKey(account, id)
		}
		vals, err := s.c.MGet(ctx, keys...).Result()
		if err != nil {
			return err
		}
		for i, v := range vals {
			str, ok := v.(string)
			if !ok {
				return fmt.Errorf("purchase list of %s names missing purchase %q", account, ids[i])
			}
			var p quota.Purchase
			if err := json.Unmarshal([]byte(str), &p); err != nil {
				return err
			}
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// Audit returns up to n of account's audit entries, newest first.
func (s *Store) Audit(ctx context.Context, account string, n int) ([]quota.AuditEntry, error) {
	var out []quota.AuditEntry
	err := s.call(ctx, "audit", func(ctx context.Context) error {
		vals, err := s.c.LRange(ctx, s.auditKey(account), 0, int64(n)-1).Result()
		if err != nil {
			return err
		}
		for _, v := range vals {
			var e quota.AuditEntry
			if err := json.Unmarshal([]byte(v), &e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// History returns account's committed relays per day in [from, to]: one
// MGET of the day keys, which share the account's slot.
func (s *Store) History(ctx context.Context, account string, from, to quota.Day) ([]quota.DayCount, error) {
	start, err := time.Parse("2006-01-02", string(from))
	if err != nil {
		return nil, err
	}
	var days []quota.Day
	for d := start; quota.Day(d.Format("2006-01-02")) <= to && len(days) < 10000; d = d.AddDate(0, 0, 1) {
		days = append(days, quota.Day(d.Format("2006-01-02")))
	}
	if len(days) == 0 {
		return nil, nil
	}
	keys := make([]string, len(days))
	for i, d := range days {
		keys[i] = s.key(account, "u", string(d))
	}
	var out []quota.DayCount
	err = s.call(ctx, "history", func(ctx context.Context) error {
		vals, err := s.c.MGet(ctx, keys...).Result()
		if err != nil {
			return err
		}
		for i, v := range vals {
			str, ok := v.(string)
			if !ok {
				continue
			}
			var n int64
			if _, err := fmt.Sscan(str, &n); err != nil {
				return err
			}
			out = append(out, quota.DayCount{Day: days[i], N: n})
		}
		return nil
	})
	return out, err
}

// Top returns up to n accounts with the most relays on day, most first,
// ties by name.
func (s *Store) Top(ctx context.Context, day quota.Day, n int) ([]quota.AccountUsage, error) {
	if n <= 0 {
		return nil, nil
	}
	var all []redis.Z
	err := s.call(ctx, "top", func(ctx context.Context) error {
		// Everyone with at least the n-th score, so that ties at the cut
		// are ordered by name.
		nth, err := s.c.ZRevRangeWithScores(ctx, s.topKey(day), int64(n)-1, int64(n)-1).Result()
		if err != nil {
			return err
		}
		min := "-inf"
		if len(nth) == 1 {
			min = fmt.Sprint(nth[0].Score)
		}
		all, err = s.c.ZRangeByScoreWithScores(ctx, s.topKey(day), &redis.ZRangeBy{Min: min, Max: "+inf"}).Result()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]quota.AccountUsage, 0, len(all))
	for _, z := range all {
		out = append(out, quota.AccountUsage{Account: z.Member.(string), Used: int64(z.Score)})
	}
	slices.SortFunc(out, func(a, b quota.AccountUsage) int {
		if a.Used != b.Used {
			return int(b.Used - a.Used)
		}
		return strings.Compare(a.Account, b.Account)
	})
	return out[:min(n, len(out))], nil
}

// UsedOn returns the relays every account committed on day, as the
// commits' reports added them up (see bumpTop).
func (s *Store) UsedOn(ctx context.Context, day quota.Day) (int64, error) {
	var n int64
	err := s.call(ctx, "used_on", func(ctx context.Context) error {
		var err error
		n, err = s.c.Get(ctx, s.totalKey(day)).Int64()
		if errors.Is(err, redis.Nil) {
			n, err = 0, nil
		}
		return err
	})
	return n, err
}

// bumpTop adds a commit's relays to the days' top-N reports and totals.
// It is a separate write after the commit: a report, not money.
func (s *Store) bumpTop(ctx context.Context, account string, add []quota.DayCount) {
	err := s.call(ctx, "top", func(ctx context.Context) error {
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, dc := range add {
				p.ZIncrBy(ctx, s.topKey(dc.Day), float64(dc.N), account)
				p.PExpire(ctx, s.topKey(dc.Day), s.keep)
				if !dc.Day.IsHour() { // the burst brake's hours are not the day's relays
					p.IncrBy(ctx, s.totalKey(dc.Day), dc.N)
					p.PExpire(ctx, s.totalKey(dc.Day), s.keep)
				}
			}
			return nil
		})
		return err
	})
	if err != nil {
		s.log.Warn("top-N report not updated", "account", account, "err", err)
	}
}
