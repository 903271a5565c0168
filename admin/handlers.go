package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/relaycap/relaycap/quota"
)

// Bounds of what a caller may send.
const (
	maxNameLen   = 320 // an RFC 5321 address at its longest
	maxNoteLen   = 1000
	maxReasonLen = 1000
	maxIDLen     = 200
	maxPage      = 1000
	maxHistory   = 3660
	// showPurchases and showAudit are how many `account show` includes.
	showPurchases = 20
	showAudit     = 10
)

func (s *Server) register() {
	handle(s, http.MethodGet, "/v1/accounts", []string{"status", "after", "limit"}, s.listAccounts)
	handle(s, http.MethodGet, "/v1/accounts/{name}", []string{"audit"}, s.showAccount)
	handle(s, http.MethodPut, "/v1/accounts/{name}", nil, s.putAccount)
	handle(s, http.MethodDelete, "/v1/accounts/{name}", nil, s.deleteAccount)
	handle(s, http.MethodPost, "/v1/accounts/{name}/purchases", nil, s.purchase)
	handle(s, http.MethodPost, "/v1/accounts/{name}/suspend", nil, s.setStatus(quota.StatusSuspended))
	handle(s, http.MethodPost, "/v1/accounts/{name}/complaints", nil, s.complaint)
	handle(s, http.MethodPost, "/v1/accounts/{name}/resume", nil, s.setStatus(quota.StatusActive))
	handle(s, http.MethodPost, "/v1/accounts/{name}/terminate", nil, s.setStatus(quota.StatusTerminated))
	handle(s, http.MethodGet, "/v1/accounts/{name}/usage", nil, s.usage)
	handle(s, http.MethodGet, "/v1/accounts/{name}/history", []string{"from", "to", "days"}, s.history)
	handle(s, http.MethodGet, "/v1/accounts/{name}/audit", []string{"limit"}, s.audit)
	handle(s, http.MethodGet, "/v1/usage/top", []string{"n", "day"}, s.top)
	handle(s, http.MethodGet, "/v1/status", nil, s.status)
}

// name is the account named in the path, normalised and checked.
func (c *call) name() (string, error) {
	n := quota.NormalizeName(c.r.PathValue("name"))
	if n == "" || len(n) > maxNameLen {
		return "", badRequest("account name must be 1 to %d bytes", maxNameLen)
	}
	for _, r := range n {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", badRequest("account name %q holds a space or control character", n)
		}
	}
	return n, nil
}

// intQuery reads a positive integer query parameter.
func (c *call) intQuery(key string, def, max int) (int, error) {
	v := c.r.URL.Query().Get(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, badRequest("%s=%q: want a number from 1 to %d", key, v, max)
	}
	return n, nil
}

func (c *call) dayQuery(key string, def quota.Day) (quota.Day, error) {
	v := c.r.URL.Query().Get(key)
	if v == "" {
		return def, nil
	}
	if _, err := time.Parse("2006-01-02", v); err != nil {
		return "", badRequest("%s=%q: want a date as 2006-01-02", key, v)
	}
	return quota.Day(v), nil
}

func (s *Server) today(c *call) quota.Day { return quota.DayOf(c.now, s.o.Engine.Location()) }

// storeManaged refuses to change a file-managed account: the file wins
// and a change here would not last past the next reload.
func (s *Server) storeManaged(c *call) (string, error) {
	name, err := c.name()
	if err != nil {
		return "", err
	}
	if s.o.Engine.FileManaged(name) {
		where := "the config file"
		if s.o.ConfigPath != "" {
			where = s.o.ConfigPath
		}
		return "", &apiError{http.StatusConflict, CodeFileManaged,
			fmt.Sprintf("account %s is managed in %s; change it there and reload (SIGHUP)", name, where)}
	}
	return name, nil
}

func checkLen(field, v string, max int) error {
	if len(v) > max {
		return badRequest("%s is over %d bytes", field, max)
	}
	return nil
}

