package matching

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// streamReader is what recovery reads of the streams; *streams.Client is one.
type streamReader interface {
	// Last reads the last message of topic under key (streams.ErrNotFound: none).
	Last(ctx context.Context, topic, key string) (streams.Stored, error)
	// Next reads the first message of topic under key at or after stream sequence from
	// (streams.ErrNotFound: none).
	Next(ctx context.Context, topic, key string, from uint64) (streams.Stored, error)
}

// published is what engine.event.v1 holds of an instrument: its last event.
type published struct {
	// found is false when the instrument has no event yet.
	found bool
	// last is the last event stored.
	last *enginev1.EngineEvent
	// stored is its stream sequence.
	stored uint64
}

// lastPublished reads the last event of inst on engine.event.v1.
func (s *Service) lastPublished(ctx context.Context, inst string) (published, error) {
	m, err := s.reader.Last(ctx, streams.TopicEngineEvent, inst)
	if errors.Is(err, streams.ErrNotFound) {
		return published{}, nil
	}
	if err != nil {
		return published{}, fmt.Errorf("last event of %s: %w", inst, err)
	}
	ev := &enginev1.EngineEvent{}
	if err := proto.Unmarshal(m.Data, ev); err != nil {
		return published{}, fmt.Errorf("decode last event of %s (stream sequence %d): %w", inst, m.Sequence, err)
	}
	return published{found: true, last: ev, stored: m.Sequence}, nil
}

// recoverInstrument rebuilds the state of inst as of its last published event: the
// latest snapshot at or before it, then the commands after the snapshot replayed
// through the book without publishing. If the last command's events were published
// only in part (a command with more events than one atomic batch holds), the rest is
// published here. The replay must reproduce the last published event exactly (id and
// output sequence), or recovery fails with ErrDiverged.
func (s *Service) recoverInstrument(ctx context.Context, inst string) (*instrument, error) {
	pub, err := s.lastPublished(ctx, inst)
	if err != nil {
		return nil, err
	}
	st, err := s.startingPoint(ctx, inst, pub)
	if err != nil {
		return nil, err
	}
	target := pub.last.GetInputSequence()
	replayed := 0
	var tail []*enginev1.EngineEvent
	err = s.replay(ctx, inst, st.lastInput+1, target, func(in input) error {
		evs := st.apply(in)
		replayed++
		if in.sequence == target {
			tail = evs
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	st.stored = pub.stored
	if err := s.completeLast(ctx, st, pub, tail); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "matching instrument recovered", "instrument", inst,
		"last_input", st.lastInput, "sequence", st.sequence, "replayed", replayed, "resting", st.book.Len())
	return st, nil
}

// completeLast checks that the replay reproduced the last published event and
// publishes what follows it among the events of the same command (tail, nil when the
// snapshot already covered that command).
func (s *Service) completeLast(ctx context.Context, st *instrument, pub published, tail []*enginev1.EngineEvent) error {
	if !pub.found {
		return nil
	}
	diverged := fmt.Errorf("%w: %s: replay to input %d does not end at event %s (sequence %d)",
		ErrDiverged, st.id, pub.last.GetInputSequence(), pub.last.GetEventId(), pub.last.GetSequence())
	if st.lastInput != pub.last.GetInputSequence() {
		return diverged
	}
	if tail == nil { // the snapshot is at the last command, whose events were all published
		if st.sequence != pub.last.GetSequence() {
			return diverged
		}
		return nil
	}
	idx := int(pub.last.GetInputIndex())
	if idx >= len(tail) || tail[idx].GetEventId() != pub.last.GetEventId() || tail[idx].GetSequence() != pub.last.GetSequence() {
		return diverged
	}
	if rest := tail[idx+1:]; len(rest) > 0 {
		stored, err := s.events.publish(ctx, st.id, st.stored, rest, nil)
		if err != nil {
			return err
		}
		st.stored = stored
	}
	return nil
}

// startingPoint is the latest usable snapshot of inst, or an empty book. A snapshot
// past the published output (which saving after publishing rules out) or one that
// cannot be decoded is ignored, and the book is rebuilt from the first command; a
// bucket that cannot be read is an error (retried), not a reason for a full replay.
func (s *Service) startingPoint(ctx context.Context, inst string, pub published) (*instrument, error) {
	st, err := s.snapshotOrNew(ctx, inst, pub)
	if st != nil {
		st.executed.horizon = s.cfg.RememberCommands
	}
	return st, err
}

func (s *Service) snapshotOrNew(ctx context.Context, inst string, pub published) (*instrument, error) {
	st, ok, err := s.snaps.load(ctx, inst)
	switch {
	case errors.Is(err, ErrBadSnapshot):
		s.log.WarnContext(ctx, "matching snapshot unusable, replaying from the start", "instrument", inst, "err", err)
	case err != nil:
		return nil, err
	case ok && st.lastInput > pub.last.GetInputSequence():
		s.log.WarnContext(ctx, "matching snapshot ahead of published events, replaying from the start",
			"instrument", inst, "snapshot_input", st.lastInput, "published_input", pub.last.GetInputSequence())
	case ok:
		return st, nil
	}
	return newInstrument(inst), nil
}

// replay reads the commands of inst on engine.order.v1 with stream sequences from
// `from` to `to` and hands each to fn, in order, stopping at fn's first error. A message
// that does not decode is skipped, as the consumer dead-letters it without processing
// it.
func (s *Service) replay(ctx context.Context, inst string, from, to uint64, fn func(input) error) error {
	for seq := from; seq <= to; {
		m, err := s.reader.Next(ctx, streams.TopicOrderCommand, inst, seq)
		if errors.Is(err, streams.ErrNotFound) {
			break
		}
		if err != nil {
			return fmt.Errorf("replay %s at %d: %w", inst, seq, err)
		}
		if m.Sequence > to {
			break
		}
		cmd := &enginev1.OrderCommand{}
		if proto.Unmarshal(m.Data, cmd) == nil {
			if err := fn(input{sequence: m.Sequence, time: m.Time, cmd: cmd, trace: streams.ContextFrom(ctx, m.Header)}); err != nil {
				return err
			}
		}
		seq = m.Sequence + 1
	}
	return nil
}
