package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tradex-mesh/tradex/gateway"
	"github.com/tradex-mesh/tradex/gateway/auth"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/services/order"
)

// TestRESTErrors sends one request of every error class and checks the
// status, the code, that the message names what is wrong, and the body's
// shape.
func TestRESTErrors(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	cfg := gateway.Default()
	cfg.RESTBodyLimit = 1 << 10
	cfg.RateLimit = gateway.RateLimit{} // off: one request per case here; the limit has its own test
	base := serveGateway(t, p, cfg)
	deposit(t, base, "carol", "USDT", "100")

	order := func(fields string) string {
		return `{"instrumentId":"BTCUSDT","side":"buy","type":"limit","quantity":"1","price":"50000"` + fields + `}`
	}
	cases := []struct {
		name, method, path, token string
		body                      any
		status                    int
		code, message             string
	}{
		{"bad enum names the field", "POST", "/v1/orders", "carol", `{"instrumentId":"BTCUSDT","side":"up"}`, 400, "invalid_argument", "side: must be one of"},
		{"unknown body field", "POST", "/v1/orders", "carol", order(`,"colour":"red"`), 400, "invalid_argument", "colour: unknown field"},
		{"malformed JSON", "POST", "/v1/orders", "carol", `{"instrumentId":`, 400, "invalid_argument", "not valid JSON"},
		{"price off tick", "POST", "/v1/orders", "carol", `{"instrumentId":"BTCUSDT","side":"buy","type":"limit","quantity":"1","price":"50000.001"}`, 400, "invalid_argument", "price"},
		{"wrong content type", "POST", "/v1/orders", "carol", nil, 400, "invalid_argument", "Content-Type"},
		{"unknown query parameter", "GET", "/v1/orders?colour=red", "carol", nil, 400, "invalid_argument", "colour: is not a query parameter"},
		{"bad query value", "GET", "/v1/instruments/BTCUSDT/book?depth=deep", "", nil, 400, "invalid_argument", "depth"},
		{"bad boolean query value", "GET", "/v1/balances?includeZero=maybe", "carol", nil, 400, "invalid_argument", "includeZero: must be true or false"},
		{"insufficient funds", "POST", "/v1/orders", "carol", order(""), 400, "failed_precondition", "hold 50000 USDT for order"},
		{"no credential", "POST", "/v1/orders", "", order(""), 401, "unauthenticated", "credential"},
		{"bad credential", "GET", "/v1/balances", "no such token!", nil, 401, "unauthenticated", "invalid credential"},
		{"not an admin", "POST", "/v1/admin/deposits", "carol", `{"transferId":"x","accountId":"carol","asset":"USDT","amount":"1"}`, 403, "permission_denied", "needs the role admin"},
		{"another account", "GET", "/v1/balances?accountId=dave", "carol", nil, 403, "permission_denied", "accountId"},
		{"unknown order", "GET", "/v1/orders/nope", "carol", nil, 404, "not_found", "nope"},
		{"unknown instrument", "GET", "/v1/instruments/DOGEUSDT", "", nil, 404, "not_found", "DOGEUSDT"},
		{"unknown route", "GET", "/v1/nothing", "", nil, 404, "not_found", "no route GET /v1/nothing"},
		{"instrument exists", "POST", "/v1/admin/instruments", adminToken, `{"symbol":"BTCUSDT","kind":"spot","baseAsset":"BTC","quoteAsset":"USDT","tickSize":"0.01","lotSize":"0.00001","minQuantity":"0.00001","minNotional":"5","priceScale":2,"quantityScale":5}`, 409, "already_exists", "BTCUSDT"},
		{"body too large", "POST", "/v1/orders", "carol", order(`,"clientOrderId":"` + strings.Repeat("x", 2000) + `"`), 413, "resource_exhausted", "over the limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var r reply
			if c.name == "wrong content type" {
				r = callWithType(t, c.method, base+c.path, c.token, order(""), "text/plain")
			} else {
				r = call(t, c.method, base+c.path, c.token, c.body)
			}
			checkError(t, r, c.status, c.code, c.message)
			if c.code == "failed_precondition" && (!strings.HasSuffix(r.str("message"), ": carol has too little USDT available") ||
				strings.Contains(r.str("message"), "failed_precondition")) {
				t.Errorf("message %q: want the wallet's words once, without a nested code", r.str("message"))
			}
		})
	}

	t.Run("service down", func(t *testing.T) {
		// Not parallel with the others: it stops the order service.
		p.KillOrders()
		defer p.StartOrders()
		r := call(t, "GET", base+"/v1/orders/x", "carol", nil)
		checkError(t, r, 503, "unavailable", "")
	})
}

func checkError(t *testing.T, r reply, status int, code, message string) {
	t.Helper()
	if r.status != status || r.str("code") != code || !strings.Contains(r.str("message"), message) {
		t.Errorf("got %d %s, want %d %s with %q", r.status, r.raw, status, code, message)
	}
	if _, ok := r.get("details").([]any); !ok {
		t.Errorf("details is not a list: %s", r.raw)
	}
	if id := r.str("traceId"); len(id) != 32 || r.header.Get("X-Trace-Id") != id {
		t.Errorf("traceId %q, X-Trace-Id %q", id, r.header.Get("X-Trace-Id"))
	}
}

