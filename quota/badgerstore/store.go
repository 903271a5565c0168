// Package badgerstore keeps relaycap's usage counters and store-managed
// accounts (with their purchases and audit trail) in an embedded Badger
// database. One process owns the directory
// (Badger locks it); every commit is one Badger transaction.
package badgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/relaycap/relaycap/quota"
)

// Options tune the store.
type Options struct {
	// HistoryDays is how long a day's usage is kept before it expires.
	HistoryDays int
	// KeepUsage, if set, replaces the lifetime HistoryDays gives a day's
	// usage after its last write (tests of the expiry).
	KeepUsage time.Duration
	// SyncWrites makes every commit wait for fsync, so a committed relay
	// survives a power loss, not only a crash of the process.
	SyncWrites bool
	// MinFreeBytes is the free space the store leaves on its filesystem:
	// below it, Open and every write fail with ErrLowSpace. 0 disables it.
	MinFreeBytes uint64
	// Logger receives Badger's own log lines.
	Logger *slog.Logger
}

// Store keeps one host's daily usage on Badger (a quota.Store, behind
// a quota.Local for the holds) and the store-managed accounts.
type Store struct {
	db      *badger.DB
	dir     string
	minFree uint64
	ttl     time.Duration
	stop    chan struct{}
	done    sync.WaitGroup

	// The free-space check: a statfs answer is reused for spaceTTL.
	now    func() time.Time
	statfs func(dir string) (uint64, error)
	space  atomic.Pointer[spaceReading]

	// Every operation holds mu for reading; Close takes it for writing, so
	// it waits for a commit in flight instead of closing Badger under it
	// (Badger would panic or hang on its closed write channel).
	mu     sync.RWMutex
	closed bool
	// shut is closed for the reads answered from memory, which take no
	// lock: the database is not touched.
	shut atomic.Bool
	// acctMu serialises the writes of Accounts: they are rare, and a
	// single writer never meets a Badger conflict.
	acctMu    sync.Mutex
	auditSeq  atomic.Uint32
	closeOnce sync.Once
	closeErr  error

	group committer
	usage usageCache
}

// ErrClosed is returned by operations after Close.
var ErrClosed = errors.New("store is closed")

// enter starts an operation; leave must follow when it returns nil.
func (s *Store) enter() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) leave() { s.mu.RUnlock() }

var (
	_ quota.Store    = (*Store)(nil)
	_ quota.Accounts = (*Store)(nil)
)

// ErrLocked means another process holds the state directory.
var ErrLocked = errors.New("state directory is in use by another process (is relaycap already running?)")