func (s *Server) listAccounts(c *call, _ *noBody) (AccountList, error) {
	q := c.r.URL.Query()
	var status quota.Status
	if v := q.Get("status"); v != "" {
		st, err := quota.ParseStatus(v)
		if err != nil {
			return AccountList{}, badRequest("status: %v", err)
		}
		status = st
	}
	limit, err := c.intQuery("limit", 100, maxPage)
	if err != nil {
		return AccountList{}, err
	}
	after := quota.NormalizeName(q.Get("after"))
	// One more than asked tells whether there is a next page. Records the
	// file shadows are skipped, so a full batch of them is followed by the
	// next one: the page must not end while the store has more.
	var stored []quota.AccountRecord
	storeAfter, storeDone := after, false
	refill := func() error {
		if len(stored) > 0 || storeDone {
			return nil
		}
		batch, err := s.o.Accounts.ListAccounts(c.r.Context(), quota.ListQuery{Status: status, After: storeAfter, Limit: limit + 1})
		if err != nil {
			return err
		}
		storeDone = len(batch) < limit+1
		if len(batch) > 0 {
			storeAfter = batch[len(batch)-1].Name
		}
		stored = batch
		return nil
	}
	if err := refill(); err != nil {
		return AccountList{}, err
	}
	var file []Account
	for a := range s.o.Engine.FileAccounts().After(after) {
		if len(file) > limit {
			break // a million file accounts: take no more than the page
		}
		if status == "" || a.Status == status {
			file = append(file, fileAccount(a))
		}
	}
	out := AccountList{Accounts: []Account{}}
	for len(out.Accounts) < limit+1 && (len(stored) > 0 || len(file) > 0) {
		switch {
		case len(stored) > 0 && s.o.Engine.FileManaged(stored[0].Name):
			stored = stored[1:] // the file's account wins
			if err := refill(); err != nil {
				return AccountList{}, err
			}
		case len(file) == 0 || len(stored) > 0 && stored[0].Name < file[0].Name:
			out.Accounts = append(out.Accounts, storeAccount(stored[0], s.today(c)))
			stored = stored[1:]
			if err := refill(); err != nil {
				return AccountList{}, err
			}
		default:
			out.Accounts = append(out.Accounts, file[0])
			file = file[1:]
		}
	}
	if len(out.Accounts) > limit {
		out.Accounts = out.Accounts[:limit]
		out.Next = out.Accounts[limit-1].Name
	}
	return out, nil
}

func (s *Server) showAccount(c *call, _ *noBody) (AccountDetail, error) {
	name, err := c.name()
	if err != nil {
		return AccountDetail{}, err
	}
	n, err := c.intQuery("audit", showAudit, maxPage)
	if err != nil {
		return AccountDetail{}, err
	}
	ctx := c.r.Context()
	var d AccountDetail
	if a, ok := s.o.Engine.FileAccounts().Get(quota.NormalizeName(name)); ok {
		d.Account = fileAccount(a)
	} else {
		r, ok, err := s.o.Accounts.Account(ctx, name)
		if err != nil {
			return AccountDetail{}, err
		}
		if !ok {
			return AccountDetail{}, fmt.Errorf("%w: %s", quota.ErrNoAccount, name)
		}
		d.Account = storeAccount(r, s.today(c))
	}
	if d.Usage, err = s.usage(c, nil); err != nil {
		return AccountDetail{}, err
	}
	purchases, err := s.o.Accounts.Purchases(ctx, name, showPurchases)
	if err != nil {
		return AccountDetail{}, err
	}
	d.Purchases = make([]Purchase, 0, len(purchases))
	for _, p := range purchases {
		d.Purchases = append(d.Purchases, toPurchase(p, false))
	}
	entries, err := s.o.Accounts.Audit(ctx, name, n)
	if err != nil {
		return AccountDetail{}, err
	}
	d.Audit = toAudit(entries)
	return d, nil
}

