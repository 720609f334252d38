package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tradex-mesh/tradex/gateway"
	"github.com/tradex-mesh/tradex/gateway/auth"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/internal/polltest"
)

// adminToken is the dev verifier's admin token in these tests.
const adminToken = "test-admin"

// serveGateway runs a gateway over the platform's services on a loopback
// port and returns its base URL.
func serveGateway(t testing.TB, p *platformtest.Platform, cfg gateway.Config) string {
	t.Helper()
	gw, err := gateway.New(cfg, gateway.Deps{
		Services: gateway.Services{Orders: p.Orders, Wallet: p.Wallet, Metadata: p.Metadata, MarketData: p.MarketData},
		Verifier: auth.Dev{AdminToken: adminToken},
		Connect:  p.ConnectServices(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, gw)
}

func serve(t testing.TB, gw *gateway.Gateway) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	base := "http://" + ln.Addr().String()
	// Serving has begun before the test goes on: a Shutdown that came
	// first would find no server to stop, and Serve would run for ever.
	polltest.True(t, "the gateway to serve", func() bool {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/healthz", nil)
		if err != nil {
			return false
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

// reply is a REST answer.
type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

// call sends one REST request; token "" sends no credential, body nil no body.
func call(t *testing.T, method, url, token string, body any) reply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(t, req)
}

// send sends req and reads the answer.
func send(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v\n%s", req.Method, req.URL, err, raw)
		}
	}
	return r
}

// ok fails the test unless r has the status.
func (r reply) ok(t *testing.T, status int) reply {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

// get walks a dotted path of the body ("order.status", "balances.0.asset").
func (r reply) get(path string) any {
	var v any = r.body
	for part := range strings.SplitSeq(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[part]
		case []any:
			var i int
			if _, err := fmt.Sscan(part, &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func (r reply) str(path string) string { s, _ := r.get(path).(string); return s }

func deposit(t *testing.T, base, account, asset, amount string) {
	t.Helper()
	call(t, "POST", base+"/v1/admin/deposits", adminToken, map[string]any{
		"transferId": "dep-" + account + "-" + asset, "accountId": account, "asset": asset, "amount": amount,
	}).ok(t, http.StatusOK)
}

func TestRESTTrading(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	base := serveGateway(t, p, gateway.Default())

	deposit(t, base, "alice", "USDT", "1000000")
	deposit(t, base, "bob", "BTC", "20")

	// The platform's own example, byte for byte.
	seed := `{ "instrumentId": "BTCUSDT", "side": "buy", "type": "limit", "quantity": 10.5, "price": 50000.0}`
	placed := call(t, "POST", base+"/v1/orders", "alice", seed).ok(t, http.StatusCreated)
	id := placed.str("order.orderId")
	if placed.str("order.status") != "new" || placed.str("order.side") != "buy" || placed.str("order.accountId") != "alice" || id == "" {
		t.Fatalf("placed: %s", placed.raw)
	}
	if placed.get("replayed") != false {
		t.Errorf("replayed: %v", placed.get("replayed"))
	}

	got := call(t, "GET", base+"/v1/orders/"+id, "alice", nil).ok(t, http.StatusOK)
	if got.str("order.orderId") != id || got.str("order.instrumentId") != "BTCUSDT" {
		t.Errorf("get: %s", got.raw)
	}
	held := call(t, "GET", base+"/v1/balances/USDT", "alice", nil).ok(t, http.StatusOK)
	if held.str("balance.held") != "525000.00000000" || held.str("balance.available") != "475000.00000000" {
		t.Errorf("USDT held after the buy: %s", held.raw)
	}

	// Bob sells 4 into it: a trade, alice partially filled.
	sell := call(t, "POST", base+"/v1/orders", "bob", map[string]any{
		"instrumentId": "BTCUSDT", "side": "sell", "type": "limit", "quantity": "4", "price": "50000", "clientOrderId": "bob-1",
	}).ok(t, http.StatusCreated)
	polltest.True(t, "alice's order partially filled", func() bool {
		return call(t, "GET", base+"/v1/orders/"+id, "alice", nil).str("order.status") == "partially_filled"
	})
	polltest.True(t, "bob's order filled", func() bool {
		return call(t, "GET", base+"/v1/orders/"+sell.str("order.orderId"), "bob", nil).str("order.status") == "filled"
	})
	// The same client order id again: the first order, 201 and replayed.
	again := call(t, "POST", base+"/v1/orders", "bob", map[string]any{
		"instrumentId": "BTCUSDT", "side": "sell", "type": "limit", "quantity": "4", "price": "50000", "clientOrderId": "bob-1",
	}).ok(t, http.StatusCreated)
	if again.get("replayed") != true || again.str("order.orderId") != sell.str("order.orderId") {
		t.Errorf("replay: %s", again.raw)
	}

	list := call(t, "GET", base+"/v1/orders?instrumentId=BTCUSDT&status=partially_filled,new", "alice", nil).ok(t, http.StatusOK)
	if orders, _ := list.get("orders").([]any); len(orders) != 1 || list.str("orders.0.orderId") != id {
		t.Errorf("list: %s", list.raw)
	}
	if orders, _ := call(t, "GET", base+"/v1/orders?status=filled", "alice", nil).ok(t, 200).get("orders").([]any); len(orders) != 0 {
		t.Errorf("alice has no filled order: %v", orders)
	}
	// An admin lists another account's orders.
	if got := call(t, "GET", base+"/v1/orders?accountId=bob", adminToken, nil).ok(t, 200); got.str("orders.0.accountId") != "bob" {
		t.Errorf("admin list: %s", got.raw)
	}

	var assets map[string]string
	polltest.True(t, "bob's trade settled", func() bool {
		bals := call(t, "GET", base+"/v1/balances", "bob", nil).ok(t, http.StatusOK)
		assets = map[string]string{}
		for _, b := range bals.get("balances").([]any) {
			m := b.(map[string]any)
			assets[m["asset"].(string)] = m["available"].(string)
		}
		return assets["USDT"] != ""
	})
	if assets["USDT"] != "200000.00000000" || assets["BTC"] != "16.00000000" {
		t.Errorf("bob after selling 4 BTC at 50000: %v", assets)
	}

	// Market data from the same trade.
	polltest.True(t, "the trade in market data", func() bool {
		return call(t, "GET", base+"/v1/instruments/BTCUSDT/trades?limit=10", "", nil).str("trades.0.price") == "50000.00"
	})
	book := call(t, "GET", base+"/v1/instruments/BTCUSDT/book?depth=5", "", nil).ok(t, http.StatusOK)
	if book.str("book.bids.0.price") != "50000.00" || book.str("book.bids.0.quantity") != "6.50000" {
		t.Errorf("book: %s", book.raw)
	}
	ticker := call(t, "GET", base+"/v1/instruments/BTCUSDT/ticker", "", nil).ok(t, http.StatusOK)
	if ticker.str("ticker.last") != "50000.00" {
		t.Errorf("ticker: %s", ticker.raw)
	}
	candles := call(t, "GET", base+"/v1/instruments/BTCUSDT/candles?interval=1m&limit=5", "", nil).ok(t, http.StatusOK)
	if candles.str("candles.0.close") != "50000.00" {
		t.Errorf("candles: %s", candles.raw)
	}
	tickers := call(t, "GET", base+"/v1/tickers?symbol=BTCUSDT,ETHUSDT", "", nil).ok(t, http.StatusOK)
	if ts, _ := tickers.get("tickers").([]any); len(ts) == 0 {
		t.Errorf("tickers: %s", tickers.raw)
	}
	insts := call(t, "GET", base+"/v1/instruments?kind=perpetual", "", nil).ok(t, http.StatusOK)
	if insts.str("instruments.0.symbol") != "BTCUSDT-PERP" {
		t.Errorf("perpetuals: %s", insts.raw)
	}
	if got := call(t, "GET", base+"/v1/instruments/ETHUSDT", "", nil).ok(t, 200); got.str("instrument.baseAsset") != "ETH" {
		t.Errorf("instrument: %s", got.raw)
	}

	// Cancel the rest of alice's order.
	call(t, "DELETE", base+"/v1/orders/"+id, "alice", nil).ok(t, http.StatusOK)
	polltest.True(t, "alice's order cancelled", func() bool {
		return call(t, "GET", base+"/v1/orders/"+id, "alice", nil).str("order.status") == "cancelled"
	})

	// Admin: a new instrument, changed, halted, resumed; a withdrawal.
	created := call(t, "POST", base+"/v1/admin/instruments", adminToken, map[string]any{
		"symbol": "SOLUSDT", "kind": "spot", "baseAsset": "SOL", "quoteAsset": "USDT", "tickSize": "0.01",
		"lotSize": "0.01", "minQuantity": "0.01", "minNotional": "5", "priceScale": 2, "quantityScale": 2,
	}).ok(t, http.StatusCreated)
	if created.str("instrument.symbol") != "SOLUSDT" {
		t.Errorf("created: %s", created.raw)
	}
	call(t, "PATCH", base+"/v1/admin/instruments/SOLUSDT", adminToken, map[string]any{"minNotional": "10"}).ok(t, 200)
	if got := call(t, "POST", base+"/v1/admin/instruments/SOLUSDT/halt", adminToken, map[string]any{"reason": "test"}).ok(t, 200); got.str("instrument.status") != "halted" {
		t.Errorf("halted: %s", got.raw)
	}
	if got := call(t, "POST", base+"/v1/admin/instruments/SOLUSDT/resume", adminToken, nil).ok(t, 200); got.str("instrument.status") != "trading" {
		t.Errorf("resumed: %s", got.raw)
	}
	w := call(t, "POST", base+"/v1/admin/withdrawals", adminToken, map[string]any{
		"transferId": "w-1", "accountId": "bob", "asset": "BTC", "amount": 1,
	}).ok(t, http.StatusOK)
	if w.str("balance.available") != "15.00000000" {
		t.Errorf("withdrawal: %s", w.raw)
	}

	// A balance withdrawn to zero is listed only with includeZero=true.
	deposit(t, base, "zed", "ETH", "5")
	call(t, "POST", base+"/v1/admin/withdrawals", adminToken, map[string]any{
		"transferId": "w-zed", "accountId": "zed", "asset": "ETH", "amount": "5"}).ok(t, http.StatusOK)
	count := func(query string) int {
		bs, _ := call(t, "GET", base+"/v1/balances"+query, "zed", nil).ok(t, http.StatusOK).get("balances").([]any)
		return len(bs)
	}
	if without, with := count(""), count("?includeZero=true"); without != 0 || with != 1 {
		t.Errorf("zed's balances: %d without includeZero, %d with it; want 0 and 1", without, with)
	}
}
