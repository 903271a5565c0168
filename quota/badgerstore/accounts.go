package badgerstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/relaycap/relaycap/quota"
)

// Keys of the accounts store, beside the usage counters ("u/" NAME \0 DAY,
// and "t/" DAY for the total of every account on DAY):
//
//	a/NAME                     the account record
//	p/ID                       a purchase, by its idempotency key
//	ap/NAME \0 TIME ID         index of an account's purchases
//	au/NAME \0 TIME SEQ        an audit entry
//
// TIME is big-endian Unix nanoseconds, so a prefix scan reads in time
// order. None of these keys expires: they are money and its paper trail.
func accountKey(name string) []byte { return []byte("a/" + name) }
func purchaseKey(id string) []byte  { return []byte("p/" + id) }

func purchaseIndexKey(p quota.Purchase) []byte {
	return append(timeKey("ap/", p.Account, p.Time), p.ID...)
}

func timeKey(prefix, name string, t time.Time) []byte {
	k := make([]byte, 0, len(prefix)+len(name)+1+8+4)
	k = append(k, prefix...)
	k = append(k, name...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, uint64(t.UnixNano()))
}

type accountJSON struct {
	DailyLimit  int64          `json:"daily_limit"`
	HourlyLimit int64          `json:"hourly_limit,omitempty"`
	DryRun      bool           `json:"dry_run,omitempty"`
	Status      quota.Status   `json:"status"`
	Note        string         `json:"note,omitempty"`
	TopUps      []dayCountJSON `json:"top_ups,omitempty"`
	Created     time.Time      `json:"created,omitzero"`
	Updated     time.Time      `json:"updated,omitzero"`
}

type dayCountJSON struct {
	Day quota.Day `json:"day"`
	N   int64     `json:"n"`
}

type stateJSON struct {
	DailyLimit  int64        `json:"daily_limit"`
	HourlyLimit int64        `json:"hourly_limit,omitempty"`
	DryRun      bool         `json:"dry_run,omitempty"`
	Status      quota.Status `json:"status"`
	Note        string       `json:"note,omitempty"`
	TopUp       int64        `json:"top_up,omitempty"`
}

type auditJSON struct {
	Time       time.Time    `json:"time"`
	Actor      string       `json:"actor"`
	Action     quota.Action `json:"action"`
	Before     *stateJSON   `json:"before,omitempty"`
	After      *stateJSON   `json:"after,omitempty"`
	Reason     string       `json:"reason,omitempty"`
	PurchaseID string       `json:"purchase_id,omitempty"`
	QueueIDs   []string     `json:"queue_ids,omitempty"`
}

type purchaseJSON struct {
	Account    string    `json:"account"`
	Relays     int64     `json:"relays"`
	TodayOnly  bool      `json:"today_only,omitempty"`
	Day        quota.Day `json:"day"`
	Time       time.Time `json:"time"`
	Actor      string    `json:"actor"`
	DailyLimit int64     `json:"daily_limit"`
	DayLimit   int64     `json:"day_limit"`
}

func toAccountJSON(r quota.AccountRecord) accountJSON {
	j := accountJSON{DailyLimit: r.DailyLimit, HourlyLimit: r.HourlyLimit, DryRun: r.DryRun, Status: r.Status, Note: r.Note, Created: r.Created, Updated: r.Updated}
	for _, dc := range r.TopUps {
		j.TopUps = append(j.TopUps, dayCountJSON{dc.Day, dc.N})
	}
	return j
}

func (j accountJSON) record(name string) quota.AccountRecord {
	r := quota.AccountRecord{Name: name, DailyLimit: j.DailyLimit, HourlyLimit: j.HourlyLimit, DryRun: j.DryRun, Status: j.Status, Note: j.Note, Created: j.Created, Updated: j.Updated}
	for _, dc := range j.TopUps {
		r.TopUps = append(r.TopUps, quota.DayCount{Day: dc.Day, N: dc.N})
	}
	return r
}

func toStateJSON(s *quota.State) *stateJSON {
	if s == nil {
		return nil
	}
	return &stateJSON{DailyLimit: s.DailyLimit, HourlyLimit: s.HourlyLimit, DryRun: s.DryRun, Status: s.Status, Note: s.Note, TopUp: s.TopUp}
}

func (j *stateJSON) state() *quota.State {
	if j == nil {
		return nil
	}
	return &quota.State{DailyLimit: j.DailyLimit, HourlyLimit: j.HourlyLimit, DryRun: j.DryRun, Status: j.Status, Note: j.Note, TopUp: j.TopUp}
}

func toPurchaseJSON(p quota.Purchase) purchaseJSON {
	return purchaseJSON{Account: p.Account, Relays: p.Relays, TodayOnly: p.TodayOnly, Day: p.Day,
		Time: p.Time, Actor: p.Actor, DailyLimit: p.DailyLimit, DayLimit: p.DayLimit}
}

