package order

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tradex-mesh/tradex/streams"
)

// Key prefixes of the bucket.
const (
	orderPrefix    = "o."
	clientPrefix   = "c."
	sequencePrefix = "s."
)

// bucket is what the store needs of the orders KV bucket (*streams.KV has
// it).
type bucket interface {
	Get(ctx context.Context, key string) (streams.Entry, error)
	Entry(ctx context.Context, key string) (streams.Entry, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error)
	Delete(ctx context.Context, key string, rev uint64) error
	Batch(ctx context.Context, writes []streams.KVWrite) ([]uint64, error)
	Write(ctx context.Context, writes []streams.KVWrite) ([]uint64, error)
	Follow(ctx context.Context, keys string, fn func(context.Context, streams.KVChange) error) error
}

// store keeps orders in the KV bucket and a view of them in memory.
type store struct {
	kv bucket

	mu     sync.RWMutex
	orders map[string]Order // by id, the highest revision seen
	subs   map[*subscriber]struct{}
	// writing is held (shared) by a run from its write until its steps are
	// in the view, and taken by the follow for each record it reads: a
	// run's own record, read back, never overtakes the steps before it
	// (which watchers would then miss).
	writing sync.RWMutex
}

// subscriber receives every order that changes, until it falls behind.
type subscriber struct {
	match func(Order) bool
	ch    chan Order
	gone  bool
}

func newStore() *store {
	return &store{orders: map[string]Order{}, subs: map[*subscriber]struct{}{}}
}

// follow watches the orders of the bucket into memory; loaded is called
// once the current orders are in. It returns nil when ctx ends, and an
// error when the watch breaks.
func (s *store) follow(ctx context.Context, loaded func()) error {
	return s.kv.Follow(ctx, orderPrefix+"*", func(_ context.Context, c streams.KVChange) error {
		switch {
		case c.SnapshotEnd:
			loaded()
			return nil
		case c.Deleted:
			return nil
		}
		var o Order
		if err := json.Unmarshal(c.Value, &o); err != nil {
			return fmt.Errorf("order record %s: %w", c.Key, err)
		}
		s.writing.Lock()
		defer s.writing.Unlock()
		s.remember(o)
		return nil
	})
}

// remember puts o in the view, unless a later revision is there, and tells
// the subscribers.
func (s *store) remember(o Order) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.orders[o.ID]; ok && old.Revision >= o.Revision {
		return
	}
	s.orders[o.ID] = o
	for sub := range s.subs {
		if !sub.match(o) {
			continue
		}
		select {
		case sub.ch <- o:
		default: // too slow: end its stream, the client resubscribes
			sub.gone = true
			close(sub.ch)
			delete(s.subs, sub)
		}
	}
}

// subscribe returns the working orders matching match and a channel of
// every later change of a matching order; cancel ends it.
func (s *store) subscribe(match func(Order) bool, buffer int) (current []Order, sub *subscriber, cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.orders {
		if !o.Status.Final() && match(o) {
			current = append(current, o)
		}
	}
	slices.SortFunc(current, func(a, b Order) int { return compareIDs(a.ID, b.ID) })
	sub = &subscriber{match: match, ch: make(chan Order, buffer)}
	s.subs[sub] = struct{}{}
	return current, sub, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !sub.gone {
			sub.gone = true
			delete(s.subs, sub)
		}
	}
}