func (s *Server) putAccount(c *call, req *AccountRequest) (Account, error) {
	name, err := s.storeManaged(c)
	if err != nil {
		return Account{}, err
	}
	if req.DailyLimit != nil && *req.DailyLimit < 0 {
		return Account{}, badRequest("daily_limit must not be negative")
	}
	if req.HourlyLimit != nil && *req.HourlyLimit < 0 {
		return Account{}, badRequest("hourly_limit must not be negative")
	}
	var status quota.Status
	if req.Status != "" {
		if status, err = quota.ParseStatus(req.Status); err != nil {
			return Account{}, badRequest("status: %v", err)
		}
	}
	if req.Note != nil {
		if err := checkLen("note", *req.Note, maxNoteLen); err != nil {
			return Account{}, err
		}
	}
	if err := checkLen("reason", req.Reason, maxReasonLen); err != nil {
		return Account{}, err
	}
	ch := quota.Change{DailyLimit: req.DailyLimit, HourlyLimit: req.HourlyLimit, DryRun: req.DryRun, Note: req.Note, Status: status, Reason: req.Reason,
		Actor: c.actor, Time: c.now, Day: s.today(c)}
	return s.update(c, name, ch, false)
}

// update applies ch to name, logs its audit line and answers the account.
// mustExist refuses to create it.
func (s *Server) update(c *call, name string, ch quota.Change, mustExist bool) (Account, error) {
	apply := ch.Apply(name)
	var entry quota.AuditEntry
	r, err := s.o.Accounts.UpdateAccount(c.r.Context(), name, func(cur quota.AccountRecord, exists bool) (quota.AccountRecord, quota.AuditEntry, error) {
		if mustExist && !exists {
			return cur, quota.AuditEntry{}, fmt.Errorf("%w: %s", quota.ErrNoAccount, name)
		}
		// Suspend, resume and terminate each say why in the audit trail,
		// also when a PUT does them; a new account starts from active.
		from := quota.StatusActive
		if exists {
			from = cur.Status
		}
		if ch.Status != "" && ch.Status != from && ch.Reason == "" && from != quota.StatusTerminated {
			return cur, quota.AuditEntry{}, badRequest("a change of status from %s to %s needs a reason", from, ch.Status)
		}
		next, e, err := apply(cur, exists)
		entry = e
		return next, e, err
	})
	if err != nil {
		return Account{}, err
	}
	s.logAudit(entry)
	return storeAccount(r, ch.Day), nil
}

func (s *Server) setStatus(to quota.Status) func(*call, *ReasonRequest) (Account, error) {
	return func(c *call, req *ReasonRequest) (Account, error) {
		name, err := s.storeManaged(c)
		if err != nil {
			return Account{}, err
		}
		if req.Reason == "" {
			return Account{}, badRequest("reason is required")
		}
		if err := checkLen("reason", req.Reason, maxReasonLen); err != nil {
			return Account{}, err
		}
		ch := quota.Change{Status: to, Reason: req.Reason, Actor: c.actor, Time: c.now, Day: s.today(c)}
		return s.update(c, name, ch, true)
	}
}

func (s *Server) deleteAccount(c *call, _ *noBody) (Deleted, error) {
	name, err := s.storeManaged(c)
	if err != nil {
		return Deleted{}, err
	}
	var entry quota.AuditEntry
	check := quota.Deletion(c.actor, "", c.now, s.today(c))
	err = s.o.Accounts.DeleteAccount(c.r.Context(), name, func(cur quota.AccountRecord) (quota.AuditEntry, error) {
		e, err := check(cur)
		entry = e
		return e, err
	})
	if err != nil {
		return Deleted{}, err
	}
	s.logAudit(entry)
	return Deleted{Account: name, Deleted: true}, nil
}

