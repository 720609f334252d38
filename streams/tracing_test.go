package streams_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
)

// A publish records a producer span, and handling the message a consumer
// span that is its child, in the trace of the publisher's context; a
// handler's failures are recorded on its span, a dead letter marks it
// failed.
func TestPublishAndConsumeRecordSpans(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	catalog := faultCatalog(t)
	if err := streams.EnsureStreams(t.Context(), s.JetStream(), catalog); err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.WithoutCancel(t.Context())) })
	client := streams.NewClient(s.JetStream(), catalog, streams.WithTracerProvider(tp))

	ctx, root := tp.Tracer("test").Start(t.Context(), "request")
	if _, err := client.Publisher().Publish(ctx, "fault.events.v1", "k", wrapperspb.String("ok"), streams.WithMsgID("m-ok")); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Publisher().Publish(ctx, "fault.events.v1", "k", wrapperspb.String("poison"), streams.WithMsgID("m-poison")); err != nil {
		t.Fatal(err)
	}
	root.End()
	c, err := streams.Consume(t.Context(), client, "fault.events.v1", streams.ConsumerConfig{Name: "traced", MaxDeliver: 2},
		func(_ context.Context, m *streams.Message[*wrapperspb.StringValue]) error {
			if m.Payload.GetValue() == "poison" {
				return streams.Permanent(errors.New("cannot handle poison"))
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.WithoutCancel(t.Context())) })

	var processed []sdktrace.ReadOnlySpan
	polltest.True(t, "both messages processed", func() bool {
		processed = processed[:0]
		for _, sp := range rec.Ended() {
			if sp.Name() == "process fault.events.v1" {
				processed = append(processed, sp)
			}
		}
		return len(processed) == 2
	})
	var sends []sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		if sp.Name() == "send fault.events.v1" {
			sends = append(sends, sp)
		}
	}
	if len(sends) != 2 {
		t.Fatalf("%d send spans, want 2", len(sends))
	}
	for i, send := range sends {
		if send.SpanKind() != trace.SpanKindProducer || send.Parent().SpanID() != root.SpanContext().SpanID() {
			t.Errorf("send %d: kind %v, parent %v; want a producer child of the request", i, send.SpanKind(), send.Parent().SpanID())
		}
	}
	failed := 0
	for _, p := range processed {
		if p.SpanKind() != trace.SpanKindConsumer || p.SpanContext().TraceID() != root.SpanContext().TraceID() {
			t.Errorf("process span: kind %v, trace %v; want a consumer in the request's trace", p.SpanKind(), p.SpanContext().TraceID())
		}
		if parent := p.Parent().SpanID(); parent != sends[0].SpanContext().SpanID() && parent != sends[1].SpanContext().SpanID() {
			t.Errorf("process span's parent %v is no send span", parent)
		}
		if p.Status().Code.String() == "Error" {
			failed++
			if len(p.Events()) == 0 || p.Events()[0].Name != "exception" || !strings.HasPrefix(p.Status().Description, "dead-lettered") {
				t.Errorf("dead-lettered span: status %q, events %v; want the handler's error recorded", p.Status().Description, p.Events())
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d process spans failed, want the poison one", failed)
	}
}
