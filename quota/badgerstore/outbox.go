package badgerstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/relaycap/relaycap/notify"
)

// Outbox is the notify.Outbox in the store's database: one key per entry
// ("o/" + event id, so a prefix scan is oldest first) and one per once key
// ("n/" + key, expiring after notify.OnceTTL). Put writes both in one
// transaction; Badger's conflict detection on the once key makes two
// concurrent Puts of one key store one event.
type Outbox struct{ s *Store }

var _ notify.Outbox = Outbox{}

// Outbox returns the store's event outbox.
func (s *Store) Outbox() Outbox { return Outbox{s} }

func entryKey(id string) []byte { return []byte("o/" + id) }
func onceKey(key string) []byte { return []byte("n/" + key) }
func hasKey(txn *badger.Txn, k []byte) (bool, error) {
	_, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Put stores ev unless once was put before.
func (o Outbox) Put(ev notify.Event, once string) (bool, error) {
	if ev.ID == "" {
		return false, errors.New("badgerstore: event without an id")
	}
	v, err := json.Marshal(notify.Entry{Event: ev, Next: ev.Time})
	if err != nil {
		return false, err
	}
	return o.update(func(txn *badger.Txn) (bool, error) {
		if once != "" {
			taken, err := hasKey(txn, onceKey(once))
			if err != nil || taken {
				return false, err
			}
			if err := txn.SetEntry(badger.NewEntry(onceKey(once), nil).WithTTL(notify.OnceTTL)); err != nil {
				return false, err
			}
		}
		return true, txn.Set(entryKey(ev.ID), v)
	})
}

// update runs fn in a write transaction, again on a conflict.
func (o Outbox) update(fn func(*badger.Txn) (bool, error)) (bool, error) {
	if err := o.s.enter(); err != nil {
		return false, err
	}
	defer o.s.leave()
	if err := o.s.Writable(o.s.now()); err != nil {
		return false, err
	}
	var res bool
	var err error
	for range 5 {
		err = o.s.db.Update(func(txn *badger.Txn) error {
			var ferr error
			res, ferr = fn(txn)
			return ferr
		})
		if !errors.Is(err, badger.ErrConflict) {
			break
		}
	}
	return res, err
}

// Due returns up to n entries due at now, oldest first.
func (o Outbox) Due(now time.Time, n int) ([]notify.Entry, error) {
	if err := o.s.enter(); err != nil {
		return nil, err
	}
	defer o.s.leave()
	var out []notify.Entry
	err := o.s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("o/"), PrefetchValues: true, PrefetchSize: n})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(out) < n; it.Next() {
			var e notify.Entry
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e) }); err != nil {
				return fmt.Errorf("outbox entry %q: %w", it.Item().Key(), err)
			}
			if !e.Next.After(now) {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

// Retry records a failed attempt on the entry of id.
func (o Outbox) Retry(id string, attempts int, next time.Time) error {
	_, err := o.update(func(txn *badger.Txn) (bool, error) {
		item, err := txn.Get(entryKey(id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return false, nil // done meanwhile
		}
		if err != nil {
			return false, err
		}
		var e notify.Entry
		if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &e) }); err != nil {
			return false, err
		}
		e.Attempts, e.Next = attempts, next
		v, err := json.Marshal(e)
		if err != nil {
			return false, err
		}
		return true, txn.Set(entryKey(id), v)
	})
	return err
}

// Done removes the entry of id.
func (o Outbox) Done(id string) error {
	// Deleting frees space, so it must not be refused on a nearly full disk.
	if err := o.s.enter(); err != nil {
		return err
	}
	defer o.s.leave()
	return o.s.db.Update(func(txn *badger.Txn) error { return txn.Delete(entryKey(id)) })
}
