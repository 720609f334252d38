package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/tradex-mesh/tradex/gateway"
	"github.com/tradex-mesh/tradex/gateway/auth"
	"github.com/tradex-mesh/tradex/gateway/wsfeed"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/internal/polltest"
)

// TestRESTOrdersShowOnTheWebSocket: two crossing orders placed through
// REST reach a WebSocket client of the same gateway as a trade on the
// trades channel and a change on the book channel.
func TestRESTOrdersShowOnTheWebSocket(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	feed, err := wsfeed.New(wsfeed.Default(), wsfeed.Deps{MarketData: p.MarketData, Orders: p.Orders, Wallet: p.Wallet,
		Verifier: auth.Dev{AdminToken: adminToken}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
		defer cancel()
		if err := feed.Shutdown(ctx); err != nil {
			t.Errorf("feed shutdown: %v", err)
		}
	})
	gw, err := gateway.New(gateway.Default(), gateway.Deps{
		Services:  gateway.Services{Orders: p.Orders, Wallet: p.Wallet, Metadata: p.Metadata, MarketData: p.MarketData},
		Verifier:  auth.Dev{AdminToken: adminToken},
		WebSocket: feed.Handler(),
	})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, gw)
	// A plain GET of /ws gets the gateway's error body.
	checkError(t, call(t, "GET", base+"/ws", "", nil), 426, "failed_precondition", "WebSocket")
	deposit(t, base, "alice", "USDT", "100000")
	deposit(t, base, "bob", "BTC", "1")

	ws, resp, err := websocket.DefaultDialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(base, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	defer ws.Close()
	frames := make(chan map[string]any, 64)
	go func() {
		defer close(frames)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var f map[string]any
			if json.Unmarshal(data, &f) == nil {
				frames <- f
			}
		}
	}()
	next := func(what string, match func(map[string]any) bool) map[string]any {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case f, ok := <-frames:
				if !ok {
					t.Fatalf("connection closed waiting for %s", what)
				}
				if match(f) {
					return f
				}
			case <-deadline:
				t.Fatalf("no %s within 20s", what)
			}
		}
	}
	sub := `{"op":"subscribe","channels":[{"name":"book","symbols":["BTCUSDT"]},{"name":"trades","symbols":["BTCUSDT"]}],"req_id":"s1"}`
	if err := ws.WriteMessage(websocket.TextMessage, []byte(sub)); err != nil {
		t.Fatal(err)
	}
	next("the ack", func(f map[string]any) bool { return f["op"] == "subscribed" && f["req_id"] == "s1" })
	snap := next("the book snapshot", func(f map[string]any) bool { return f["op"] == "book" && f["type"] == "snapshot" })
	seq := snap["data"].(map[string]any)["seq"].(float64)

	call(t, "POST", base+"/v1/orders", "alice", `{"instrumentId":"BTCUSDT","side":"buy","type":"limit","quantity":"0.3","price":"61000"}`).ok(t, 201)
	delta := next("the resting buy on the book", func(f map[string]any) bool { return f["op"] == "book" && f["type"] == "delta" })
	d := delta["data"].(map[string]any)
	if d["prevSeq"].(float64) != seq || d["seq"].(float64) <= seq {
		t.Errorf("delta seq %v prevSeq %v after snapshot seq %v", d["seq"], d["prevSeq"], seq)
	}
	if bids, _ := d["bids"].([]any); len(bids) != 1 || bids[0].(map[string]any)["price"] != "61000.00" {
		t.Errorf("delta: %v", d)
	}

	call(t, "POST", base+"/v1/orders", "bob", `{"instrumentId":"BTCUSDT","side":"sell","type":"market","quantity":0.1,"price":60000}`).ok(t, 201)
	// The trade and the book change it made, in either order.
	var trade, after map[string]any
	next("the trade and its book change", func(f map[string]any) bool {
		switch {
		case f["op"] == "trades":
			trade = f
		case f["op"] == "book" && f["type"] == "delta":
			after = f
		}
		return trade != nil && after != nil
	})
	td := trade["data"].(map[string]any)
	if td["price"] != "61000.00" || td["quantity"] != "0.10000" || td["takerSide"] != "sell" || trade["symbol"] != "BTCUSDT" {
		t.Errorf("trade frame: %v", trade)
	}
	ad := after["data"].(map[string]any)
	if bids, _ := ad["bids"].([]any); len(bids) != 1 || bids[0].(map[string]any)["quantity"] != "0.20000" {
		t.Errorf("book change of the trade: %v", ad)
	}
	if ad["prevSeq"].(float64) != d["seq"].(float64) {
		t.Errorf("the trade's delta does not follow the last one: %v after %v", ad, d)
	}
}

