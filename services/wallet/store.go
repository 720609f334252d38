package wallet

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tradex-mesh/tradex/streams"
)

// snapshotKey is the name of the state snapshot in the snapshot store.
const snapshotKey = "state"

// snapshotVersion is the format of a snapshot; another version is ignored
// (the journal is replayed in full).
const snapshotVersion = 2

// mesh is what the store uses of the mesh (*streams.Client): the snapshot
// object store and ordered reads of the journal.
type mesh interface {
	Objects(ctx context.Context, name string) (*streams.Objects, error)
	Follow(ctx context.Context, f streams.Follow, fn func(context.Context, streams.Stored) error) error
}

// snapshots holds the state snapshot (*streams.Objects).
type snapshots interface {
	Get(ctx context.Context, object string) ([]byte, error)
	Put(ctx context.Context, object string, data []byte) error
}

// store keeps the book and its persistence: the journal (the source of
// truth) and snapshots.
//
// Locking, in this order: a write takes gate for reading and the locks of
// the accounts it touches, so writes of different accounts plan, wait for
// the journal and apply concurrently, while writes of one account are
// serialised (each is checked against the account's last journal entry).
// Reading the journal back (catch-up) and capturing a snapshot take gate
// for writing, alone; encoding and storing the snapshot happen after, off
// every lock and off the request path (snapshotLoop). mu guards the book
// itself: writes plan under its read lock and apply under its write lock;
// readers take its read lock.
type store struct {
	cfg  Config
	log  *slog.Logger
	mesh mesh
	pub  *streams.Publisher
	now  func() time.Time

	gate     sync.RWMutex
	accounts accountLocks
	mu       sync.RWMutex
	book     *Book
	// outOfOrder holds journal ranges (first -> last) applied before an
	// earlier range: book.applied advances over them once contiguous.
	outOfOrder map[uint64]uint64
	// stale is set when a journal write failed in a way that may have
	// stored it: the next write catches up first.
	stale     bool
	sinceSnap int
	snaps     snapshots // nil while snapshots are disabled or not opened
	// snapDue wakes snapshotLoop when SnapshotEvery entries were written;
	// snapMu serialises snapshots, so that an older one never lands
	// after a newer one.
	snapDue chan struct{}
	snapMu  sync.Mutex
	// writes counts the journal writes (one message or one atomic batch).
	writes atomic.Uint64
}

func newStore(cfg Config, log *slog.Logger, m mesh, pub *streams.Publisher, now func() time.Time) *store {
	return &store{cfg: cfg, log: log, mesh: m, pub: pub, now: now, book: NewBook(),
		accounts: accountLocks{locks: map[string]*accountLock{}}, outOfOrder: map[uint64]uint64{}, snapDue: make(chan struct{}, 1)}
}

// open opens the snapshot store, loads the latest snapshot and replays
// the journal after it.
func (s *store) open(ctx context.Context) error {
	s.gate.Lock()
	defer s.gate.Unlock()
	if s.cfg.SnapshotEvery > 0 {
		// An object store: a snapshot holds every idempotency record and
		// outgrows the largest KV value (1 MiB by default).
		snaps, err := s.mesh.Objects(ctx, s.cfg.SnapshotBucket)
		if err != nil {
			return fmt.Errorf("snapshot store %s: %w", s.cfg.SnapshotBucket, err)
		}
		s.snaps = snaps
		if err := s.loadSnapshot(ctx); err != nil {
			return err
		}
	}
	return s.catchUp(ctx)
}

