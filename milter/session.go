package milter

import (
	"context"
	"errors"
	"strings"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/reply"
)

// session serves one milter connection, that is one SMTP connection, which
// may carry several messages.
type session struct {
	// The callbacks relaycap does without (HELO, DATA, end of header, body,
	// unknown commands, a new connection) answer continue.
	gomilter.NoOpMilter

	srv        *Server
	clientAddr string

	// per message; reset by MAIL, abort and end of message
	set         *Settings
	login       string
	txn         quota.Txn
	refused     int
	wouldRefuse int            // dry run: recipients let through that enforcing would refuse
	strip       map[string]int // lower-case header name -> occurrences seen
	messageID   string
}

func (s *session) reset() {
	if n := s.txn.Reserved(); n > 0 {
		s.srv.obs.Held(-n)
	}
	if err := s.srv.engine.Release(context.Background(), &s.txn); err != nil {
		// The holds expire on their own; until then they only cost capacity.
		s.srv.log.Warn("release failed", "err", err)
	}
	s.set, s.login, s.refused, s.wouldRefuse, s.strip, s.messageID = nil, "", 0, 0, nil, ""
}

func (s *session) Connect(host, family string, port uint16, addr string, m gomilter.Modifier) (*gomilter.Response, error) {
	s.clientAddr = addr
	return gomilter.RespContinue, nil
}

func (s *session) MailFrom(from, esmtpArgs string, m gomilter.Modifier) (*gomilter.Response, error) {
	// A new MAIL ends whatever the last one left open.
	s.reset()
	s.set = s.srv.settings.Load()
	s.strip = make(map[string]int, 1+len(s.set.Extra))
	for _, name := range s.set.names() {
		s.strip[strings.ToLower(name)] = 0
	}
	// {auth_authen} is sent at the MAIL stage (we request it there).
	s.login = m.Get(gomilter.MacroAuthAuthen)
	if s.login == "" && s.set.RejectUnauthenticated {
		s.srv.obs.Refused("unauthenticated")
		return respond(reply.AuthRequired())
	}
	return gomilter.RespContinue, nil
}

func (s *session) RcptTo(rcpt, esmtpArgs string, m gomilter.Modifier) (*gomilter.Response, error) {
	if s.set == nil {
		// Postfix never does this; answering continue would let the
		// recipient through uncounted.
		s.srv.log.Error("RCPT without MAIL from the MTA", "rcpt", rcpt)
		s.srv.obs.Refused("tempfail")
		return respond(reply.TemporaryFailure())
	}
	if s.login == "" {
		return gomilter.RespContinue, nil
	}
	d, err := s.srv.engine.Reserve(context.Background(), &s.txn, s.login, s.srv.now())
	if err != nil {
		s.refused++
		s.srv.obs.Refused("tempfail")
		s.srv.log.Error("reserve failed", "account", s.login, "rcpt", rcpt, "err", err)
		return respond(reply.TemporaryFailure())
	}
	if !d.Allowed() {
		s.refused++
		s.srv.obs.Refused(d.Verdict.String())
		r := reply.ForDecision(d, s.set.OverQuotaReject)
		s.srv.log.Debug("recipient refused", "account", d.Account.Name, "rcpt", rcpt, "verdict", d.Verdict, "reply", r.String())
		if s.srv.events != nil {
			s.srv.events.Refused(d, s.srv.now())
		}
		return respond(r)
	}
	if d.WouldRefuse != quota.NoVerdict {
		s.wouldRefuse++
		s.srv.obs.WouldRefuse(d.WouldRefuse.String())
		s.srv.log.Info("recipient would be refused (dry run)", "account", d.Account.Name, "rcpt", rcpt,
			"would_refuse", d.WouldRefuse, "used", d.Used, "reserved", d.Reserved, "limit", d.Limit)
	}
	s.srv.obs.Held(1)
	return gomilter.RespContinue, nil
}

func (s *session) Header(name, value string, m gomilter.Modifier) (*gomilter.Response, error) {
	lname := strings.ToLower(name)
	if _, ok := s.strip[lname]; ok {
		s.strip[lname]++
	}
	if lname == "message-id" && s.messageID == "" {
		s.messageID = strings.TrimSpace(value)
	}
	return gomilter.RespContinue, nil
}

