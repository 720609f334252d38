package streams

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracerName names the spans this package records.
const tracerName = "github.com/tradex-mesh/tradex/streams"

// WithTracerProvider makes the client's publishers and consumers record
// OpenTelemetry spans with tp: a producer span per publish (one per batch),
// a consumer span per handled message, child of the span that published
// it. Without it no span is recorded; the trace context of ctx is carried
// in the messages' traceparent header either way.
func WithTracerProvider(tp trace.TracerProvider) ClientOption {
	return func(c *Client) { c.tracer = tp.Tracer(tracerName) }
}

// withTracer makes a publisher record its spans with t.
func withTracer(t trace.Tracer) PublisherOption { return func(p *Publisher) { p.tracer = t } }

// noTracer records nothing and carries the parent's span context on.
func noTracer() trace.Tracer { return noop.NewTracerProvider().Tracer(tracerName) }

// startPublish starts the producer span of a publish of n messages to
// topic.
func startPublish(ctx context.Context, t trace.Tracer, topic string, n int) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.operation.type", "send"),
		attribute.String("messaging.destination.name", topic),
	}
	if n > 1 {
		attrs = append(attrs, attribute.Int("messaging.batch.message_count", n))
	}
	return t.Start(ctx, "send "+topic, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
}

// startProcess starts the consumer span of a handled message; ctx carries
// the publisher's span context.
func startProcess(ctx context.Context, t trace.Tracer, topic, consumer string, m msgInfo) (context.Context, trace.Span) {
	return t.Start(ctx, "process "+topic, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.destination.name", topic),
		attribute.String("messaging.consumer.group.name", consumer),
		attribute.String("messaging.message.id", m.id),
		attribute.Int64("messaging.nats.stream_sequence", int64(m.seq)), //nolint:gosec // a stream sequence fits
		attribute.Int("messaging.nats.delivery", m.delivery),
	))
}

// msgInfo is what a consumer span says of its message.
type msgInfo struct {
	id       string
	seq      uint64
	delivery int
}

// endSpan records err (if any) on span and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// startBatch starts the send spans of a batch of records: one in ctx's
// trace for the records without a Context of their own, one in each
// record Context's trace for the others (records of the same span share
// it). It returns the context each record's message is built with, and
// the function that ends every span with the batch's outcome.
func (p *Publisher) startBatch(ctx context.Context, records []Record) ([]context.Context, func(error)) {
	topic := records[0].Topic
	type started struct {
		ctx  context.Context //nolint:containedctx // the span's, for the records of its trace
		span trace.Span
		n    int
	}
	// Records share a span when their contexts are in the same span; a
	// record Context outside any span keeps its own (its correlation id).
	type spanKey struct {
		trace  trace.TraceID
		span   trace.SpanID
		record int // 1 + the record's index for a Context outside any span
	}
	var spans []*started
	bySpan := map[spanKey]*started{}
	of := make([]*started, len(records))
	for i, r := range records {
		parent, key := r.Context, spanKey{} //nolint:contextcheck // the record's own trace (Record.Context)
		if parent == nil {
			parent = ctx
		}
		if sc := trace.SpanContextFromContext(parent); sc.IsValid() {
			key.trace, key.span = sc.TraceID(), sc.SpanID()
		} else if r.Context != nil {
			key.record = i + 1
		}
		st := bySpan[key]
		if st == nil {
			st = &started{ctx: parent}
			bySpan[key] = st
			spans = append(spans, st)
		}
		st.n++
		of[i] = st
	}
	for _, st := range spans {
		st.ctx, st.span = startPublish(st.ctx, p.tracer, topic, st.n)
	}
	ctxs := make([]context.Context, len(records))
	for i, st := range of {
		ctxs[i] = st.ctx
	}
	return ctxs, func(err error) {
		for _, st := range spans {
			endSpan(st.span, err)
		}
	}
}

// ContextFrom returns ctx carrying the trace context and correlation id of
// a message's headers, as a consumer's handler gets for its own message:
// for work done for a message read from a stream rather than delivered
// (a command read ahead), to publish its results in its trace.
func ContextFrom(ctx context.Context, h nats.Header) context.Context { return extractContext(ctx, h) }

// WithTraceOf returns ctx (its deadline and cancellation) carrying the
// span and correlation id of from: to publish, within a caller's bounds,
// the message of another request (a record's Context).
func WithTraceOf(ctx, from context.Context) context.Context {
	ctx = trace.ContextWithSpanContext(ctx, trace.SpanContextFromContext(from))
	if id := CorrelationID(from); id != "" {
		ctx = WithCorrelationID(ctx, id)
	}
	return ctx
}