// loadSnapshot replaces the book with the stored snapshot, if any.
func (s *store) loadSnapshot(ctx context.Context) error {
	data, err := s.snaps.Get(ctx, snapshotKey)
	if errors.Is(err, streams.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil || snap.Version != snapshotVersion {
		s.log.WarnContext(ctx, "wallet snapshot ignored, replaying the whole journal", "err", err, "version", snap.Version)
		return nil
	}
	b := snap.book()
	s.mu.Lock()
	s.book = b
	s.mu.Unlock()
	s.log.InfoContext(ctx, "wallet snapshot loaded", "stream_sequence", b.applied)
	return nil
}

// catchUp applies every journal entry after the book's applied position up
// to the end of the journal as it is when catchUp starts. The caller holds
// gate for writing.
func (s *store) catchUp(ctx context.Context) error {
	err := s.mesh.Follow(ctx, streams.Follow{Topic: streams.TopicBalanceChanged, From: s.book.applied + 1, ToEnd: true},
		func(_ context.Context, m streams.Stored) error { return s.applyMsg(m) })
	if err == nil {
		err = ctx.Err() // the follow ends with nil when ctx does, maybe short of the end
	}
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	// The book reflects the whole journal as it was: every range this
	// instance applied out of order is covered.
	s.mu.Lock()
	s.stale = false
	clear(s.outOfOrder)
	s.mu.Unlock()
	return nil
}

func (s *store) applyMsg(m streams.Stored) error {
	e, err := decodeEntry(m.Data, m.Header, m.Sequence, s.cfg.scale)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.book.Apply(e); err != nil {
		return err
	}
	s.book.applied = m.Sequence
	return nil
}

// update runs plan against the book and appends the entries it makes to
// the journal, atomically, each account's first entry checked against the
// account's last journal sequence. plan may touch only the given accounts:
// writes of other accounts run meanwhile. On a concurrent write it re-reads
// the journal and plans again. After the commit (or when plan made no
// entry) done runs, still holding the accounts. The book changes only
// after the journal acknowledged the entries.
func (s *store) update(ctx context.Context, accounts []string, plan func(tx *Tx) error, done func(b *Book)) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.WriteTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		if err := s.catchUpIfStale(ctx); err != nil {
			return err
		}
		err := s.tryUpdate(ctx, accounts, plan, done)
		if err == nil {
			s.noteSnapshotDue()
			return nil
		}
		if !errors.Is(err, streams.ErrConcurrency) {
			return err
		}
		if attempt >= s.cfg.WriteAttempts {
			return fmt.Errorf("%w: %d attempts: %w", ErrConflict, attempt, err)
		}
		s.mu.Lock()
		s.stale = true
		s.mu.Unlock()
	}
}

