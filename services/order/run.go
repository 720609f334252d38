package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// event is an engine event and where its stream stored it.
type event struct {
	ev        *enginev1.EngineEvent
	streamSeq uint64
	at        time.Time
}

// position is how far the orders of one instrument are applied: the last
// engine sequence, the stream sequence of its event, and the revision of
// the record that says so (0: none yet).
type position struct{ engine, stream, rev uint64 }

// written is an order as this instance last wrote it, with its revision.
type written struct {
	o   Order
	rev uint64
}

// runs applies runs of engine events to the orders of the bucket, each run
// as one write of the orders it changed and then the instrument's new
// position (write). It remembers, per instrument, the position it wrote and the
// working orders as written, so that a run reads the bucket only for the
// orders it has not written itself (placed since, or written by another
// instance or before a restart); a revision check on every key keeps that
// memory honest.
type runs struct {
	st      *store
	recover func(ctx context.Context, id string, inputSeq uint64) (Order, bool, error)

	mu        sync.Mutex
	positions map[string]position
	orders    map[string]written
}

func newRuns(st *store, recover func(ctx context.Context, id string, inputSeq uint64) (Order, bool, error)) *runs {
	return &runs{st: st, recover: recover, positions: map[string]position{}, orders: map[string]written{}}
}

// applied returns the position of inst, read from the bucket the first
// time.
func (r *runs) applied(ctx context.Context, inst string) (position, error) {
	r.mu.Lock()
	p, ok := r.positions[inst]
	r.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := r.st.position(ctx, inst)
	if err != nil {
		return position{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.positions[inst] = p
	return p, nil
}

// run is one run being planned: the orders it changed, in the order first
// changed, and the position it reaches.
type run struct {
	orders map[string]*written
	ids    []string
	at     position
	// steps are the orders as each event left them, in order: watchers
	// see every step, though only the last of each order is written.
	steps []Order
}

// apply applies events (of inst, in stream order) and writes the result.
// When an event after the first fails, the events before it are written
// and the failing one is left to its own delivery.
func (r *runs) apply(ctx context.Context, inst string, events []event) error {
	start, err := r.applied(ctx, inst)
	if err != nil {
		return err
	}
	rn := &run{orders: map[string]*written{}, at: start}
	for i, e := range events {
		if err := r.plan(ctx, rn, e); err != nil { // rn is left as before e
			if i == 0 {
				return err
			}
			break
		}
	}
	return r.write(ctx, inst, start, rn)
}

// plan applies one event to the run, all of its changes or none.
func (r *runs) plan(ctx context.Context, rn *run, e event) error {
	seq := e.ev.GetSequence()
	if seq != 0 && seq <= rn.at.engine {
		return nil
	}
	at := e.at
	if t := e.ev.GetEngineTime(); t != nil {
		at = t.AsTime()
	}
	changed := map[string]*written{}
	for _, c := range changesOf(e.ev) {
		if c.orderID == "" {
			continue
		}
		w, ok := changed[c.orderID]
		if !ok {
			var found bool
			var err error
			if w, found, err = r.load(ctx, rn, c.orderID, e.ev.GetInputSequence()); err != nil {
				return err
			} else if !found {
				continue // placed elsewhere: not this bucket's order
			}
		}
		if _, err := c.apply(&w.o, seq, at); err != nil {
			return err
		}
		changed[c.orderID] = w
	}
	for _, c := range changesOf(e.ev) { // in the event's order, not the map's
		w, ok := changed[c.orderID]
		if !ok {
			continue
		}
		if _, seen := rn.orders[c.orderID]; !seen {
			rn.ids = append(rn.ids, c.orderID)
		}
		rn.orders[c.orderID] = w
		rn.steps = append(rn.steps, w.o)
	}
	if seq != 0 {
		rn.at.engine, rn.at.stream = seq, e.streamSeq
	}
	return nil
}

// load returns a copy of order id as the run has it, as this instance
// wrote it, as the bucket has it, or else as its submit command placed it
// (revision 0: a new record).
func (r *runs) load(ctx context.Context, rn *run, id string, inputSeq uint64) (*written, bool, error) {
	if w, ok := rn.orders[id]; ok {
		c := *w
		return &c, true, nil
	}
	r.mu.Lock()
	w, ok := r.orders[id]
	r.mu.Unlock()
	if ok {
		return &w, true, nil
	}
	o, rev, err := r.st.get(ctx, id)
	if err == nil && !o.Swept {
		return &written{o: o, rev: rev}, true, nil
	}
	if err != nil && !errors.Is(err, ErrOrderNotFound) {
		return nil, false, err
	}
	// No record, or the sweeper's (its submit reached the engine after
	// all): the order is what its submit command placed, written over it.
	o, found, err := r.recover(ctx, id, inputSeq)
	return &written{o: o, rev: rev}, found, err
}

// fenceMax is the largest run written with fenced writes rather than an
// atomic batch: an atomic batch costs nats-server a staging store of its
// own (milliseconds), fenced writes cost one fsync each under fsync
// always. Atomicity is not needed: each order remembers the last event
// applied to it, and the position is written after the orders.
const fenceMax = 16

// write stores the run's orders, then its position, each key checked
// against the revision the run read: small runs as fenced writes, larger
// ones as one atomic batch. On a failure the memory of the instrument's
// writes is dropped, and the delivery is retried against the bucket
// (whatever was stored is applied again as a no-op).
func (r *runs) write(ctx context.Context, inst string, start position, rn *run) error {
	var writes []streams.KVWrite
	for _, id := range rn.ids {
		w := rn.orders[id]
		b, err := json.Marshal(w.o)
		if err != nil {
			return fmt.Errorf("encode order %s: %w", id, err)
		}
		writes = append(writes, streams.KVWrite{Key: orderPrefix + id, Value: b, Revision: w.rev})
	}
	moved := rn.at != start
	if moved {
		value := strconv.FormatUint(rn.at.engine, 10) + " " + strconv.FormatUint(rn.at.stream, 10)
		writes = append(writes, streams.KVWrite{Key: sequencePrefix + keyToken(inst), Value: []byte(value), Revision: start.rev})
	}
	if len(writes) == 0 {
		return nil
	}
	r.st.writing.RLock()
	defer r.st.writing.RUnlock()
	revs, err := r.store(ctx, writes, moved)
	if err != nil {
		r.forget(inst, rn.ids)
		if errors.Is(err, streams.ErrRevisionMismatch) {
			return fmt.Errorf("%w: orders of %s written meanwhile: %w", ErrConflict, inst, err)
		}
		return fmt.Errorf("%w: store orders of %s: %w", streams.ErrUnavailable, inst, err)
	}
	r.mu.Lock()
	for i, id := range rn.ids {
		w := rn.orders[id]
		if w.o.Status.Final() {
			delete(r.orders, id)
		} else {
			r.orders[id] = written{o: w.o, rev: revs[i]}
		}
	}
	if moved {
		rn.at.rev = revs[len(revs)-1]
		r.positions[inst] = rn.at
	}
	r.mu.Unlock()
	for _, o := range rn.steps {
		r.st.remember(o)
	}
	return nil
}

// store writes: one atomic batch, or fenced writes of the orders and then,
// once they are all stored, of the position (the last write when moved).
func (r *runs) store(ctx context.Context, writes []streams.KVWrite, moved bool) ([]uint64, error) {
	if len(writes) > fenceMax {
		return r.st.kv.Batch(ctx, writes)
	}
	orders := writes
	if moved {
		orders = writes[:len(writes)-1]
	}
	var revs []uint64
	if len(orders) > 0 {
		var err error
		if revs, err = r.st.kv.Write(ctx, orders); err != nil {
			return nil, err
		}
	}
	if !moved {
		return revs, nil
	}
	pos, err := r.st.kv.Write(ctx, writes[len(writes)-1:])
	if err != nil {
		return nil, err
	}
	return append(revs, pos...), nil
}

// forget drops what this instance remembers of inst and of the orders ids
// after a failed write, whose outcome only the bucket knows.
func (r *runs) forget(inst string, ids []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.positions, inst)
	for _, id := range ids {
		delete(r.orders, id)
	}
}
