package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TracingConfig says where the process's spans go.
type TracingConfig struct {
	// Endpoint is the OTLP/HTTP collector's base URL
	// ("http://127.0.0.1:4318"; spans are posted to its /v1/traces). Empty
	// records no span. The exporter also reads the standard
	// OTEL_EXPORTER_OTLP_HEADERS (a collector's API key, ...).
	Endpoint string
	// SampleRatio is the share of traces recorded, from 0 to 1, decided
	// by trace id (the same in every process, so a trace is recorded
	// whole or not at all); a caller's traceparent cannot force it.
	SampleRatio float64
	// Service names the process in its spans (service.name).
	Service string
	// Version is the process's version (service.version).
	Version string
}

// exportTimeout bounds one export to the collector.
const exportTimeout = 10 * time.Second

// NewTracing returns the tracer provider of cfg and the function that
// flushes and stops it (call it last, with a deadline). Without an
// endpoint the provider records nothing and stopping does nothing.
func NewTracing(ctx context.Context, cfg TracingConfig) (trace.TracerProvider, func(context.Context) error, error) {
	if cfg.Endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	if cfg.SampleRatio < 0 || cfg.SampleRatio > 1 {
		return nil, nil, fmt.Errorf("trace sample ratio %v: want 0 to 1", cfg.SampleRatio)
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, fmt.Errorf("OTLP endpoint %q: want http(s)://host:port", cfg.Endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String()), otlptracehttp.WithTimeout(exportTimeout)}
	exporter, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", cfg.Service), attribute.String("service.version", cfg.Version))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(res),
		// A local parent's decision holds (a trace is whole within the
		// process); a remote one's sampled flag does not force recording:
		// the trace id decides, the same way in every process, so a caller
		// cannot have every request recorded by asking.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio),
			sdktrace.WithRemoteParentSampled(sdktrace.TraceIDRatioBased(cfg.SampleRatio)))),
	)
	shutdown := func(ctx context.Context) error {
		if err := tp.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("tracing: flush spans: %w", err)
		}
		return nil
	}
	return tp, shutdown, nil
}
