package matching

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// slot holds one instrument's state. The consumer hands an instrument's commands over
// one at a time (PerKey), and mu makes that an invariant of this type too.
type slot struct {
	mu sync.Mutex
	// st is nil until the instrument is recovered, and again after a failed publish,
	// whose outcome only the event stream knows.
	st *instrument
}

// slot returns the slot of inst, creating it on first use.
func (s *Service) slot(inst string) *slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.slots[inst]
	if sl == nil {
		sl = &slot{}
		s.slots[inst] = sl
	}
	return sl
}

// handle matches one command of engine.order.v1: it recovers the instrument on its first
// command (or after a failed publish), acknowledges without publishing a command whose
// events are already stored (a redelivery), and otherwise executes it together with the
// instrument's other pending commands (see pending) and publishes their events in
// atomic batches. Returning nil acknowledges the command, so it is acknowledged only
// after its events are stored.
func (s *Service) handle(ctx context.Context, m *streams.Message[*enginev1.OrderCommand]) error {
	inst := m.Key
	if !s.serves(inst) {
		return fmt.Errorf("%w: %s", ErrNotServed, inst)
	}
	sl := s.slot(inst)
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.st == nil {
		st, err := s.recoverInstrument(ctx, inst)
		if err != nil {
			return fmt.Errorf("recover %s: %w", inst, err)
		}
		sl.st = st
	}
	st := sl.st
	if m.Sequence <= st.lastInput {
		return nil // published before a restart or a failed ack
	}
	ins, err := s.pending(ctx, st, m)
	if err != nil {
		return err
	}
	return s.execute(ctx, sl, ins)
}

// errEnough stops reading ahead.
var errEnough = errors.New("enough commands")

// pending returns the commands of the instrument of st to execute now, read from
// engine.order.v1: every command after the last one applied up to m, and then up to
// Config.BatchCommands in all of those already stored after m.
//
// The stream, not the delivery order, decides: a durable consumer does not keep a
// key's order across redeliveries (after an instance died, its unacknowledged commands
// come back only after AckWait, while later ones may already be here), and the commands
// read ahead share one atomic batch, so one fsync, instead of one each. Their own
// deliveries come later and are acknowledged as done.
func (s *Service) pending(ctx context.Context, st *instrument, m *streams.Message[*enginev1.OrderCommand]) ([]input, error) {
	var ins []input
	err := s.replay(ctx, st.id, st.lastInput+1, math.MaxUint64, func(in input) error {
		ins = append(ins, in)
		if in.sequence >= m.Sequence && len(ins) >= s.cfg.BatchCommands {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	if len(ins) == 0 || ins[len(ins)-1].sequence < m.Sequence {
		ins = append(ins, input{sequence: m.Sequence, time: m.Time, cmd: m.Payload})
	}
	for i := range ins {
		if ins[i].sequence == m.Sequence {
			ins[i].trace = nil // delivered: the handler's context is its own
		}
	}
	return ins, nil
}

// execute applies commands to the instrument of sl and publishes their events, as few
// atomic batches as fit (at most maxBatch events each; a command's events are never
// split unless it alone has more). A failed publish drops the state, to be recovered
// from the event stream. The snapshot is taken only once every applied command is
// published.
func (s *Service) execute(ctx context.Context, sl *slot, ins []input) error {
	st := sl.st
	var batch []*enginev1.EngineEvent
	var traces []context.Context // each event's command's (nil: the handler's)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		stored, err := s.events.publish(ctx, st.id, st.stored, batch, traces)
		if err != nil {
			sl.st = nil // the book ran ahead of what is known to be stored
			return err
		}
		st.stored, batch, traces = stored, batch[:0], traces[:0]
		return nil
	}
	for _, in := range ins {
		evs := st.apply(in)
		if len(batch)+len(evs) > maxBatch {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, evs...)
		for range evs {
			traces = append(traces, in.trace)
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if st.sinceSnapshot >= s.cfg.SnapshotInterval {
		if err := s.snaps.save(ctx, st); err != nil {
			s.log.WarnContext(ctx, "matching snapshot failed", "instrument", st.id, "err", err)
		} else {
			st.sinceSnapshot = 0
		}
	}
	return nil
}

// serves reports whether this instance matches inst.
func (s *Service) serves(inst string) bool {
	if len(s.cfg.Instruments) == 0 {
		return true
	}
	for _, i := range s.cfg.Instruments {
		if i == inst {
			return true
		}
	}
	return false
}

// consume starts the durable consumers of engine.order.v1: one for every instrument,
// or one per configured instrument.
func (s *Service) consume(ctx context.Context) ([]*streams.Consumer, error) {
	base := streams.ConsumerConfig{
		Name: s.cfg.ConsumerName, Ordering: streams.PerKey, Concurrency: s.cfg.Concurrency,
		AckSync: true, AckWait: s.cfg.AckWait, MaxDeliver: s.cfg.MaxDeliver, Logger: s.log,
	}
	var cfgs []streams.ConsumerConfig
	if len(s.cfg.Instruments) == 0 {
		cfgs = append(cfgs, base)
	}
	for _, inst := range s.cfg.Instruments {
		c := base
		c.Name, c.Keys, c.Concurrency = s.cfg.ConsumerName+"-"+inst, []string{inst}, 1
		cfgs = append(cfgs, c)
	}
	var out []*streams.Consumer
	for _, c := range cfgs {
		cons, err := streams.Consume(ctx, s.client, streams.TopicOrderCommand, c, s.handle)
		if err != nil {
			s.stop(ctx, out)
			return nil, fmt.Errorf("consume %s: %w", c.Name, err)
		}
		out = append(out, cons)
	}
	return out, nil
}

// stop drains the consumers within the shutdown timeout.
func (s *Service) stop(ctx context.Context, cs []*streams.Consumer) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			if err := c.Stop(sctx); err != nil {
				s.log.WarnContext(ctx, "matching consumer stop", "err", err)
			}
		})
	}
	wg.Wait()
}