// tryUpdate is one attempt of update.
func (s *store) tryUpdate(ctx context.Context, accounts []string, plan func(tx *Tx) error, done func(b *Book)) error {
	s.gate.RLock()
	defer s.gate.RUnlock()
	defer s.accounts.lock(accounts)()
	s.mu.RLock()
	if s.stale { // a write whose outcome is unknown landed while we waited: re-read first
		s.mu.RUnlock()
		return fmt.Errorf("append journal: %w: the journal must be re-read", streams.ErrConcurrency)
	}
	tx := s.book.Begin(s.now())
	err := plan(tx)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	if len(tx.Entries) > 0 {
		if err := s.commit(ctx, tx); err != nil {
			return err
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	done(s.book)
	return nil
}

// catchUpIfStale re-reads the journal after a write whose outcome is
// unknown or that met another writer.
func (s *store) catchUpIfStale(ctx context.Context) error {
	s.mu.RLock()
	stale := s.stale
	s.mu.RUnlock()
	if !stale {
		return nil
	}
	s.gate.Lock()
	defer s.gate.Unlock()
	if err := s.catchUp(ctx); err != nil {
		return fmt.Errorf("re-read journal: %w", err)
	}
	return nil
}

// commit numbers tx's entries, publishes them (one message, or an atomic
// batch) and applies them to the book. The caller holds the accounts.
func (s *store) commit(ctx context.Context, tx *Tx) error {
	records := make([]streams.Record, len(tx.Entries))
	next := map[string]uint64{}
	s.mu.RLock()
	for i := range tx.Entries {
		e := &tx.Entries[i]
		seq, subj := s.book.AccountSeq(e.Account)
		var expected *uint64
		if _, seen := next[e.Account]; !seen {
			next[e.Account] = seq
			expected = &subj
		}
		next[e.Account]++
		e.Sequence = next[e.Account]
		records[i] = entryRecord(*e, s.cfg.scale(e.Asset), expected)
		if e.EngineSequence > 0 {
			records[i].Context = eventTrace(ctx, e.EngineSequence)
		}
	}
	s.mu.RUnlock()
	first, err := s.publish(ctx, records)
	if err != nil {
		if !errors.Is(err, streams.ErrConcurrency) && !errors.Is(err, streams.ErrInvalidConfig) {
			s.mu.Lock()
			s.stale = true // it may be stored: read it back before the next write
			s.mu.Unlock()
		}
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range tx.Entries {
		tx.Entries[i].StreamSeq = first + uint64(i)
		if err := s.book.Apply(tx.Entries[i]); err != nil {
			return err
		}
	}
	s.advanceApplied(first, first+uint64(len(tx.Entries))-1)
	s.sinceSnap += len(tx.Entries)
	return nil
}

// publish appends records to the journal, all or nothing, and returns the
// stream sequence of the first; the records are consecutive. One record is
// a plain publish fenced by its account's expected last sequence (an
// atomic batch costs an R1 file stream a staging store of its own: more
// than it saves here, measured in docs/benchmarks.md). An entry already
// stored at the same account position (another instance wrote it) fails
// with streams.ErrConcurrency: update re-reads and plans again.
func (s *store) publish(ctx context.Context, records []streams.Record) (uint64, error) {
	s.writes.Add(1)
	if len(records) == 1 {
		r := records[0]
		if r.Context != nil {
			ctx = streams.WithTraceOf(ctx, r.Context) // its event's trace; update's deadline
		}
		seq, err := s.pub.Publish(ctx, r.Topic, r.Key, r.Msg, r.Opts...)
		if err != nil {
			return 0, fmt.Errorf("append journal: %w", err)
		}
		return seq, nil
	}
	first, _, err := s.pub.PublishAtomic(ctx, records)
	if err != nil {
		return 0, fmt.Errorf("append journal: %w", err)
	}
	return first, nil
}

// advanceApplied records that the journal range first..last is applied:
// book.applied (the prefix of the journal the book reflects) moves over it
// once every range before it is applied too. The caller holds mu.
func (s *store) advanceApplied(first, last uint64) {
	if first != s.book.applied+1 {
		s.outOfOrder[first] = last
		return
	}
	s.book.applied = last
	for {
		next, ok := s.outOfOrder[s.book.applied+1]
		if !ok {
			return
		}
		delete(s.outOfOrder, s.book.applied+1)
		s.book.applied = next
	}
}

// accountLocks serialises the writes of each account.
type accountLocks struct {
	mu    sync.Mutex
	locks map[string]*accountLock
}

type accountLock struct {
	mu    sync.Mutex
	users int // holders and waiters; the lock is dropped at 0
}

// lock locks the accounts (in order, so two writers never wait for each
// other) and returns the function that unlocks them.
func (l *accountLocks) lock(accounts []string) func() {
	names := slices.Compact(slices.Sorted(slices.Values(accounts)))
	held := make([]*accountLock, len(names))
	l.mu.Lock()
	for i, n := range names {
		al := l.locks[n]
		if al == nil {
			al = &accountLock{}
			l.locks[n] = al
		}
		al.users++
		held[i] = al
	}
	l.mu.Unlock()
	for _, al := range held {
		al.mu.Lock()
	}
	return func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i].mu.Unlock()
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, al := range held {
			if al.users--; al.users == 0 {
				delete(l.locks, names[i])
			}
		}
	}
}

// noteSnapshotDue wakes snapshotLoop once SnapshotEvery entries were
// written since the last snapshot; it never blocks.
func (s *store) noteSnapshotDue() {
	if s.snaps == nil {
		return
	}
	s.mu.RLock()
	due := s.sinceSnap >= s.cfg.SnapshotEvery
	s.mu.RUnlock()
	if due {
		select {
		case s.snapDue <- struct{}{}:
		default:
		}
	}
}

// snapshotLoop stores a snapshot whenever one is due, until ctx ends. A
// failure is logged and retried after another interval: the journal stays
// the truth.
func (s *store) snapshotLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.snapDue:
		}
		if err := s.snapshot(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "wallet snapshot failed", "err", err)
		}
	}
}

// snapshot captures the book, exactly a prefix of the journal, and stores
// it: the capture holds gate (writes wait for a catch-up and a copy of the
// state), the encoding and the write do not.
func (s *store) snapshot(ctx context.Context) error {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	snap, err := s.capture(ctx)
	if err != nil {
		return err
	}
	data, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if err := s.snaps.Put(ctx, snapshotKey, data); err != nil {
		return fmt.Errorf("store snapshot: %w", err)
	}
	return nil
}