// Open opens or creates the database in dir.
func Open(dir string, o Options) (*Store, error) {
	if o.HistoryDays < 1 {
		return nil, fmt.Errorf("badgerstore: history of %d days", o.HistoryDays)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// Opening writes too (new memtable files, a replayed log). Badger would
	// create the directory; statfs needs it now.
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	if err := checkSpace(dir, o.MinFreeBytes); err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	// Small options: a daemon beside a mail relay should stay in the tens of
	// MB. The memtable is allocated whole, so its size is the floor of RSS;
	// with 4 MB memtables and a 4 MB block cache, a million accounts of
	// which 100 000 are active take some 25 MB of heap (make bench-floor).
	// Badger refuses a value threshold above its batch size (15 % of the
	// memtable); our values are far smaller than either.
	opts := badger.DefaultOptions(dir).
		WithLogger(slogLogger{o.Logger.With("component", "badger")}).
		WithLoggingLevel(badger.WARNING).
		WithSyncWrites(o.SyncWrites).
		WithMemTableSize(4 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBaseTableSize(2 << 20).
		WithBaseLevelSize(8 << 20).
		WithBlockCacheSize(4 << 20).
		WithIndexCacheSize(4 << 20).
		WithValueLogFileSize(16 << 20).
		WithValueThreshold(32 << 10).
		WithNumCompactors(2).
		WithNumVersionsToKeep(1)
	db, err := badger.Open(opts)
	if err != nil {
		// Badger flattens the flock error into its text (y.Wrap formats
		// it with %+v outside its debug mode) and exports no sentinel, so
		// errors.Is cannot find EWOULDBLOCK; its message is all there is.
		// TestSecondOpenFailsClearly notices if a Badger upgrade changes it.
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("open %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	s := &Store{
		db:      db,
		dir:     dir,
		minFree: o.MinFreeBytes,
		// A day's key lives its history plus the day itself and a margin
		// for the longest offset between the zone and the host clock.
		ttl:    time.Duration(o.HistoryDays+2) * 24 * time.Hour,
		stop:   make(chan struct{}),
		now:    time.Now,
		statfs: AvailableBytes,
	}
	if o.KeepUsage > 0 {
		s.ttl = o.KeepUsage
	}
	// A cached count must not outlive its record.
	s.usage.ttl = min(usageCacheTTL, s.ttl)
	s.done.Add(1)
	go s.collectGarbage(10 * time.Minute)
	return s, nil
}

// Close waits for operations in flight, then flushes and closes the
// database. Every call, also a concurrent one, returns once the database
// is closed, with the result of the first.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.shut.Store(true)
		s.mu.Unlock()
		close(s.stop)
		s.done.Wait()
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

func usageKey(account string, day quota.Day) []byte {
	return []byte("u/" + account + "\x00" + string(day))
}

// dayTotalKey is the relays every account committed on day, written in
// the transaction of the usage records it sums (hours excluded).
func dayTotalKey(day quota.Day) []byte { return []byte("t/" + string(day)) }

// Usage returns the relays committed for account on day, from memory
// when it was read or written lately.
func (s *Store) Usage(account string, day quota.Day, now time.Time) (int64, error) {
	if s.shut.Load() {
		return 0, ErrClosed
	}
	n, epoch, ok := s.usage.get(account, day, now)
	if ok {
		return n, nil
	}
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		n, err = readCount(txn, usageKey(account, day))
		return err
	})
	if err != nil {
		return 0, err
	}
	s.usage.fill(account, day, n, epoch, now)
	return n, nil
}

// Writable fails with ErrLowSpace while the filesystem is below
// MinFreeBytes, as statfs said it at most spaceTTL before now.
func (s *Store) Writable(now time.Time) error {
	if s.minFree == 0 {
		return nil
	}
	free, err := s.freeBytes(now)
	return spaceVerdict(s.dir, free, err, s.minFree)
}

// AddUsage adds each count to account's usage on its day in one Badger
// transaction, all of them or none, shared with the commits of other
// accounts that wait at the same moment (see committer).
func (s *Store) AddUsage(account string, add []quota.DayCount) ([]int64, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := s.Writable(s.now()); err != nil {
		return nil, err
	}
	s.usage.begin(account)
	return s.addUsage(account, add)
}

func readCount(txn *badger.Txn, key []byte) (int64, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return countOf(item)
}

// countOf decodes a usage record.
func countOf(item *badger.Item) (int64, error) {
	var n int64
	err := item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("usage record %q has %d bytes, want 8", item.Key(), len(v))
		}
		n = int64(binary.BigEndian.Uint64(v))
		return nil
	})
	return n, err
}

// collectGarbage reclaims value-log space now and then; Badger leaves that
// to its user.
func (s *Store) collectGarbage(every time.Duration) {
	defer s.done.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			// The GC rewrites live values before it frees a file.
			for s.Writable(s.now()) == nil && s.db.RunValueLogGC(0.5) == nil {
			}
		}
	}
}

// slogLogger routes Badger's log through slog.
type slogLogger struct{ l *slog.Logger }

func (b slogLogger) Errorf(f string, a ...any)   { b.l.Error(strings.TrimSpace(fmt.Sprintf(f, a...))) }
func (b slogLogger) Warningf(f string, a ...any) { b.l.Warn(strings.TrimSpace(fmt.Sprintf(f, a...))) }
func (b slogLogger) Infof(f string, a ...any)    { b.l.Info(strings.TrimSpace(fmt.Sprintf(f, a...))) }
func (b slogLogger) Debugf(f string, a ...any)   { b.l.Debug(strings.TrimSpace(fmt.Sprintf(f, a...))) }
