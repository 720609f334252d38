package gateway_test

import (
	"net/http"
	"testing"

	"github.com/tradex-mesh/tradex/gateway"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/internal/polltest"
)

// conditionalGet GETs url with an If-None-Match header.
func conditionalGet(t *testing.T, url, token, ifNoneMatch string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("If-None-Match", ifNoneMatch)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(t, req)
}

func TestRESTHTTPCaching(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	base := serveGateway(t, p, gateway.Default())
	url := base + "/v1/instruments/ETHUSDT"

	// A public GET: revalidate every time, with a strong tag of the body.
	first := call(t, "GET", url, "", nil).ok(t, http.StatusOK)
	tag := first.header.Get("ETag")
	if cc := first.header.Get("Cache-Control"); cc != "no-cache" || len(tag) < 3 || tag[0] != '"' {
		t.Fatalf("public GET: Cache-Control %q, ETag %q; want no-cache and a strong tag", cc, tag)
	}
	// Unchanged: 304 without a body, for the tag alone, in a list, weak.
	for _, inm := range []string{tag, `"other", ` + tag, "W/" + tag, "*"} {
		r := conditionalGet(t, url, "", inm)
		if r.status != http.StatusNotModified || len(r.raw) != 0 || r.header.Get("ETag") != tag {
			t.Errorf("If-None-Match %s: %d, %d body bytes, ETag %q; want 304, none, %s", inm, r.status, len(r.raw), r.header.Get("ETag"), tag)
		}
	}
	if r := conditionalGet(t, url, "", `"stale"`); r.status != http.StatusOK || r.str("instrument.symbol") != "ETHUSDT" {
		t.Errorf("another tag: %d %s, want 200 and the instrument", r.status, r.raw)
	}
	// Changed: the old tag gets the new body and a new tag.
	call(t, "PATCH", base+"/v1/admin/instruments/ETHUSDT", adminToken, map[string]any{"minNotional": "12345"}).ok(t, http.StatusOK)
	polltest.True(t, "the changed instrument served", func() bool {
		r := conditionalGet(t, url, "", tag)
		return r.status == http.StatusOK && r.str("instrument.minNotional") != first.str("instrument.minNotional") && r.header.Get("ETag") != tag
	})

	// An account's data and any write: nothing on the way may keep them.
	deposit(t, base, "alice", "USDT", "100")
	private := call(t, "GET", base+"/v1/balances", "alice", nil).ok(t, http.StatusOK)
	if cc := private.header.Get("Cache-Control"); cc != "no-store" || private.header.Get("ETag") != "" {
		t.Errorf("private GET: Cache-Control %q, ETag %q; want no-store and no tag", cc, private.header.Get("ETag"))
	}
	if r := conditionalGet(t, base+"/v1/balances", "alice", "*"); r.status != http.StatusOK {
		t.Errorf("private GET with If-None-Match *: %d, want 200", r.status)
	}
	write := call(t, "PATCH", base+"/v1/admin/instruments/ETHUSDT", adminToken, map[string]any{"minNotional": "12346"}).ok(t, http.StatusOK)
	if cc := write.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("write: Cache-Control %q, want no-store", cc)
	}
}