func (s *Server) purchase(c *call, req *PurchaseRequest) (Purchase, error) {
	name, err := s.storeManaged(c)
	if err != nil {
		return Purchase{}, err
	}
	switch {
	case req.Relays <= 0:
		return Purchase{}, badRequest("relays must be a positive number")
	case req.PurchaseID == "" || len(req.PurchaseID) > maxIDLen:
		return Purchase{}, badRequest("purchase_id must be 1 to %d bytes", maxIDLen)
	}
	p := quota.Purchase{ID: req.PurchaseID, Account: name, Relays: req.Relays, TodayOnly: req.TodayOnly,
		Day: s.today(c), Time: c.now, Actor: c.actor}
	got, replay, err := s.o.Accounts.Purchase(c.r.Context(), p)
	s.o.Observer.Purchased(purchaseResult(replay, err), req.TodayOnly, req.Relays)
	if err != nil {
		return Purchase{}, err
	}
	if !replay {
		s.logPurchase(got)
	}
	return toPurchase(got, replay), nil
}

func (s *Server) status(c *call, _ *noBody) (Status, error) {
	if s.o.Status == nil {
		return Status{}, fmt.Errorf("%w: no status source", quota.ErrStore)
	}
	return s.o.Status(c.r.Context())
}

// purchaseResult names the outcome of a purchase for the metrics.
func purchaseResult(replay bool, err error) string {
	switch {
	case errors.Is(err, quota.ErrPurchaseConflict):
		return "conflict"
	case errors.Is(err, quota.ErrNoAccount), errors.Is(err, quota.ErrTerminated):
		return "refused"
	case err != nil:
		return "error"
	case replay:
		return "replay"
	}
	return "new"
}

func (s *Server) usage(c *call, _ *noBody) (Usage, error) {
	name, err := c.name()
	if err != nil {
		return Usage{}, err
	}
	d, err := s.o.Engine.Usage(c.r.Context(), name, c.now)
	if err != nil {
		return Usage{}, err
	}
	u := Usage{Account: d.Account.Name, Day: string(d.Day), Used: d.Used, Reserved: d.Reserved, Limit: d.Limit,
		Status: string(d.Account.Status), Source: string(d.Account.Source), ResetsAt: d.ResetAt.Format(time.RFC3339),
		DryRun: d.DryRun, HourlyLimit: d.Hour.Limit, HourUsed: d.Hour.Used + d.Hour.Reserved}
	if d.DryRun {
		u.WouldRefuse = d.OverLimit()
	}
	if d.Allowed() {
		u.Remaining = max(0, d.Limit-d.Used-d.Reserved)
	}
	return u, nil
}

func (s *Server) history(c *call, _ *noBody) (History, error) {
	name, err := c.name()
	if err != nil {
		return History{}, err
	}
	days, err := c.intQuery("days", 30, maxHistory)
	if err != nil {
		return History{}, err
	}
	loc := s.o.Engine.Location()
	to, err := c.dayQuery("to", s.today(c))
	if err != nil {
		return History{}, err
	}
	end, _ := to.Time(loc)
	from, err := c.dayQuery("from", quota.DayOf(end.AddDate(0, 0, 1-days).Add(12*time.Hour), loc))
	if err != nil {
		return History{}, err
	}
	if from > to {
		return History{}, badRequest("from %s is after to %s", from, to)
	}
	dcs, err := s.o.Accounts.History(c.r.Context(), name, from, to)
	if err != nil {
		return History{}, err
	}
	h := History{Account: name, From: string(from), To: string(to), Days: []DayUsage{}}
	for _, dc := range dcs {
		h.Days = append(h.Days, DayUsage{Day: string(dc.Day), Used: dc.N})
	}
	return h, nil
}

func (s *Server) audit(c *call, _ *noBody) (Audit, error) {
	name, err := c.name()
	if err != nil {
		return Audit{}, err
	}
	n, err := c.intQuery("limit", 50, maxPage)
	if err != nil {
		return Audit{}, err
	}
	entries, err := s.o.Accounts.Audit(c.r.Context(), name, n)
	if err != nil {
		return Audit{}, err
	}
	return Audit{Account: name, Entries: toAudit(entries)}, nil
}

