package admin

import (
	"fmt"

	"github.com/relaycap/relaycap/quota"
)

// maxTrail bounds the audit entries read to count complaints.
const maxTrail = 1000

// complaint records one abuse complaint as an audit entry and, with
// AutoSuspendAfter set, suspends the account when the complaints within
// ComplaintWindow reach it: reason "N complaints within …", their queue
// ids in the entry.
func (s *Server) complaint(c *call, req *ComplaintRequest) (Complaint, error) {
	name, err := s.storeManaged(c)
	if err != nil {
		return Complaint{}, err
	}
	if req.Reason == "" {
		return Complaint{}, badRequest("reason is required")
	}
	if err := checkLen("reason", req.Reason, maxReasonLen); err != nil {
		return Complaint{}, err
	}
	if err := checkLen("queue_id", req.QueueID, 64); err != nil {
		return Complaint{}, err
	}
	s.complaints.Lock()
	defer s.complaints.Unlock()
	day := s.today(c)
	var entry quota.AuditEntry
	r, err := s.o.Accounts.UpdateAccount(c.r.Context(), name, func(cur quota.AccountRecord, exists bool) (quota.AccountRecord, quota.AuditEntry, error) {
		if !exists {
			return cur, quota.AuditEntry{}, fmt.Errorf("%w: %s", quota.ErrNoAccount, name)
		}
		entry = quota.ComplaintEntry(cur, c.actor, req.Reason, req.QueueID, c.now, day)
		return cur, entry, nil
	})
	if err != nil {
		return Complaint{}, err
	}
	s.logAudit(entry)
	trail, err := s.o.Accounts.Audit(c.r.Context(), name, maxTrail)
	if err != nil {
		return Complaint{}, err
	}
	n, ids := quota.Complaints(trail, c.now.Add(-s.o.ComplaintWindow))
	out := Complaint{Account: name, Complaints: n, Window: s.o.ComplaintWindow.String(),
		AutoSuspendAfter: s.o.AutoSuspendAfter, Status: string(r.Status)}
	if s.o.AutoSuspendAfter <= 0 || n < s.o.AutoSuspendAfter || r.Status != quota.StatusActive {
		return out, nil
	}
	acct, err := s.update(c, name, quota.ComplaintSuspension(n, s.o.ComplaintWindow, ids, c.actor, c.now, day), true)
	if err != nil {
		return Complaint{}, err
	}
	out.Suspended, out.Status = true, acct.Status
	return out, nil
}