// list returns the orders matching match, newest first, after the order id
// after (keyset paging; "" from the start), at most n, and whether more
// follow.
func (s *store) list(match func(Order) bool, after string, n int) ([]Order, bool) {
	s.mu.RLock()
	var all []Order
	for _, o := range s.orders {
		if (after == "" || compareIDs(o.ID, after) < 0) && match(o) {
			all = append(all, o)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(all, func(a, b Order) int { return compareIDs(b.ID, a.ID) })
	if len(all) > n {
		return all[:n], true
	}
	return all, false
}

// compareIDs orders ids by creation: longer is later, then by text.
func compareIDs(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// read returns an order from the bucket, or else from the view (placed
// here, its record not written yet); ErrOrderNotFound if neither has it.
func (s *store) read(ctx context.Context, id string) (Order, error) {
	o, _, err := s.get(ctx, id)
	if errors.Is(err, ErrOrderNotFound) {
		s.mu.RLock()
		placed, ok := s.orders[id]
		s.mu.RUnlock()
		if ok {
			return placed, nil
		}
	}
	return o, err
}

// get reads an order from the bucket; ErrOrderNotFound if there is none,
// with the revision of its delete marker if it was deleted (what a new
// record must expect).
func (s *store) get(ctx context.Context, id string) (Order, uint64, error) {
	if !isKeyToken(id) {
		return Order{}, 0, fmt.Errorf("%w: %s", ErrOrderNotFound, id)
	}
	e, err := s.kv.Entry(ctx, orderPrefix+id)
	if errors.Is(err, streams.ErrNotFound) {
		return Order{}, 0, fmt.Errorf("%w: %s", ErrOrderNotFound, id)
	}
	if err == nil && e.Deleted {
		return Order{}, e.Revision, fmt.Errorf("%w: %s", ErrOrderNotFound, id)
	}
	if err != nil {
		return Order{}, 0, fmt.Errorf("%w: read order %s: %w", streams.ErrUnavailable, id, err)
	}
	var o Order
	if err := json.Unmarshal(e.Value, &o); err != nil {
		return Order{}, 0, fmt.Errorf("order record %s: %w", id, err)
	}
	return o, e.Revision, nil
}

// placed puts an order just placed in the view: its record follows from
// the engine's events (run.go), and until then this instance answers
// reads of it from memory.
func (s *store) placed(o Order) { s.remember(o) }

// clientKey is the index key of a client order id of an account.
func clientKey(account, clientID string) string {
	return clientPrefix + keyToken(account) + "." + keyToken(clientID)
}

// claimClientID records intent as the order of (account, client order id)
// unless one is recorded: then it returns that one and claimed false.
func (s *store) claimClientID(ctx context.Context, intent Order) (first Order, rev uint64, claimed bool, err error) {
	key := clientKey(intent.Account, intent.ClientOrderID)
	b, err := json.Marshal(intent)
	if err != nil {
		return Order{}, 0, false, fmt.Errorf("encode order %s: %w", intent.ID, err)
	}
	for range 3 {
		rev, err := s.kv.Create(ctx, key, b)
		if err == nil {
			return intent, rev, true, nil
		}
		if !errors.Is(err, streams.ErrKeyExists) {
			return Order{}, 0, false, fmt.Errorf("%w: claim client order id: %w", streams.ErrUnavailable, err)
		}
		e, err := s.kv.Get(ctx, key)
		if errors.Is(err, streams.ErrNotFound) {
			continue // freed since
		}
		if err != nil {
			return Order{}, 0, false, fmt.Errorf("%w: read client order id: %w", streams.ErrUnavailable, err)
		}
		var o Order
		if err := json.Unmarshal(e.Value, &o); err != nil {
			return Order{}, 0, false, fmt.Errorf("client order id record %s: %w", key, err)
		}
		return o, e.Revision, false, nil
	}
	return Order{}, 0, false, fmt.Errorf("%w: client order id %s", ErrConflict, intent.ClientOrderID)
}

// freeClientID deletes a claim made by a request that failed, so that the
// client may use the id again.
func (s *store) freeClientID(ctx context.Context, account, clientID string, rev uint64) error {
	err := s.kv.Delete(ctx, clientKey(account, clientID), rev)
	if err != nil && !errors.Is(err, streams.ErrRevisionMismatch) {
		return fmt.Errorf("%w: free client order id: %w", streams.ErrUnavailable, err)
	}
	return nil
}

// claimOf returns the order claimed under (account, client order id): the
// request as PlaceOrder received it, with its order id.
func (s *store) claimOf(ctx context.Context, account, clientID string) (Order, error) {
	e, err := s.kv.Get(ctx, clientKey(account, clientID))
	if errors.Is(err, streams.ErrNotFound) {
		return Order{}, fmt.Errorf("%w: client order id %s", ErrOrderNotFound, clientID)
	}
	if err != nil {
		return Order{}, fmt.Errorf("%w: read client order id: %w", streams.ErrUnavailable, err)
	}
	var o Order
	if err := json.Unmarshal(e.Value, &o); err != nil {
		return Order{}, fmt.Errorf("client order id record: %w", err)
	}
	return o, nil
}

// position returns how far the orders of instrument are applied (zero
// when nothing is).
func (s *store) position(ctx context.Context, instrument string) (position, error) {
	e, err := s.kv.Get(ctx, sequencePrefix+keyToken(instrument))
	if errors.Is(err, streams.ErrNotFound) {
		return position{}, nil
	}
	if err != nil {
		return position{}, fmt.Errorf("%w: read sequence of %s: %w", streams.ErrUnavailable, instrument, err)
	}
	p := position{rev: e.Revision}
	engineText, streamText, _ := strings.Cut(string(e.Value), " ")
	if p.engine, err = strconv.ParseUint(engineText, 10, 64); err == nil && streamText != "" {
		p.stream, err = strconv.ParseUint(streamText, 10, 64)
	}
	if err != nil {
		return position{}, fmt.Errorf("sequence record of %s: %w", instrument, err)
	}
	return p, nil
}

// keyToken is s when it is a safe KV key token ([-_a-zA-Z0-9], at most 64
// bytes), else "=" and the unpadded base64url SHA-256 of s.
func keyToken(s string) string {
	if isKeyToken(s) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "=" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func isKeyToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