func callWithType(t *testing.T, method, url, token, body, contentType string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+token)
	return send(t, req)
}

// TestRateLimit runs a client out of its budget: the headers count down,
// the next request is 429 with Retry-After, another client is unaffected,
// and the budget refills with time.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	cfg := gateway.Default()
	cfg.RateLimit = gateway.RateLimit{PerSecond: 0.5, Burst: 3}
	gw, err := gateway.New(cfg, gateway.Deps{Now: clock.now, Verifier: auth.Dev{}})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, gw)
	for want := 2; want >= 0; want-- {
		r := call(t, "GET", base+"/v1/instruments", "", nil) // Unimplemented: no service; the limit comes first
		if got := r.header.Get("X-RateLimit-Remaining"); got != strconv.Itoa(want) || r.header.Get("X-RateLimit-Limit") != "3" {
			t.Fatalf("remaining %q, want %d (limit %q)", got, want, r.header.Get("X-RateLimit-Limit"))
		}
	}
	r := call(t, "GET", base+"/v1/instruments", "", nil)
	checkError(t, r, http.StatusTooManyRequests, "resource_exhausted", "rate limit")
	if r.header.Get("Retry-After") != "2" {
		t.Errorf("Retry-After %q, want 2 (one request per 2 s)", r.header.Get("Retry-After"))
	}
	// A client with a credential has its own budget.
	if r := call(t, "GET", base+"/v1/instruments", "erin", nil); r.status == http.StatusTooManyRequests || r.header.Get("X-RateLimit-Remaining") != "2" {
		t.Errorf("erin's first request: %d, remaining %q", r.status, r.header.Get("X-RateLimit-Remaining"))
	}
	clock.advance(2 * time.Second)
	if r := call(t, "GET", base+"/v1/instruments", "", nil); r.status == http.StatusTooManyRequests {
		t.Errorf("after 2 s: still limited: %s", r.raw)
	}
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestTrustedProxies: behind a trusted proxy a request belongs to the
// right-most X-Forwarded-For address that is not a proxy (what a client
// writes left of it proves nothing); from anywhere else the header is
// ignored.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	for _, trusted := range []bool{true, false} {
		cfg := gateway.Default()
		cfg.RateLimit = gateway.RateLimit{PerSecond: 0.001, Burst: 1}
		if trusted {
			cfg.TrustedProxies = []string{"127.0.0.1", "10.0.0.0/8"}
		}
		gw, err := gateway.New(cfg, gateway.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		base := serve(t, gw)
		status := func(xff string) int {
			req, err := http.NewRequestWithContext(t.Context(), "GET", base+"/v1/instruments", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Forwarded-For", xff)
			return send(t, req).status
		}
		first := status("203.0.113.7, 10.1.2.3")
		spoofed := status("198.51.100.1, 203.0.113.7, 10.1.2.3") // the same client, a made-up address in front
		other := status("203.0.113.8")
		if first == http.StatusTooManyRequests {
			t.Fatalf("trusted %v: first request limited", trusted)
		}
		if spoofed != http.StatusTooManyRequests {
			t.Errorf("trusted %v: a spoofed left-most address bought a new budget (%d)", trusted, spoofed)
		}
		if trusted && other == http.StatusTooManyRequests || !trusted && other != http.StatusTooManyRequests {
			t.Errorf("trusted %v: another client got %d", trusted, other)
		}
	}
	if _, err := gateway.New(gateway.Config{TrustedProxies: []string{"proxy.local"}}, gateway.Deps{}); err == nil {
		t.Error("a host name as trusted proxy was accepted")
	}
}

// TestEveryAnswerNamesItsTrace: successes carry X-Trace-Id too, the
// caller's W3C trace id when it sent one.
func TestEveryAnswerNamesItsTrace(t *testing.T) {
	t.Parallel()
	gw, err := gateway.New(gateway.Default(), gateway.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, gw)
	if id := call(t, "GET", base+"/healthz", "", nil).ok(t, http.StatusOK).header.Get("X-Trace-Id"); len(id) != 32 {
		t.Errorf("X-Trace-Id of a success: %q", id)
	}
	req, err := http.NewRequestWithContext(t.Context(), "GET", base+"/v1/openapi.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if id := send(t, req).header.Get("X-Trace-Id"); id != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("X-Trace-Id with a traceparent: %q", id)
	}
}

