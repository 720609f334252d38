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
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error)
	Delete(ctx context.Context, key string, rev uint64) error
	Follow(ctx context.Context, keys string, fn func(context.Context, streams.KVChange) error) error
}

// store keeps orders in the KV bucket and a view of them in memory.
type store struct {
	kv bucket

	mu     sync.RWMutex
	orders map[string]Order // by id, the highest revision seen
	subs   map[*subscriber]struct{}
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

// get reads an order from the bucket; ErrOrderNotFound if there is none.
func (s *store) get(ctx context.Context, id string) (Order, uint64, error) {
	if !isKeyToken(id) {
		return Order{}, 0, fmt.Errorf("%w: %s", ErrOrderNotFound, id)
	}
	e, err := s.kv.Get(ctx, orderPrefix+id)
	if errors.Is(err, streams.ErrNotFound) {
		return Order{}, 0, fmt.Errorf("%w: %s", ErrOrderNotFound, id)
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

// create stores a new order; if it exists already, the stored one is
// returned instead.
func (s *store) create(ctx context.Context, o Order) (Order, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return Order{}, fmt.Errorf("encode order %s: %w", o.ID, err)
	}
	_, err = s.kv.Create(ctx, orderPrefix+o.ID, b)
	if errors.Is(err, streams.ErrKeyExists) {
		old, _, err := s.get(ctx, o.ID)
		if err == nil {
			s.remember(old)
		}
		return old, err
	}
	if err != nil {
		return Order{}, fmt.Errorf("%w: store order %s: %w", streams.ErrUnavailable, o.ID, err)
	}
	s.remember(o)
	return o, nil
}

// update stores o over revision rev.
func (s *store) update(ctx context.Context, o Order, rev uint64) error {
	b, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encode order %s: %w", o.ID, err)
	}
	if _, err := s.kv.Update(ctx, orderPrefix+o.ID, b, rev); err != nil {
		if errors.Is(err, streams.ErrRevisionMismatch) {
			return fmt.Errorf("%w: order %s", ErrConflict, o.ID)
		}
		return fmt.Errorf("%w: store order %s: %w", streams.ErrUnavailable, o.ID, err)
	}
	s.remember(o)
	return nil
}

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

// clientOrderID returns the order id recorded for (account, client order id).
func (s *store) clientOrderID(ctx context.Context, account, clientID string) (string, error) {
	e, err := s.kv.Get(ctx, clientKey(account, clientID))
	if errors.Is(err, streams.ErrNotFound) {
		return "", fmt.Errorf("%w: client order id %s", ErrOrderNotFound, clientID)
	}
	if err != nil {
		return "", fmt.Errorf("%w: read client order id: %w", streams.ErrUnavailable, err)
	}
	var o Order
	if err := json.Unmarshal(e.Value, &o); err != nil {
		return "", fmt.Errorf("client order id record: %w", err)
	}
	return o.ID, nil
}

// appliedSequence returns the last engine sequence applied for instrument
// and the stream sequence of that event on engine.event.v1 (0 when the
// record predates it).
func (s *store) appliedSequence(ctx context.Context, instrument string) (engineSeq, streamSeq uint64, err error) {
	e, err := s.kv.Get(ctx, sequencePrefix+keyToken(instrument))
	if errors.Is(err, streams.ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("%w: read sequence of %s: %w", streams.ErrUnavailable, instrument, err)
	}
	engineText, streamText, _ := strings.Cut(string(e.Value), " ")
	if engineSeq, err = strconv.ParseUint(engineText, 10, 64); err == nil && streamText != "" {
		streamSeq, err = strconv.ParseUint(streamText, 10, 64)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("sequence record of %s: %w", instrument, err)
	}
	return engineSeq, streamSeq, nil
}

// setApplied records seq as the last engine sequence applied for
// instrument, and streamSeq as its event's stream sequence.
func (s *store) setApplied(ctx context.Context, instrument string, seq, streamSeq uint64) error {
	value := strconv.FormatUint(seq, 10) + " " + strconv.FormatUint(streamSeq, 10)
	if _, err := s.kv.Put(ctx, sequencePrefix+keyToken(instrument), []byte(value)); err != nil {
		return fmt.Errorf("%w: store sequence of %s: %w", streams.ErrUnavailable, instrument, err)
	}
	return nil
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
