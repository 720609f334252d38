package telemetry_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tradex-mesh/tradex/internal/telemetry"
)

func TestNewTracingChecksItsConfig(t *testing.T) {
	t.Parallel()
	tp, stop, err := telemetry.NewTracing(t.Context(), telemetry.TracingConfig{})
	if err != nil || tp == nil {
		t.Fatalf("no endpoint: %v, %v; want a provider that records nothing", tp, err)
	}
	_, span := tp.Tracer("t").Start(t.Context(), "x")
	if span.IsRecording() {
		t.Error("a span is recorded without an endpoint")
	}
	if err := stop(t.Context()); err != nil {
		t.Errorf("stop: %v", err)
	}
	for _, bad := range []telemetry.TracingConfig{
		{Endpoint: "127.0.0.1:4318", SampleRatio: 1},
		{Endpoint: "ftp://collector:4318", SampleRatio: 1},
		{Endpoint: "http://collector:4318", SampleRatio: 1.5},
	} {
		if _, _, err := telemetry.NewTracing(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "want") {
			t.Errorf("%+v: err = %v, want one saying what is wanted", bad, err)
		}
	}
	tp, stop, err = telemetry.NewTracing(t.Context(), telemetry.TracingConfig{Endpoint: "http://127.0.0.1:1", SampleRatio: 1, Service: "tradex"})
	if err != nil {
		t.Fatal(err)
	}
	_, span = tp.Tracer("t").Start(t.Context(), "x")
	if !span.IsRecording() || !span.SpanContext().IsSampled() {
		t.Error("a span with an endpoint and ratio 1 is not recorded")
	}
	span.End()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_ = stop(ctx) // the collector is not there: the flush fails, the test does not care
}
