package matching

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// Commands stored while the engine is down are executed in one run when
// it starts (read ahead from the first one delivered); each one's events
// still continue its own trace (the traceparent of its message), not the
// trace of the command whose delivery ran them.
func TestEventsContinueTheirCommandsTrace(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	js := s.JetStream()
	pub := streams.NewPublisher(js, streams.DefaultCatalog(), streams.WithSource("test/order"))
	traces := map[uint64]string{} // command sequence -> trace id
	for i, side := range []commonv1.Side{commonv1.Side_SIDE_BUY, commonv1.Side_SIDE_SELL, commonv1.Side_SIDE_BUY} {
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{byte(i + 1), 0xaa}, SpanID: trace.SpanID{byte(i + 1)}, TraceFlags: trace.FlagsSampled,
		})
		ctx := trace.ContextWithSpanContext(t.Context(), sc)
		id := fmt.Sprintf("traced-%d", i)
		cmd := submit("BTCUSDT", id, "acct", side, commonv1.OrderType_ORDER_TYPE_LIMIT, commonv1.TimeInForce_TIME_IN_FORCE_GTC, "100.00", "1.00000")
		seq, err := pub.Publish(ctx, streams.TopicOrderCommand, "BTCUSDT", cmd, streams.WithMsgID(id))
		if err != nil {
			t.Fatal(err)
		}
		traces[seq] = sc.TraceID().String()
	}
	start(t, s, testConfig())
	evs := waitInput(t, js, "BTCUSDT", 3)
	got := eventTraces(t, js, "BTCUSDT")
	if len(got) != len(evs) {
		t.Fatalf("%d traceparents for %d events", len(got), len(evs))
	}
	for i, ev := range evs {
		if want := traces[ev.GetInputSequence()]; got[i] != want {
			t.Errorf("event %s of input %d: trace %s, want its command's %s", ev.GetEventId(), ev.GetInputSequence(), got[i], want)
		}
	}
}

// eventTraces reads the trace id of every event of inst's traceparent.
func eventTraces(t *testing.T, js jetstream.JetStream, inst string) []string {
	t.Helper()
	stream, err := js.Stream(t.Context(), streams.StreamName(streams.TopicEngineEvent))
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := streams.Subject(streams.TopicEngineEvent, inst)
	var out []string
	for seq := uint64(1); ; {
		m, err := stream.GetMsg(t.Context(), seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(m.Data, &enginev1.EngineEvent{}); err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(m.Header.Get("traceparent"), "-")
		if len(parts) != 4 {
			t.Fatalf("event at %d: traceparent %q", m.Sequence, m.Header.Get("traceparent"))
		}
		out = append(out, parts[1])
		seq = m.Sequence + 1
	}
}
