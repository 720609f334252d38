package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tradex-mesh/tradex/gateway"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/internal/telemetry"
)

// TestMetricsByRoute: /metrics counts requests by route pattern and
// status, never by raw path.
func TestMetricsByRoute(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	gw, err := gateway.New(gateway.Default(), gateway.Deps{
		Services: gateway.Services{Metadata: p.Metadata},
		Metrics:  telemetry.New(),
	})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, gw)
	call(t, "GET", base+"/v1/instruments/BTCUSDT", "", nil).ok(t, http.StatusOK)
	call(t, "GET", base+"/v1/instruments/ETHUSDT", "", nil).ok(t, http.StatusOK)
	call(t, "GET", base+"/v1/instruments/NOPE", "", nil).ok(t, http.StatusNotFound)
	call(t, "GET", base+"/v1/no/such/route", "", nil).ok(t, http.StatusNotFound)
	call(t, "POST", base+"/v1/orders", "", `{}`).ok(t, http.StatusUnauthorized)

	out := string(call(t, "GET", base+"/metrics", "", nil).ok(t, http.StatusOK).raw)
	for _, want := range []string{
		`tradex_http_requests_total{method="GET",route="/v1/instruments/:symbol",status="200"} 2`,
		`tradex_http_requests_total{method="GET",route="/v1/instruments/:symbol",status="404"} 1`,
		`tradex_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`tradex_http_requests_total{method="POST",route="/v1/orders",status="401"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(out, "no/such/route") || strings.Contains(out, "NOPE") {
		t.Error("a raw path became a label")
	}
}