// capture catches up and copies the book (snapshotOf copies every value),
// restarting the count of entries since the last snapshot.
func (s *store) capture(ctx context.Context) (snapshot, error) {
	s.gate.Lock()
	defer s.gate.Unlock()
	if err := s.catchUp(ctx); err != nil {
		return snapshot{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sinceSnap = 0 // a failed write is tried again after another interval, not on every write
	return snapshotOf(s.book, s.now().Add(-s.cfg.RecordHorizon)), nil
}

// Snapshot writes a snapshot now (operators, tests).
func (s *store) Snapshot(ctx context.Context) error {
	if s.snaps == nil {
		return errors.New("snapshots are disabled")
	}
	return s.snapshot(ctx)
}

// read runs fn with the book for reading.
func (s *store) read(fn func(b *Book)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn(s.book)
}

// snapshot is the stored form of a book.
type snapshot struct {
	Version   int                    `json:"version"`
	Applied   uint64                 `json:"applied"`
	Accounts  map[string]snapAccount `json:"accounts"`
	Holds     []Hold                 `json:"holds"`
	Transfers []Transfer             `json:"transfers"`
	Releases  []Release              `json:"releases"`
	Engine    map[string]uint64      `json:"engine"`
	Positions []Position             `json:"positions,omitempty"`
}

type snapAccount struct {
	Seq      uint64    `json:"seq"`
	SubjSeq  uint64    `json:"subj_seq"`
	Balances []Balance `json:"balances"`
}

// snapshotOf copies b, leaving out the records whose last change is
// before cut (zero: none): closed holds, transfers and partial releases.
// What the journal after the snapshot does to balances never needs them: a
// closed hold takes no more entries (its order is final), and a record
// only answers a repeated request; a request repeated after the horizon is
// taken as a new one.
func snapshotOf(b *Book, cut time.Time) snapshot {
	s := snapshot{Version: snapshotVersion, Applied: b.applied, Accounts: map[string]snapAccount{}, Engine: maps.Clone(b.engine)}
	for id, a := range b.accounts {
		sa := snapAccount{Seq: a.seq, SubjSeq: a.subjSeq}
		for _, bal := range a.balances {
			sa.Balances = append(sa.Balances, *bal)
		}
		s.Accounts[id] = sa
	}
	for _, h := range b.holds {
		if h.Remaining > 0 || !h.UpdatedAt.Before(cut) {
			s.Holds = append(s.Holds, *h)
		}
	}
	for _, t := range b.transfers {
		if !t.Balance.UpdatedAt.Before(cut) {
			s.Transfers = append(s.Transfers, *t)
		}
	}
	for _, r := range b.releases {
		if !r.Balance.UpdatedAt.Before(cut) {
			s.Releases = append(s.Releases, *r)
		}
	}
	s.Positions = b.Positions("")
	// Sorted, so equal books have equal snapshots.
	for id, sa := range s.Accounts {
		slices.SortFunc(sa.Balances, func(x, y Balance) int { return cmp.Compare(x.Asset, y.Asset) })
		s.Accounts[id] = sa
	}
	slices.SortFunc(s.Holds, func(x, y Hold) int { return cmp.Or(cmp.Compare(x.Account, y.Account), cmp.Compare(x.ID, y.ID)) })
	slices.SortFunc(s.Transfers, func(x, y Transfer) int {
		return cmp.Or(cmp.Compare(x.Account, y.Account), cmp.Compare(x.ID, y.ID))
	})
	slices.SortFunc(s.Releases, func(x, y Release) int {
		return cmp.Or(cmp.Compare(x.Account, y.Account), cmp.Compare(x.HoldID, y.HoldID), cmp.Compare(x.ID, y.ID))
	})
	return s
}

func (s snapshot) book() *Book {
	b := NewBook()
	b.applied = s.Applied
	for id, sa := range s.Accounts {
		a := &account{seq: sa.Seq, subjSeq: sa.SubjSeq, balances: map[string]*Balance{}}
		for _, bal := range sa.Balances {
			a.balances[bal.Asset] = &bal
			b.supply[bal.Asset] += bal.Available + bal.Held
		}
		b.accounts[id] = a
	}
	for _, h := range s.Holds {
		b.holds[key(h.Account, h.ID)] = &h
	}
	for _, t := range s.Transfers {
		b.transfers[key(t.Account, t.ID)] = &t
	}
	for _, r := range s.Releases {
		b.releases[key(r.Account, r.HoldID, r.ID)] = &r
	}
	for k, v := range s.Engine {
		b.engine[k] = v
	}
	for _, p := range s.Positions {
		b.positions[key(p.Account, p.Instrument)] = &p
	}
	return b
}

// current catches up with the journal and returns the balances of acct (""
// for all) and the stream sequence they reflect.
func (s *store) current(ctx context.Context, acct string) ([]Balance, uint64, error) {
	s.gate.Lock()
	defer s.gate.Unlock()
	if err := s.catchUp(ctx); err != nil {
		return nil, 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.book.Balances(acct), s.book.applied, nil
}
