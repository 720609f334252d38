package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	"github.com/tradex-mesh/tradex/internal/platformtest"
)

// callsCounted makes one found and one missing GetInstrument call through
// md and reports what the metrics say of them.
func callsCounted(t *testing.T, md metadatav1connect.MetadataServiceClient, metrics func() string) {
	t.Helper()
	if _, err := md.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: "BTCUSDT"}); err != nil {
		t.Fatal(err)
	}
	if _, err := md.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: "NOPE"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("GetInstrument(NOPE) = %v, want NotFound", err)
	}
	out := metrics()
	for _, want := range []string{
		`tradex_rpc_requests_total{code="ok",procedure="/tradex.metadata.v1.MetadataService/GetInstrument"} 1`,
		`tradex_rpc_requests_total{code="not_found",procedure="/tradex.metadata.v1.MetadataService/GetInstrument"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// `tradex serve` and the test platform build their services in one place
// (internal/platform), so the same interceptors see every call: the
// metrics count the calls of both alike (the test platform once had none).
func TestServeAndTestPlatformBuildTheSameInterceptors(t *testing.T) {
	t.Parallel()
	t.Run("serve", func(t *testing.T) {
		t.Parallel()
		ep, _ := startServe(t, testServeConfig(t))
		md := metadatav1connect.NewMetadataServiceClient(internalClient(), "http://"+ep.GRPC)
		callsCounted(t, md, func() string {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+ep.HTTP+"/metrics", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		})
	})
	t.Run("platformtest", func(t *testing.T) {
		t.Parallel()
		p := platformtest.New(t)
		callsCounted(t, p.Metadata, func() string {
			rec := httptest.NewRecorder()
			p.Core().Metrics().Handler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
			return rec.Body.String()
		})
	})
}
