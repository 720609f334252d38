package metadata

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// The crash window. A change is stored in KV first and announced second,
// so an event never announces a change that did not happen; a process
// that dies (or loses the broker) between the two leaves the change
// unannounced. The repair closes that window: for every instrument and
// configuration key it compares the latest stored revision with the
// latest event on the key's subject and publishes the missing event, with
// the same message id the original publish would have used (so a repair
// racing the original is stored once), and only if the subject has not
// moved since it looked (WithExpectedLastSubjectSequence, so a repair
// never lands after a newer event from another process). Run repairs at
// start, after a failed publish and every RepairInterval.
//
// The guarantee is that the latest state of every key is announced, not
// every intermediate revision; events carry whole states, so a consumer
// that keeps the highest revision it has seen converges.

// lastEvent is the latest event on a subject: its payload's revision and
// its stream sequence (0 when the subject is empty).
type lastEvent struct {
	revision uint64
	sequence uint64
}

// lastReader reads the last message of a topic under a key;
// *streams.Client is one.
type lastReader interface {
	Last(ctx context.Context, topic, key string) (streams.Stored, error)
}

// eventReader reads the latest event of a subject from a topic's stream.
type eventReader struct {
	streams lastReader
}

// last returns the latest event of topic under key, decoded into msg, with
// revision read from it.
func (r eventReader) last(ctx context.Context, topic, key string, msg proto.Message, revision func() uint64) (lastEvent, error) {
	raw, err := r.streams.Last(ctx, topic, key)
	switch {
	case errors.Is(err, streams.ErrNotFound):
		return lastEvent{}, nil
	case err != nil:
		return lastEvent{}, fmt.Errorf("last event of %s on %s: %w", key, topic, err)
	}
	if err := proto.Unmarshal(raw.Data, msg); err != nil {
		return lastEvent{}, fmt.Errorf("decode last event on %s: %w", raw.Subject, err)
	}
	return lastEvent{revision: revision(), sequence: raw.Sequence}, nil
}

// repair publishes the events missing for the latest revisions.
func (s *Service) repair(ctx context.Context) error {
	st, err := s.store(ctx)
	if err != nil {
		return err
	}
	r := eventReader{streams: s.streams}
	instruments, err := st.listInstruments(ctx)
	if err != nil {
		return err
	}
	for _, in := range instruments {
		if err := s.repairInstrument(ctx, st, r, in); err != nil {
			return err
		}
	}
	changes, err := st.configChanges(ctx)
	if err != nil {
		return err
	}
	for _, ch := range changes {
		if err := s.repairConfig(ctx, r, ch); err != nil {
			return err
		}
	}
	return nil
}

// repairInstrument publishes the event of in's revision unless an event of
// that revision or a later one exists.
func (s *Service) repairInstrument(ctx context.Context, st *store, r eventReader, in Instrument) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var created metadatav1.InstrumentCreated
	lastCreated, err := r.last(ctx, streams.TopicInstrumentCreated, in.Symbol, &created, func() uint64 { return created.GetInstrument().GetRevision() })
	if err != nil {
		return err
	}
	var updated metadatav1.InstrumentUpdated
	lastUpdated, err := r.last(ctx, streams.TopicInstrumentUpdated, in.Symbol, &updated, func() uint64 { return updated.GetInstrument().GetRevision() })
	if err != nil {
		return err
	}
	if max(lastCreated.revision, lastUpdated.revision) >= in.Revision {
		return nil
	}
	id := InstrumentEventID(in.Symbol, in.Revision)
	if in.Revision == 1 {
		msg := &metadatav1.InstrumentCreated{Instrument: instrumentToProto(in), Actor: s.cfg.Actor}
		return s.republish(ctx, streams.TopicInstrumentCreated, in.Symbol, msg, id, lastCreated.sequence)
	}
	prev, ok, err := st.instrumentAt(ctx, in.Symbol, in.Revision-1)
	if err != nil {
		return err
	}
	msg := &metadatav1.InstrumentUpdated{Instrument: instrumentToProto(in), Actor: s.cfg.Actor}
	if ok {
		msg.Previous = instrumentToProto(prev)
		msg.ChangedFields = fieldMask(ChangedFields(prev, in))
	}
	return s.republish(ctx, streams.TopicInstrumentUpdated, in.Symbol, msg, id, lastUpdated.sequence)
}

// repairConfig publishes ch unless an event of its revision or a later one
// exists.
func (s *Service) repairConfig(ctx context.Context, r eventReader, ch ConfigChange) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var changed metadatav1.ConfigChanged
	last, err := r.last(ctx, streams.TopicConfigChanged, ConfigTopicKey(ch.Key), &changed, changed.GetRevision)
	if err != nil || last.revision >= ch.Revision {
		return err
	}
	ch.Actor = s.cfg.Actor
	return s.republish(ctx, streams.TopicConfigChanged, ConfigTopicKey(ch.Key), configChangeToProto(ch), ConfigEventID(ch.Key, ch.Revision), last.sequence)
}

// republish publishes a recovered event if the subject's last message is
// still at lastSeq; if another process published meanwhile, it leaves the
// subject alone (the next repair looks again).
func (s *Service) republish(ctx context.Context, topic, key string, msg proto.Message, id string, lastSeq uint64) error {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	_, err := s.events.pub.Publish(pctx, topic, key, msg, streams.WithMsgID(id), streams.WithExpectedLastSubjectSequence(lastSeq))
	switch {
	case errors.Is(err, streams.ErrConcurrency):
		s.log.InfoContext(ctx, "event repair skipped: the subject moved on", "topic", topic, "key", key, "msg_id", id)
		return nil
	case err != nil:
		return fmt.Errorf("repair %s on %s: %w", id, topic, err)
	}
	s.log.WarnContext(ctx, "published an event that a crash or failed publish had left out", "topic", topic, "key", key, "msg_id", id)
	return nil
}