func (j purchaseJSON) purchase(id string) quota.Purchase {
	return quota.Purchase{ID: id, Account: j.Account, Relays: j.Relays, TodayOnly: j.TodayOnly, Day: j.Day,
		Time: j.Time, Actor: j.Actor, DailyLimit: j.DailyLimit, DayLimit: j.DayLimit}
}

// view runs fn in a read transaction of an open store.
func (s *Store) view(ctx context.Context, fn func(*badger.Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	return s.db.View(fn)
}

// update runs fn in one write transaction, alone among the accounts
// writers, on a store with room to write.
func (s *Store) update(ctx context.Context, fn func(*badger.Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := s.Writable(s.now()); err != nil {
		return err
	}
	s.acctMu.Lock()
	defer s.acctMu.Unlock()
	return s.db.Update(fn)
}

func getJSON(txn *badger.Txn, key []byte, v any) (bool, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, item.Value(func(b []byte) error {
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("record %q: %w", key, err)
		}
		return nil
	})
}

func setJSON(txn *badger.Txn, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set(key, b)
}

func getAccount(txn *badger.Txn, name string) (quota.AccountRecord, bool, error) {
	var j accountJSON
	ok, err := getJSON(txn, accountKey(name), &j)
	if !ok || err != nil {
		return quota.AccountRecord{}, false, err
	}
	return j.record(name), true, nil
}

func (s *Store) putAudit(txn *badger.Txn, e quota.AuditEntry) error {
	key := binary.BigEndian.AppendUint32(timeKey("au/", e.Account, e.Time), s.auditSeq.Add(1))
	return setJSON(txn, key, auditJSON{Time: e.Time, Actor: e.Actor, Action: e.Action,
		Before: toStateJSON(e.Before), After: toStateJSON(e.After), Reason: e.Reason, PurchaseID: e.PurchaseID, QueueIDs: e.QueueIDs})
}

// Account returns name's record.
func (s *Store) Account(ctx context.Context, name string) (quota.AccountRecord, bool, error) {
	var r quota.AccountRecord
	var ok bool
	err := s.view(ctx, func(txn *badger.Txn) error {
		var err error
		r, ok, err = getAccount(txn, name)
		return err
	})
	return r, ok, err
}

// ListAccounts returns a page of records in name order.
func (s *Store) ListAccounts(ctx context.Context, q quota.ListQuery) ([]quota.AccountRecord, error) {
	if q.Limit <= 0 {
		return nil, fmt.Errorf("badgerstore: list limit %d", q.Limit)
	}
	var out []quota.AccountRecord
	err := s.view(ctx, func(txn *badger.Txn) error {
		prefix := []byte("a/")
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		// "\x00" sorts right after After itself: the page starts behind it.
		for it.Seek(append(accountKey(q.After), 0)); it.Valid() && len(out) < q.Limit; it.Next() {
			var j accountJSON
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &j) }); err != nil {
				return err
			}
			if q.Status != "" && j.Status != q.Status {
				continue
			}
			out = append(out, j.record(string(it.Item().Key()[len(prefix):])))
		}
		return nil
	})
	return out, err
}

// UpdateAccount writes what change makes of name's record, with its audit
// entry, in one transaction.
func (s *Store) UpdateAccount(ctx context.Context, name string, change func(quota.AccountRecord, bool) (quota.AccountRecord, quota.AuditEntry, error)) (quota.AccountRecord, error) {
	var next quota.AccountRecord
	err := s.update(ctx, func(txn *badger.Txn) error {
		cur, ok, err := getAccount(txn, name)
		if err != nil {
			return err
		}
		var entry quota.AuditEntry
		if next, entry, err = change(cur, ok); err != nil {
			return err
		}
		next.Name = name
		if err := setJSON(txn, accountKey(name), toAccountJSON(next)); err != nil {
			return err
		}
		return s.putAudit(txn, entry)
	})
	if err != nil {
		return quota.AccountRecord{}, err
	}
	return next, nil
}

// DeleteAccount removes name's record, keeping its audit trail, purchases
// and usage.
func (s *Store) DeleteAccount(ctx context.Context, name string, check func(quota.AccountRecord) (quota.AuditEntry, error)) error {
	return s.update(ctx, func(txn *badger.Txn) error {
		cur, ok, err := getAccount(txn, name)
		if err != nil {
			return err
		}
		if !ok {
			return quota.ErrNoAccount
		}
		entry, err := check(cur)
		if err != nil {
			return err
		}
		if err := txn.Delete(accountKey(name)); err != nil {
			return err
		}
		return s.putAudit(txn, entry)
	})
}