func (s *session) EndOfMessage(m gomilter.Modifier) (*gomilter.Response, error) {
	defer s.reset()
	if s.set == nil {
		// No MAIL since the last message ended: accepting would pass a
		// message nobody counted and whose headers nobody checked.
		s.srv.log.Error("end of message without MAIL from the MTA", "queue_id", m.Get(gomilter.MacroQueueId))
		return gomilter.RespTempFail, nil
	}
	queueID := m.Get(gomilter.MacroQueueId)
	if err := s.removeForgeries(m); err != nil {
		return nil, err
	}
	if s.login == "" || s.txn.Reserved() == 0 {
		return gomilter.RespAccept, nil
	}
	now := s.srv.now()
	accepted := s.txn.Reserved()
	token, err := s.seal(queueID, now)
	if err != nil {
		s.logNothingCounted(queueID, accepted, "tempfail", err)
		return respond(reply.TemporaryFailure())
	}
	if err := s.addHeaders(m, token); err != nil {
		return nil, err // the connection is broken; Cleanup releases
	}
	d, err := s.srv.engine.Commit(context.Background(), &s.txn, now)
	s.srv.obs.Held(-accepted) // committed or, on an error or a refusal, dropped
	if err != nil {
		s.logNothingCounted(queueID, accepted, "tempfail", err)
		return respond(reply.TemporaryFailure())
	}
	if !d.Allowed() {
		// Suspended or terminated since its recipients were accepted: the
		// whole message is refused, its reservations are released.
		r := reply.ForDecision(d, s.set.OverQuotaReject)
		s.logNothingCounted(queueID, accepted, "refused", nil, "verdict", d.Verdict, "reply", r.String())
		for range accepted {
			s.srv.obs.Refused(d.Verdict.String())
		}
		return respond(r)
	}
	line := []any{"account", d.Account.Name, "queue_id", queueID,
		"accepted", accepted, "refused", s.refused, "used", d.Used, "limit", d.Limit, "result", "accept"}
	if s.wouldRefuse > 0 {
		line = append(line, "would_refuse", s.wouldRefuse)
	}
	s.srv.log.Info("decision", line...)
	if s.srv.events != nil {
		s.srv.events.Committed(d, accepted, now)
	}
	s.srv.obs.Decided("accept", accepted)
	return gomilter.RespAccept, nil
}

func (s *session) seal(queueID string, now time.Time) (string, error) {
	if s.set.Seal == nil {
		return "", errors.New("no identification key loaded")
	}
	return s.set.Seal(Stamp{
		Account:    s.txn.Account(),
		Time:       now,
		QueueID:    queueID,
		ClientAddr: s.clientAddr,
		Recipients: int(s.txn.Reserved()),
		MessageID:  s.messageID,
	})
}

// removeForgeries deletes every client copy of our headers. The index of a
// header change counts per name; deleting the last copy first keeps the
// indexes of the others valid whatever the MTA does with deleted slots.
func (s *session) removeForgeries(m gomilter.Modifier) error {
	for _, name := range s.set.names() {
		for i := s.strip[strings.ToLower(name)]; i >= 1; i-- {
			if err := m.ChangeHeader(i, name, ""); err != nil {
				return err
			}
		}
	}
	return nil
}

// addHeaders puts the token right below the MTA's own Received: line
// (Postfix's Received: is the first header and is not shown to milters,
// hence index 1), followed by the extra headers.
func (s *session) addHeaders(m gomilter.Modifier, token string) error {
	if err := m.InsertHeader(1, s.set.IDHeader, token); err != nil {
		return err
	}
	for i, h := range s.set.Extra {
		if err := m.InsertHeader(2+i, h.Name, h.Value); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) Abort(m gomilter.Modifier) error {
	s.logAborted(m, "aborted")
	s.reset()
	return nil
}

// Cleanup runs when the connection ends, also when it is lost mid-message.
func (s *session) Cleanup(m gomilter.Modifier) {
	s.logAborted(m, "connection_lost")
	s.reset()
}

// logAborted writes the decision line of a message that ended without end
// of message, if it got as far as a recipient.
func (s *session) logAborted(m gomilter.Modifier, result string) {
	if s.txn.Reserved() > 0 || s.refused > 0 {
		s.logNothingCounted(m.Get(gomilter.MacroQueueId), s.txn.Reserved(), result, nil)
	}
}

// logNothingCounted writes the decision line of a message that ended with
// nothing counted: the held relays join the refused recipients.
func (s *session) logNothingCounted(queueID string, held int64, result string, err error, more ...any) {
	args := append([]any{"account", quota.NormalizeName(s.login), "queue_id", queueID,
		"accepted", 0, "refused", s.refused + int(held), "result", result}, more...)
	s.srv.obs.Decided(result, 0)
	if err != nil {
		s.srv.log.Error("decision", append(args, "err", err)...)
		return
	}
	s.srv.log.Info("decision", args...)
}

// respond turns a reply into a milter response; a reply is always valid, so
// an error here is a programming error.
func respond(r reply.Reply) (*gomilter.Response, error) {
	resp, err := gomilter.RejectWithCodeAndReason(r.Code, r.Status+" "+r.Text)
	if err != nil {
		return gomilter.RespTempFail, err
	}
	return resp, nil
}

// names lists the header names whose client copies are removed.
func (set *Settings) names() []string {
	names := make([]string, 0, 1+len(set.Extra))
	if set.IDHeader != "" {
		names = append(names, set.IDHeader)
	}
	for _, h := range set.Extra {
		names = append(names, h.Name)
	}
	return names
}
