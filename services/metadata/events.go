package metadata

import (
	"context"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// Message ids. Every event's Nats-Msg-Id (and ce-id) is derived from what
// it announces, so that publishing the same change twice (a retry, a
// recovery racing the original publish) stores it once within the
// streams' duplicate window, and consumers can be idempotent on it.

// InstrumentEventID is the message id of the event announcing revision of
// symbol: "instrument:BTCUSDT:3". Revision 1 is the InstrumentCreated event,
// every later one an InstrumentUpdated.
func InstrumentEventID(symbol string, revision uint64) string {
	return "instrument:" + symbol + ":" + strconv.FormatUint(revision, 10)
}

// ConfigEventID is the message id of the ConfigChanged event of key at
// revision: "config:risk.max_order_notional:17".
func ConfigEventID(key string, revision uint64) string {
	return "config:" + key + ":" + strconv.FormatUint(revision, 10)
}

// events publishes the service's topics.
type events struct {
	pub *streams.Publisher
}

// instrumentCreated publishes InstrumentCreated for in (revision 1).
func (e events) instrumentCreated(ctx context.Context, in Instrument, actor string) error {
	msg := &metadatav1.InstrumentCreated{Instrument: instrumentToProto(in), Actor: actor}
	if _, err := e.pub.Publish(ctx, streams.TopicInstrumentCreated, in.Symbol, msg,
		streams.WithMsgID(InstrumentEventID(in.Symbol, in.Revision))); err != nil {
		return fmt.Errorf("publish instrument %s created: %w", in.Symbol, err)
	}
	return nil
}

// instrumentUpdated publishes InstrumentUpdated for the change from prev to
// next. prev may be the zero Instrument when it is no longer known.
func (e events) instrumentUpdated(ctx context.Context, prev, next Instrument, changed []string, reason, actor string) error {
	msg := &metadatav1.InstrumentUpdated{
		Instrument:    instrumentToProto(next),
		ChangedFields: fieldMask(changed),
		Reason:        reason,
		Actor:         actor,
	}
	if prev.Revision != 0 {
		msg.Previous = instrumentToProto(prev)
	}
	if _, err := e.pub.Publish(ctx, streams.TopicInstrumentUpdated, next.Symbol, msg,
		streams.WithMsgID(InstrumentEventID(next.Symbol, next.Revision))); err != nil {
		return fmt.Errorf("publish instrument %s updated to revision %d: %w", next.Symbol, next.Revision, err)
	}
	return nil
}

// configChanged publishes ConfigChanged under the key's topic key.
func (e events) configChanged(ctx context.Context, ch ConfigChange) error {
	if _, err := e.pub.Publish(ctx, streams.TopicConfigChanged, ConfigTopicKey(ch.Key), configChangeToProto(ch),
		streams.WithMsgID(ConfigEventID(ch.Key, ch.Revision))); err != nil {
		return fmt.Errorf("publish config %s changed at revision %d: %w", ch.Key, ch.Revision, err)
	}
	return nil
}

// fieldMask is the mask of the named Instrument fields.
func fieldMask(paths []string) *fieldmaskpb.FieldMask {
	return &fieldmaskpb.FieldMask{Paths: paths}
}
