package matching

import (
	"context"
	"fmt"

	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// events publishes engine events.
type events struct {
	pub *streams.Publisher
}

// maxBatch is JetStream's limit on the messages of one atomic batch.
const maxBatch = 1000

// publish stores the events of one command as one atomic batch on engine.event.v1,
// keyed by the instrument, each with its event id as Nats-Msg-Id: all of them are
// stored or none. A command with more than maxBatch events (a market order sweeping
// the book) is stored in consecutive batches of maxBatch; a crash between two leaves a
// prefix, which the recovery completes (see recover.go).
//
// after is the stream sequence of the instrument's last stored event (0: none): each
// batch is stored only if it still is (streams.ErrConcurrency otherwise), which fences
// out a second writer of the instrument. It returns the stream sequence of the last
// event stored. traces, when not nil, holds each event's command's context (nil: ctx):
// each event continues its command's trace.
func (e events) publish(ctx context.Context, inst string, after uint64, evs []*enginev1.EngineEvent, traces []context.Context) (uint64, error) {
	for len(evs) > 0 {
		n := min(len(evs), maxBatch)
		records := make([]streams.Record, n)
		for i, ev := range evs[:n] {
			opts := []streams.PublishOption{streams.WithMsgID(ev.GetEventId())}
			if i == 0 {
				opts = append(opts, streams.WithExpectedLastSubjectSequence(after))
			}
			records[i] = streams.Record{Topic: streams.TopicEngineEvent, Key: inst, Msg: ev, Opts: opts}
			if traces != nil {
				records[i].Context = traces[i]
			}
		}
		last, err := e.store(ctx, records)
		if err != nil {
			return 0, fmt.Errorf("publish %d events of %s from %s: %w", n, inst, evs[0].GetEventId(), err)
		}
		after, evs = last, evs[n:]
		if traces != nil {
			traces = traces[n:]
		}
	}
	return after, nil
}

// store writes records as one atomic batch, or a single record as a plain
// publish: one message is all or nothing by itself, and nats-server stages
// every atomic batch in a store of its own (milliseconds, the largest cost
// of a quiet engine). A duplicate message id is refused either way.
func (e events) store(ctx context.Context, records []streams.Record) (uint64, error) {
	if len(records) == 1 {
		r := records[0]
		if r.Context != nil {
			ctx = streams.WithTraceOf(ctx, r.Context) // its command's trace
		}
		return e.pub.Publish(ctx, r.Topic, r.Key, r.Msg, append(r.Opts, streams.WithDuplicateAsConflict())...)
	}
	_, last, err := e.pub.PublishAtomic(ctx, records)
	return last, err
}
