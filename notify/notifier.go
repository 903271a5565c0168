package notify

import (
	"log/slog"
	"sync"
)

// Notifier is the mail path's side of the outbox: Emit writes an event and
// wakes the deliverer, and never returns an error to its caller. A nil
// *Notifier (no webhook configured) does nothing.
type Notifier struct {
	box  Outbox
	wake func()
	log  *slog.Logger

	// seen holds once keys this process has put or found taken, so a
	// recipient refused a hundred times writes one event, not a hundred
	// attempts. The store stays the authority (other hosts).
	mu   sync.Mutex
	seen map[string]struct{}
}

// maxSeen bounds the once cache; it is cleared when full (the store still
// dedupes, the cache only saves writes).
const maxSeen = 1 << 16

// NewNotifier returns a notifier over box; wake (may be nil) is called
// after each event written.
func NewNotifier(box Outbox, wake func(), log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.Default()
	}
	if wake == nil {
		wake = func() {}
	}
	return &Notifier{box: box, wake: wake, log: log.With("component", "notify"), seen: map[string]struct{}{}}
}

// Emit persists ev, once per once key if once is not empty, and reports
// whether it was written. A store failure is logged: the event is lost,
// the mail is not held for it.
func (n *Notifier) Emit(ev Event, once string) bool {
	if n == nil {
		return false
	}
	if once != "" && n.seenBefore(once) {
		return false
	}
	added, err := n.box.Put(ev, once)
	if err != nil {
		n.log.Error("event lost: writing it to the outbox failed", "type", ev.Type, "account", ev.Account, "err", err)
		return false
	}
	if once != "" {
		n.remember(once)
	}
	if added {
		n.log.Info("event queued", "id", ev.ID, "type", ev.Type, "account", ev.Account)
		n.wake()
	}
	return added
}

func (n *Notifier) seenBefore(once string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.seen[once]
	return ok
}

func (n *Notifier) remember(once string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.seen) >= maxSeen {
		clear(n.seen)
	}
	n.seen[once] = struct{}{}
}
