package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/tradex-mesh/tradex/gateway"
	"github.com/tradex-mesh/tradex/internal/platformtest"
)

// FuzzQuery: whatever query string the GET routes are sent, each answers
// a 2xx, or a 4xx with the error body; never a 5xx, a panic or a hang.
// The routes run on a real platform behind a real gateway.
func FuzzQuery(f *testing.F) {
	for _, seed := range []string{
		"", "pageSize=10", "pageSize=-1", "pageSize=99999999999999999999", "pageSize=1.5",
		"pageToken=%ZZ", "pageToken=AAAA", "pageToken=" + string(make([]byte, 300)),
		"status=filled,new", "status=bogus", "status=", "includeZero=maybe", "includeZero=1",
		"asset=USDT&asset=BTC", "asset=usdt", "depth=1e3", "depth=-1", "limit=0", "limit=18446744073709551616",
		"beforeSeq=-5", "interval=2m", "interval=1h&startTime=yesterday", "startTime=2026-01-01T00:00:00Z&endTime=1",
		"accountId=bob", "accountId=alice&accountId=bob", "accountId=%00", "x=1", "a%00=b", "=", "&&&",
		"symbol=BTCUSDT,ETHUSDT", "symbol=,,,", "kind=spot", "kind=INSTRUMENT_KIND_SPOT", "kind=7",
		"quoteAsset=%E2%82%AC", "baseAsset=%C3%28", "instrumentId=BTC.USDT",
	} {
		f.Add(seed)
	}
	p := platformtest.New(f)
	cfg := gateway.Default()
	cfg.RateLimit = gateway.RateLimit{} // every input reaches its route
	base := serveGateway(f, p, cfg)
	paths := []string{
		"/v1/orders", "/v1/orders/o1", "/v1/balances", "/v1/balances/USDT", "/v1/instruments", "/v1/instruments/BTCUSDT",
		"/v1/instruments/BTCUSDT/book", "/v1/instruments/BTCUSDT/trades", "/v1/instruments/BTCUSDT/ticker",
		"/v1/instruments/BTCUSDT/candles", "/v1/tickers",
	}
	client := &http.Client{Timeout: 10 * time.Second}
	f.Fuzz(func(t *testing.T, query string) {
		for _, path := range paths {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path+"?"+query, nil)
			if err != nil {
				return // no client could send it
			}
			req.Header.Set("Authorization", "Bearer alice")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("GET %s?%q: %v", path, query, err)
			}
			body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if err != nil {
				t.Fatalf("GET %s?%q: read: %v", path, query, err)
			}
			switch {
			case resp.StatusCode >= 500:
				t.Fatalf("GET %s?%q: %d %s", path, query, resp.StatusCode, body)
			case resp.StatusCode >= 400:
				var e struct{ Code, Message string }
				if err := json.Unmarshal(body, &e); err != nil || e.Code == "" || e.Message == "" {
					t.Fatalf("GET %s?%q: %d without an error body: %s", path, query, resp.StatusCode, body)
				}
			}
		}
	})
}
