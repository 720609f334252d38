package streams

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
)

// Header names set on every message. The same names cross the Kafka bridge
// as Kafka record headers.
const (
	// HeaderMsgID is JetStream's idempotency key: a second message with the
	// same id inside the stream's duplicate window is stored once.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderCEID and the other ce-* headers are CloudEvents binary-mode attributes.
	HeaderCEID          = "ce-id"
	HeaderCEType        = "ce-type"
	HeaderCESource      = "ce-source"
	HeaderCETime        = "ce-time"
	HeaderCESpecVersion = "ce-specversion"
	// HeaderCEPartitionKey is the CloudEvents partitioning extension: the
	// topic key. It is not stored on JetStream, where the key is the
	// subject's last token; the Kafka bridge sets it on Kafka records.
	HeaderCEPartitionKey = "ce-partitionkey"
	// HeaderContentType says how the payload is encoded.
	HeaderContentType = "Content-Type"
	// HeaderTraceParent and HeaderTraceState are W3C trace context.
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
	// HeaderCorrelationID ties together everything done for one request.
	HeaderCorrelationID = "X-Correlation-Id"
	// HeaderOrigin names the system a bridged message came from, so that
	// two-way bridging never loops.
	HeaderOrigin = "X-Origin"
)

// Dead-letter headers, added to the original headers when a message is
// written to dlq.<topic>.
const (
	HeaderDLQReason        = "X-Dlq-Reason"
	HeaderDLQHandler       = "X-Dlq-Handler"
	HeaderDLQDeliveries    = "X-Dlq-Deliveries"
	HeaderDLQStream        = "X-Dlq-Original-Stream"
	HeaderDLQSubject       = "X-Dlq-Original-Subject"
	HeaderDLQSequence      = "X-Dlq-Original-Sequence"
	HeaderDLQOriginalMsgID = "X-Dlq-Original-Msg-Id"
	HeaderDLQTime          = "X-Dlq-Time"
)

// Content types of payloads.
const (
	ContentTypeProtobuf = "application/protobuf"
	ContentTypeJSON     = "application/json"
)

// cloudEventsSpecVersion is the CloudEvents version of the ce-* headers.
const cloudEventsSpecVersion = "1.0"

// headerCarrier lets the OpenTelemetry propagator read and write NATS
// headers (which, unlike HTTP headers, keep their case).
type headerCarrier nats.Header

// Get returns the first value of key.
func (c headerCarrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set replaces the values of key.
func (c headerCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys lists the header names.
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// traceContext is the W3C trace context propagator (traceparent, tracestate).
func traceContext() propagation.TextMapPropagator { return propagation.TraceContext{} }

// correlationKey is the context key of the correlation id.
type correlationKey struct{}

// WithCorrelationID returns ctx carrying id; messages published with the
// context carry it as X-Correlation-Id, and consumers receive it in theirs.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationID returns the correlation id carried by ctx, or "".
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}

// injectContext writes the trace context and correlation id of ctx into h.
func injectContext(ctx context.Context, h nats.Header) {
	traceContext().Inject(ctx, headerCarrier(h))
	if id := CorrelationID(ctx); id != "" {
		h.Set(HeaderCorrelationID, id)
	}
}

// extractContext returns ctx carrying the trace context and correlation id
// found in h, so that what a handler publishes continues the same trace.
func extractContext(ctx context.Context, h nats.Header) context.Context {
	ctx = traceContext().Extract(ctx, headerCarrier(h))
	if id := h.Get(HeaderCorrelationID); id != "" {
		ctx = WithCorrelationID(ctx, id)
	}
	return ctx
}