// TestWebSocketConnectionsAreRateLimited: connection attempts draw on the
// address's budget like requests.
func TestWebSocketConnectionsAreRateLimited(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	feed := newFeed(t, wsfeed.Default(), wsfeed.Deps{MarketData: p.MarketData})
	cfg := gateway.Default()
	cfg.RateLimit = gateway.RateLimit{PerSecond: 0.001, Burst: 2}
	gw, err := gateway.New(cfg, gateway.Deps{WebSocket: feed.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	url := "ws" + strings.TrimPrefix(serve(t, gw), "http") + "/ws"
	var statuses []int
	for range 3 {
		ws, resp, err := websocket.DefaultDialer.DialContext(t.Context(), url, nil)
		if resp != nil {
			statuses = append(statuses, resp.StatusCode)
			_ = resp.Body.Close()
		}
		if err == nil {
			_ = ws.Close()
		}
	}
	if len(statuses) != 3 || statuses[0] != 101 || statuses[1] != 101 || statuses[2] != 429 {
		t.Errorf("upgrade statuses %v, want 101 101 429", statuses)
	}
}

// TestWebSocketCapCountsTheForwardedClient: behind a trusted proxy the
// feed's per-address cap counts the client the proxy names, as the rate
// limits do, not the proxy.
func TestWebSocketCapCountsTheForwardedClient(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	feedCfg := wsfeed.Default()
	feedCfg.MaxConnectionsPerAddress = 1
	feed := newFeed(t, feedCfg, wsfeed.Deps{MarketData: p.MarketData})
	cfg := gateway.Default()
	cfg.TrustedProxies = []string{"127.0.0.1"}
	gw, err := gateway.New(cfg, gateway.Deps{WebSocket: feed.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	url := "ws" + strings.TrimPrefix(serve(t, gw), "http") + "/ws"
	var statuses []int
	admitted := 0
	for _, client := range []string{"203.0.113.1", "203.0.113.1", "203.0.113.2"} {
		ws, resp, err := websocket.DefaultDialer.DialContext(t.Context(), url, http.Header{"X-Forwarded-For": {client}})
		if resp != nil {
			statuses = append(statuses, resp.StatusCode)
			_ = resp.Body.Close()
		}
		if err == nil {
			t.Cleanup(func() { _ = ws.Close() })
			// A connection counts once its goroutine registered it, just
			// after the upgrade (one upgraded meanwhile is closed with 1013
			// rather than refused with 429): wait for that.
			admitted++
			polltest.True(t, "the connection counted", func() bool { return feed.Stats().Connections == admitted })
		}
	}
	if !slices.Equal(statuses, []int{101, 429, 101}) {
		t.Errorf("upgrade statuses %v, want 101 429 101", statuses)
	}
}

// newFeed is a WebSocket feed with cfg over deps, shut down when the test
// ends.
func newFeed(t *testing.T, cfg wsfeed.Config, deps wsfeed.Deps) *wsfeed.Feed {
	t.Helper()
	feed, err := wsfeed.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
		defer cancel()
		_ = feed.Shutdown(ctx)
	})
	return feed
}