// TestRateLimitAddressCeiling: fresh credentials from one address share
// the address's ceiling, and a user named like the admin does not share
// the admin's budget.
func TestRateLimitAddressCeiling(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	cfg := gateway.Default()
	cfg.RateLimit = gateway.RateLimit{PerSecond: 0.001, Burst: 2, AddressPerSecond: 0.001, AddressBurst: 5}
	gw, err := gateway.New(cfg, gateway.Deps{Now: clock.now, Verifier: auth.Dev{AdminToken: "admin-token-0123456789"}})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, gw)
	var statuses []int
	for i := range 7 {
		statuses = append(statuses, call(t, "GET", base+"/v1/instruments", fmt.Sprintf("fresh-%d", i), nil).status)
	}
	for i, s := range statuses {
		if limited := s == http.StatusTooManyRequests; limited != (i >= 5) {
			t.Fatalf("fresh tokens from one address: statuses %v, want the 6th on refused", statuses)
		}
	}

	clock.advance(time.Hour) // every bucket full again
	call(t, "GET", base+"/v1/instruments", "admin", nil)
	call(t, "GET", base+"/v1/instruments", "admin", nil) // the user "admin" spends its own budget...
	if r := call(t, "GET", base+"/v1/instruments", "admin-token-0123456789", nil); r.status == http.StatusTooManyRequests || r.header.Get("X-RateLimit-Remaining") != "1" {
		t.Errorf("the admin after a user named admin spent its budget: %d, remaining %q", r.status, r.header.Get("X-RateLimit-Remaining"))
	}
}

// TestStrictREST: what REST once took silently is refused with 400 naming
// the problem: a field given twice (either spelling), invalid UTF-8, a
// Content-Type that only starts like JSON, a path parameter that is not an
// identifier once decoded.
func TestStrictREST(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	cfg := gateway.Default()
	cfg.RateLimit = gateway.RateLimit{}
	base := serveGateway(t, p, cfg)
	deposit(t, base, "carol", "USDT", "100000")
	for _, tc := range []struct {
		name, method, path, body, contentType, message string
	}{
		{"both spellings", "POST", "/v1/orders", `{"instrumentId":"BTCUSDT","instrument_id":"ETHUSDT","side":"buy","type":"limit","quantity":"0.001","price":"50000"}`,
			"application/json", "instrumentId: given twice, also as instrument_id"},
		{"duplicate key", "POST", "/v1/orders", `{"instrumentId":"BTCUSDT","instrumentId":"ETHUSDT","side":"buy","type":"limit","quantity":"0.001","price":"50000"}`,
			"application/json", "instrumentId: given twice"},
		{"invalid UTF-8", "POST", "/v1/orders", "{\"instrumentId\":\"BTC\xffUSDT\"}", "application/json", "invalid UTF-8"},
		{"content type prefix", "POST", "/v1/orders", `{}`, "application/jsonx", "Content-Type"},
		{"foreign charset", "POST", "/v1/orders", `{}`, "application/json; charset=latin1", "Content-Type"},
		{"encoded NUL in the path", "GET", "/v1/balances/USDT%00", "", "", "asset: may only hold"},
		{"invalid UTF-8 in the query", "GET", "/v1/instruments?baseAsset=%C3%28", "", "", "baseAsset: is not valid UTF-8"}, // was 500 (found by FuzzQuery)
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkError(t, callWithType(t, tc.method, base+tc.path, "carol", tc.body, tc.contentType), 400, "invalid_argument", tc.message)
		})
	}
	r := callWithType(t, "POST", base+"/v1/orders", "carol", `{"instrumentId":"BTCUSDT","side":"buy","type":"limit","quantity":"0.001","price":"50000"}`,
		"application/json; charset=UTF-8")
	r.ok(t, http.StatusCreated)
	if orders := call(t, "GET", base+"/v1/orders", "carol", nil); len(orders.get("orders").([]any)) != 1 {
		t.Errorf("orders after the refused ones and one good one: %s", orders.raw)
	}
}

// TestHEADAnswersGETRoutes: HEAD on a GET route answers as GET would,
// without the body (it was 405).
func TestHEADAnswersGETRoutes(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	base := serveGateway(t, p, gateway.Default())
	for _, path := range []string{"/v1/instruments/BTCUSDT", "/v1/instruments/BTCUSDT/book"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodHead, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) != 0 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("HEAD %s: %d %q, Content-Type %q; want 200, no body, JSON", path, resp.StatusCode, body, resp.Header.Get("Content-Type"))
		}
	}
}

// TestRESTBackpressure: while settlement is behind (the matching engine
// stopped, commands waiting), POST /v1/orders answers 503 unavailable with
// Retry-After, the order service's hint.
func TestRESTBackpressure(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t, platformtest.WithOrderConfig(func(c *order.Config) {
		c.MaxBacklog, c.BacklogEvery = 2, 5*time.Millisecond
	}))
	cfg := gateway.Default()
	cfg.RateLimit = gateway.RateLimit{}
	base := serveGateway(t, p, cfg)
	deposit(t, base, "carol", "USDT", "1000")
	p.KillMatching()
	var r reply
	polltest.True(t, "an order refused while settlement is behind", func() bool {
		r = call(t, "POST", base+"/v1/orders", "carol", `{"instrumentId":"BTCUSDT","side":"buy","type":"limit","quantity":"0.001","price":"40000"}`)
		return r.status != http.StatusCreated
	})
	checkError(t, r, 503, "unavailable", "settlement is behind")
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
}
