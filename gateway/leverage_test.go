package gateway_test

import (
	"net/http"
	"testing"

	"github.com/tradex-mesh/tradex/gateway"
	"github.com/tradex-mesh/tradex/internal/platformtest"
)

// A user's leverage on a perpetual over REST: the default, then what they
// set; out of range and spot refused with the field named.
func TestLeverageOverREST(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	base := serveGateway(t, p, gateway.Default())
	got := call(t, "GET", base+"/v1/leverage/BTCUSDT-PERP", "alice", nil).ok(t, http.StatusOK)
	if lv, _ := got.body["leverage"].(map[string]any); lv["leverage"] != float64(10) || lv["accountId"] != "alice" {
		t.Fatalf("default leverage: %s", got.raw)
	}
	set := call(t, "PUT", base+"/v1/leverage/BTCUSDT-PERP", "alice", map[string]any{"leverage": 25}).ok(t, http.StatusOK)
	if lv, _ := set.body["leverage"].(map[string]any); lv["leverage"] != float64(25) {
		t.Fatalf("set leverage: %s", set.raw)
	}
	got = call(t, "GET", base+"/v1/leverage/BTCUSDT-PERP", "alice", nil).ok(t, http.StatusOK)
	if lv, _ := got.body["leverage"].(map[string]any); lv["leverage"] != float64(25) {
		t.Fatalf("leverage after set: %s", got.raw)
	}
	if lv, _ := call(t, "GET", base+"/v1/leverage/BTCUSDT-PERP", "bob", nil).ok(t, http.StatusOK).body["leverage"].(map[string]any); lv["leverage"] != float64(10) {
		t.Fatalf("bob's leverage is not alice's: %v", lv)
	}
	checkError(t, call(t, "PUT", base+"/v1/leverage/BTCUSDT-PERP", "alice", map[string]any{"leverage": 51}), 400, "invalid_argument", "max_leverage 50")
	checkError(t, call(t, "PUT", base+"/v1/leverage/BTCUSDT", "alice", map[string]any{"leverage": 5}), 400, "invalid_argument", "not a perpetual")
	checkError(t, call(t, "PUT", base+"/v1/leverage/BTCUSDT-PERP", "", map[string]any{"leverage": 5}), 401, "unauthenticated", "")
}
