package telemetry_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	"github.com/tradex-mesh/tradex/internal/telemetry"
)

// instruments answers GetInstrument for BTCUSDT only.
type instruments struct {
	metadatav1connect.UnimplementedMetadataServiceHandler
}

func (instruments) GetInstrument(_ context.Context, req *metadatav1.GetInstrumentRequest) (*metadatav1.GetInstrumentResponse, error) {
	if req.GetSymbol() != "BTCUSDT" {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no such instrument"))
	}
	return &metadatav1.GetInstrumentResponse{Instrument: &metadatav1.Instrument{Symbol: "BTCUSDT"}}, nil
}

func scrape(t *testing.T, m *telemetry.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	m := telemetry.New()
	mux := http.NewServeMux()
	mux.Handle(metadatav1connect.NewMetadataServiceHandler(instruments{}, connect.WithInterceptors(m.Interceptor())))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := metadatav1connect.NewMetadataServiceClient(srv.Client(), srv.URL)
	for _, sym := range []string{"BTCUSDT", "BTCUSDT", "DOGE"} {
		_, _ = client.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: sym})
	}
	m.ObserveHTTP("POST", "/v1/orders", 201, 3*time.Millisecond)
	m.GaugeFunc("tradex_test_gauge", "A test gauge.", func() float64 { return 7 })
	m.CounterFunc("tradex_test_total", "A test counter.", func() float64 { return 3 })

	out := scrape(t, m)
	for _, want := range []string{
		`tradex_rpc_requests_total{code="ok",procedure="/tradex.metadata.v1.MetadataService/GetInstrument"} 2`,
		`tradex_rpc_requests_total{code="not_found",procedure="/tradex.metadata.v1.MetadataService/GetInstrument"} 1`,
		`tradex_rpc_duration_seconds_count{procedure="/tradex.metadata.v1.MetadataService/GetInstrument"} 3`,
		`tradex_http_requests_total{method="POST",route="/v1/orders",status="201"} 1`,
		`tradex_http_request_duration_seconds_count{method="POST",route="/v1/orders"} 1`,
		"tradex_test_gauge 7", "tradex_test_total 3", "go_goroutines ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