func (s *Server) top(c *call, _ *noBody) (Top, error) {
	n, err := c.intQuery("n", 10, maxPage)
	if err != nil {
		return Top{}, err
	}
	day, err := c.dayQuery("day", s.today(c))
	if err != nil {
		return Top{}, err
	}
	rows, err := s.o.Accounts.Top(c.r.Context(), day, n)
	if err != nil {
		return Top{}, err
	}
	t := Top{Day: string(day), Accounts: []AccountUsage{}}
	for _, r := range rows {
		t.Accounts = append(t.Accounts, AccountUsage{Account: r.Account, Used: r.Used})
	}
	return t, nil
}

// logAudit writes the one log line of a change (the store keeps the
// entry itself).
func (s *Server) logAudit(e quota.AuditEntry) {
	args := []any{"account", e.Account, "actor", e.Actor, "action", e.Action,
		"before", stateText(e.Before), "after", stateText(e.After), "reason", e.Reason}
	if len(e.QueueIDs) > 0 {
		args = append(args, "queue_ids", strings.Join(e.QueueIDs, ","))
	}
	s.log.Info("audit", args...)
	if s.o.OnAudit != nil {
		s.o.OnAudit(e)
	}
}

func (s *Server) logPurchase(p quota.Purchase) {
	before := p.DailyLimit
	if !p.TodayOnly {
		before -= p.Relays
	}
	action := quota.ActionPurchase
	if p.TodayOnly {
		action = quota.ActionTopUp
	}
	s.log.Info("audit", "account", p.Account, "actor", p.Actor, "action", action,
		"before", fmt.Sprintf("daily_limit=%d day_limit=%d", before, p.DayLimit-p.Relays),
		"after", fmt.Sprintf("daily_limit=%d day_limit=%d", p.DailyLimit, p.DayLimit),
		"reason", fmt.Sprintf("purchase %s of %d relays (today only: %v)", p.ID, p.Relays, p.TodayOnly),
		"purchase_id", p.ID)
}

func stateText(s *quota.State) string {
	if s == nil {
		return "none"
	}
	return s.String()
}

func storeAccount(r quota.AccountRecord, today quota.Day) Account {
	return Account{Name: r.Name, DailyLimit: r.DailyLimit, HourlyLimit: r.HourlyLimit, DryRun: r.DryRun, TopUpToday: r.TopUp(today), Status: string(r.Status),
		Note: r.Note, Source: string(quota.FromStore), Created: r.Created, Updated: r.Updated}
}

func fileAccount(a quota.Account) Account {
	return Account{Name: a.Name, DailyLimit: a.DailyLimit, HourlyLimit: a.HourlyLimit, DryRun: a.DryRun, Status: string(a.Status), Source: string(quota.FromFile)}
}

func toPurchase(p quota.Purchase, replay bool) Purchase {
	return Purchase{PurchaseID: p.ID, Account: p.Account, Relays: p.Relays, TodayOnly: p.TodayOnly, Day: string(p.Day),
		Time: p.Time, Actor: p.Actor, DailyLimit: p.DailyLimit, DayLimit: p.DayLimit, Replay: replay}
}

func toAudit(entries []quota.AuditEntry) []AuditEntry {
	out := make([]AuditEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, AuditEntry{Time: e.Time, Account: e.Account, Actor: e.Actor, Action: string(e.Action),
			Before: toState(e.Before), After: toState(e.After), Reason: e.Reason, PurchaseID: e.PurchaseID, QueueIDs: e.QueueIDs})
	}
	return out
}

func toState(s *quota.State) *State {
	if s == nil {
		return nil
	}
	return &State{DailyLimit: s.DailyLimit, HourlyLimit: s.HourlyLimit, DryRun: s.DryRun, Status: string(s.Status), Note: s.Note, TopUp: s.TopUp}
}