// Purchase applies p once per purchase id, in one transaction with its
// record, index entry and audit entry.
func (s *Store) Purchase(ctx context.Context, p quota.Purchase) (quota.Purchase, bool, error) {
	var out quota.Purchase
	var replay bool
	err := s.update(ctx, func(txn *badger.Txn) error {
		var first purchaseJSON
		found, err := getJSON(txn, purchaseKey(p.ID), &first)
		if err != nil {
			return err
		}
		if found {
			replay = true
			out, err = quota.ReplayOf(first.purchase(p.ID), p)
			return err
		}
		cur, ok, err := getAccount(txn, p.Account)
		if err != nil {
			return err
		}
		if !ok {
			return quota.ErrNoAccount
		}
		next, done, err := quota.ApplyPurchase(cur, p)
		if err != nil {
			return err
		}
		out = done
		if err := setJSON(txn, accountKey(p.Account), toAccountJSON(next)); err != nil {
			return err
		}
		if err := setJSON(txn, purchaseKey(p.ID), toPurchaseJSON(done)); err != nil {
			return err
		}
		if err := txn.Set(purchaseIndexKey(done), nil); err != nil {
			return err
		}
		return s.putAudit(txn, quota.PurchaseAudit(done, cur, next))
	})
	if err != nil {
		return quota.Purchase{}, false, err
	}
	return out, replay, nil
}

// newestFirst calls fn for up to n keys under prefix, the last one first.
func newestFirst(txn *badger.Txn, prefix []byte, n int, values bool, fn func(*badger.Item) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true, PrefetchValues: values, PrefetchSize: 16})
	defer it.Close()
	seen := 0
	for it.Seek(append(bytes.Clone(prefix), 0xff)); it.Valid() && seen < n; it.Next() {
		if err := fn(it.Item()); err != nil {
			return err
		}
		seen++
	}
	return nil
}

// Purchases returns up to n of account's purchases, newest first.
func (s *Store) Purchases(ctx context.Context, account string, n int) ([]quota.Purchase, error) {
	var out []quota.Purchase
	err := s.view(ctx, func(txn *badger.Txn) error {
		prefix := []byte("ap/" + account + "\x00")
		return newestFirst(txn, prefix, n, false, func(item *badger.Item) error {
			id := string(item.Key()[len(prefix)+8:])
			var j purchaseJSON
			if ok, err := getJSON(txn, purchaseKey(id), &j); err != nil || !ok {
				return cmpOr(err, fmt.Errorf("purchase index names missing purchase %q", id))
			}
			out = append(out, j.purchase(id))
			return nil
		})
	})
	return out, err
}

func cmpOr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// Audit returns up to n of account's audit entries, newest first.
func (s *Store) Audit(ctx context.Context, account string, n int) ([]quota.AuditEntry, error) {
	var out []quota.AuditEntry
	err := s.view(ctx, func(txn *badger.Txn) error {
		return newestFirst(txn, []byte("au/"+account+"\x00"), n, true, func(item *badger.Item) error {
			var j auditJSON
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &j) }); err != nil {
				return err
			}
			out = append(out, quota.AuditEntry{Time: j.Time, Account: account, Actor: j.Actor, Action: j.Action,
				Before: j.Before.state(), After: j.After.state(), Reason: j.Reason, PurchaseID: j.PurchaseID, QueueIDs: j.QueueIDs})
			return nil
		})
	})
	return out, err
}

// History returns account's committed relays per day in [from, to].
func (s *Store) History(ctx context.Context, account string, from, to quota.Day) ([]quota.DayCount, error) {
	var out []quota.DayCount
	err := s.view(ctx, func(txn *badger.Txn) error {
		prefix := []byte("u/" + account + "\x00")
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 32})
		defer it.Close()
		for it.Seek(usageKey(account, from)); it.Valid(); it.Next() {
			day := quota.Day(it.Item().Key()[len(prefix):])
			if day > to {
				break
			}
			n, err := countOf(it.Item())
			if err != nil {
				return err
			}
			out = append(out, quota.DayCount{Day: day, N: n})
		}
		return nil
	})
	return out, err
}

// UsedOn returns the relays every account committed on day: one key,
// written with the usage records it sums (see writeUsage).
func (s *Store) UsedOn(ctx context.Context, day quota.Day) (int64, error) {
	var n int64
	err := s.view(ctx, func(txn *badger.Txn) error {
		var err error
		n, err = readCount(txn, dayTotalKey(day))
		return err
	})
	return n, err
}

// Top returns the n accounts with the most relays on day. Usage keys lead
// with the account, so this reads the key of every account's every kept
// day: a call for the abuse desk, not for the mail path.
func (s *Store) Top(ctx context.Context, day quota.Day, n int) ([]quota.AccountUsage, error) {
	var all []quota.AccountUsage
	suffix := "\x00" + string(day)
	err := s.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("u/")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			key := it.Item().Key()
			if !bytes.HasSuffix(key, []byte(suffix)) {
				continue
			}
			used, err := countOf(it.Item())
			if err != nil {
				return err
			}
			all = append(all, quota.AccountUsage{Account: strings.TrimSuffix(string(key[2:]), suffix), Used: used})
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Used != all[j].Used {
			return all[i].Used > all[j].Used
		}
		return all[i].Account < all[j].Account
	})
	return all[:min(n, len(all))], nil
}
