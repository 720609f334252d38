package gateway

import (
	"context"
	"strings"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the gateway's spans.
const tracerName = "github.com/tradex-mesh/tradex/gateway"

// untraced reports whether path gets no span: probes and scrapes.
func untraced(path string) bool {
	return strings.HasPrefix(path, "/healthz") || strings.HasPrefix(path, "/readyz") || strings.HasPrefix(path, "/metrics")
}

// spanKey is the Fiber local of a Connect-Web request's span, for the
// call's detached context.
type spanKey struct{}

// requestHeaders lets the W3C propagator read a request's headers.
type requestHeaders struct{ c *fiber.Ctx }

// Get returns the header's value.
func (h requestHeaders) Get(key string) string { return h.c.Get(key) }

// Set does nothing: requests are only read.
func (requestHeaders) Set(string, string) {}

// Keys lists the request's header names.
func (h requestHeaders) Keys() []string {
	var keys []string
	for k := range h.c.Request().Header.All() {
		keys = append(keys, string(k))
	}
	return keys
}

// startRequestSpan starts the server span of an API request, child of the
// caller's traceparent, and puts it in the request's context. It returns
// nil for an untraced path.
func (g *Gateway) startRequestSpan(c *fiber.Ctx) trace.Span {
	if untraced(c.Path()) {
		return nil
	}
	ctx := propagation.TraceContext{}.Extract(c.UserContext(), requestHeaders{c})
	ctx, span := g.tracer.Start(ctx, c.Method(), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", c.Method()), attribute.String("url.path", c.Path())))
	c.SetUserContext(ctx)
	return span
}

// endRequestSpan names the span after the route that answered and ends
// it with the answer's status (a 5xx is an error).
func endRequestSpan(c *fiber.Ctx, span trace.Span, route string, status int) {
	span.SetName(c.Method() + " " + route)
	span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", status))
	if status >= fiber.StatusInternalServerError {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// spanTraceID is the trace id of ctx's span, or "" when it has none.
func spanTraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}
