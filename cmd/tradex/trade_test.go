package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1/marketdatav1connect"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/order/v1/orderv1connect"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
)

// Two crossing orders placed through the order service trade in the
// matching engine, and the wallet settles both sides: the whole write path
// of one `tradex serve`.
func TestServeTradesEndToEnd(t *testing.T) {
	t.Parallel()
	ep, _ := startServe(t, testServeConfig(t))
	base := "http://" + ep.GRPC
	wallets := walletv1connect.NewWalletServiceClient(internalClient(), base)
	orders := orderv1connect.NewOrderServiceClient(internalClient(), base)
	buy := crossOrders(t, base)

	deadline := time.Now().Add(30 * time.Second)
	for {
		o, err := orders.GetOrder(t.Context(), &orderv1.GetOrderRequest{AccountId: "alice", OrderId: buy})
		btc, berr := wallets.GetBalance(t.Context(), &walletv1.GetBalanceRequest{AccountId: "alice", Asset: "BTC"})
		usdt, uerr := wallets.GetBalance(t.Context(), &walletv1.GetBalanceRequest{AccountId: "bob", Asset: "USDT"})
		state := fmt.Sprintf("order %v (%v), alice BTC %v (%v), bob USDT %v (%v)",
			o.GetOrder().GetStatus(), err, btc.GetBalance().GetAvailable(), berr, usdt.GetBalance().GetAvailable(), uerr)
		if err == nil && berr == nil && uerr == nil && o.GetOrder().GetStatus() == commonv1.OrderStatus_ORDER_STATUS_FILLED &&
			btc.GetBalance().GetAvailable() == "0.01000000" && usdt.GetBalance().GetAvailable() == "500.00000000" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trade not settled within 30s: %s", state)
		}
		waitABit(t)
	}

	// The market data service saw it too.
	md := marketdatav1connect.NewMarketDataServiceClient(internalClient(), base)
	for {
		res, err := md.ListTrades(t.Context(), &marketdatav1.ListTradesRequest{InstrumentId: "BTCUSDT"})
		if err == nil && len(res.GetTrades()) == 1 && res.GetTrades()[0].GetPrice() == "50000.00" && res.GetTrades()[0].GetQuantity() == "0.01000" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("market data trades %v, %v; want the one trade", res, err)
		}
		waitABit(t)
	}
}

// crossOrders funds alice with 1000 USDT and bob with 1 BTC through the
// internal port at base, then places alice's buy and bob's sell of 0.01
// BTCUSDT at 50000, which trade; it returns the buy's order id.
func crossOrders(t *testing.T, base string) string {
	t.Helper()
	wallets := walletv1connect.NewWalletServiceClient(internalClient(), base)
	orders := orderv1connect.NewOrderServiceClient(internalClient(), base)
	for _, d := range []*walletv1.DepositRequest{
		{TransferId: "d1", AccountId: "alice", Asset: "USDT", Amount: "1000"},
		{TransferId: "d2", AccountId: "bob", Asset: "BTC", Amount: "1"},
	} {
		if _, err := wallets.Deposit(t.Context(), d); err != nil {
			t.Fatalf("deposit %s: %v", d.GetAccountId(), err)
		}
	}
	place := func(account string, side commonv1.Side) string {
		t.Helper()
		res, err := orders.PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{
			AccountId: account, InstrumentId: "BTCUSDT", Side: side, Type: commonv1.OrderType_ORDER_TYPE_LIMIT,
			Quantity: "0.01", Price: "50000",
		})
		if err != nil {
			t.Fatalf("place %s order: %v", account, err)
		}
		return res.GetOrder().GetOrderId()
	}
	buy := place("alice", commonv1.Side_SIDE_BUY)
	place("bob", commonv1.Side_SIDE_SELL)
	return buy
}

// The gateway of `tradex serve` serves REST over the in-process services:
// the platform's example order body as written, placed with the dev
// verifier (the token is the account id) after an admin deposit with the
// token serve keeps in its data folder.
func TestServeREST(t *testing.T) {
	t.Parallel()
	cfg := testServeConfig(t)
	ep, _ := startServe(t, cfg)
	base := "http://" + ep.HTTP
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, adminTokenFile))
	if err != nil || len(strings.TrimSpace(string(tok))) < 32 {
		t.Fatalf("admin token file: %q, %v", tok, err)
	}
	post := func(path, token, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "POST", base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("/v1/admin/deposits", "alice", `{"transferId":"t1","accountId":"alice","asset":"USDT","amount":"1000000"}`); code != http.StatusForbidden {
		t.Errorf("deposit as alice: %d %s", code, body)
	}
	if code, body := post("/v1/admin/deposits", strings.TrimSpace(string(tok)), `{"transferId":"t1","accountId":"alice","asset":"USDT","amount":"1000000"}`); code != http.StatusOK {
		t.Fatalf("deposit as admin: %d %s", code, body)
	}
	// The WebSocket feed, with the platform's own subscribe frame, and the
	// trades of the same perpetual.
	ws, wresp, err := websocket.DefaultDialer.DialContext(t.Context(), "ws://"+ep.HTTP+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = wresp.Body.Close()
	defer ws.Close()
	frames := make(chan string, 64)
	go func() {
		defer close(frames)
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			frames <- string(msg)
		}
	}()
	// awaitFrames waits until, for each want, a frame has all of it.
	awaitFrames := func(wants ...[]string) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		var seen []string
		for len(wants) > 0 {
			select {
			case f, ok := <-frames:
				if !ok {
					t.Fatalf("feed closed waiting for %q", wants)
				}
				seen = append(seen, f)
				wants = slices.DeleteFunc(wants, func(w []string) bool { return hasAll(f, w) })
			case <-timeout:
				t.Fatalf("no frame with %q within 30s; saw:\n%s", wants, strings.Join(seen, "\n"))
			}
		}
	}
	for _, frame := range []string{
		`{"op":"subscribe","channels":[{"name":"book","symbols":["BTCUSDT-PERP"]}]}`,
		`{"op":"subscribe","channels":[{"name":"trades","symbols":["BTCUSDT-PERP"]}]}`,
	} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	awaitFrames([]string{`"op":"book"`, `"type":"snapshot"`, `"symbol":"BTCUSDT-PERP"`})

	// The seed's own order, on the seed's perpetual, then a crossing one.
	code, body := post("/v1/orders", "alice", `{ "instrumentId": "BTCUSDT-PERP", "side": "buy", "type": "limit", "quantity": 10.5, "price": 50000.0}`)
	if code != http.StatusCreated || !strings.Contains(body, `"status":"new"`) || !strings.Contains(body, `"accountId":"alice"`) ||
		!strings.Contains(body, `"margin":"52500.0000"`) {
		t.Fatalf("seed order: %d %s", code, body)
	}
	awaitFrames([]string{`"op":"book"`, `"type":"delta"`, `"bids":[{"price":"50000.0","quantity":"10.500"}]`})
	if code, body := post("/v1/admin/deposits", strings.TrimSpace(string(tok)), `{"transferId":"t2","accountId":"bob","asset":"USDT","amount":"100000"}`); code != http.StatusOK {
		t.Fatalf("deposit for bob: %d %s", code, body)
	}
	if code, body := post("/v1/orders", "bob", `{"instrumentId":"BTCUSDT-PERP","side":"sell","type":"limit","quantity":"10.5","price":"50000"}`); code != http.StatusCreated {
		t.Fatalf("crossing order: %d %s", code, body)
	}
	awaitFrames([]string{`"op":"trades"`, `"50000.0"`, `"10.500"`}, []string{`"op":"book"`, `"type":"delta"`, `"bids":[{"price":"50000.0","quantity":"0`})
	for _, who := range []struct{ acct, size string }{{"alice", `"size":"10.500"`}, {"bob", `"size":"-10.500"`}} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, got := getAs(t, base+"/v1/positions", who.acct)
			if code == http.StatusOK && hasAll(got, []string{who.size, `"instrumentId":"BTCUSDT-PERP"`, `"margin":"52500.00000000"`}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's positions: %d %s, want %s", who.acct, code, got, who.size)
			}
			waitABit(t)
		}
	}
	// alice's positions on the private WebSocket channel.
	for _, frame := range []string{`{"op":"auth","token":"alice"}`, `{"op":"subscribe","channels":[{"name":"positions"}]}`} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	awaitFrames([]string{`"op":"positions"`, `"type":"snapshot"`, `"instrumentId":"BTCUSDT-PERP"`, `"size":"10.500"`, `"margin":"52500.00000000"`})

	// Margin: alice adds 1,000 (held from her balance), cannot take out more
	// than the position spares at the mark (nothing beyond the initial
	// margin), then takes the 1,000 back.
	for _, step := range []struct {
		amount string
		code   int
		want   string
	}{
		{"1000", http.StatusOK, `"margin":"53500.0000"`},
		{"-1000.0001", http.StatusBadRequest, "at most 1000.0000 can be removed"},
		{"-1000", http.StatusOK, `"margin":"52500.0000"`},
		{"x", http.StatusBadRequest, "amount"},
	} {
		if code, body := post("/v1/positions/BTCUSDT-PERP/margin", "alice", `{"amount":"`+step.amount+`"}`); code != step.code || !strings.Contains(body, step.want) {
			t.Fatalf("margin %s: %d %s, want %d with %s", step.amount, code, body, step.code, step.want)
		}
	}
	awaitFrames([]string{`"op":"positions"`, `"type":"update"`, `"margin":"53500.00000000"`},
		[]string{`"op":"positions"`, `"type":"update"`, `"margin":"52500.00000000"`})
	// The in-process order service keeps what REST handed it after
	// fasthttp reused the request's buffers for other requests.
	for range 20 {
		post("/v1/orders", "zzzzz", `{"instrumentId":"ETHUSDT","side":"sell","type":"limit","quantity":"1","price":"9"}`)
	}
	var placed struct {
		Order struct{ OrderID string } `json:"order"`
	}
	if err := json.Unmarshal([]byte(body), &placed); err != nil {
		t.Fatal(err)
	}
	code, body = post("/v1/orders", "alice", `{ "instrumentId": "BTCUSDT", "side": "buy", "type": "limit", "quantity": 1, "price": 50000.0, "clientOrderId": "x"}`)
	if code != http.StatusCreated {
		t.Fatalf("second order: %d %s", code, body)
	}
	listReq, err := http.NewRequestWithContext(t.Context(), "GET", base+"/v1/orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	listReq.Header.Set("Authorization", "Bearer alice")
	listResp, err := http.DefaultClient.Do(listReq)
	if err != nil {
		t.Fatal(err)
	}
	listed, _ := io.ReadAll(listResp.Body)
	_ = listResp.Body.Close()
	if n := strings.Count(string(listed), `"accountId":"alice"`); n != 2 || !strings.Contains(string(listed), placed.Order.OrderID) ||
		strings.Count(string(listed), `"instrumentId":"BTCUSDT"`) != 1 || strings.Count(string(listed), `"instrumentId":"BTCUSDT-PERP"`) != 1 {
		t.Errorf("alice's orders after other requests: %s", listed)
	}
	req, err := http.NewRequestWithContext(t.Context(), "GET", base+"/v1/openapi.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("openapi: %d", resp.StatusCode)
	}

	// /metrics counts the REST requests and the Connect calls behind them.
	mreq, err := http.NewRequestWithContext(t.Context(), "GET", base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	mresp, err := http.DefaultClient.Do(mreq)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	_ = mresp.Body.Close()
	for _, want := range []string{
		`tradex_http_requests_total{method="POST",route="/v1/orders",status="201"} 3`,
		`tradex_http_requests_total{method="POST",route="/v1/positions/:symbol/margin",status="200"} 2`,
		`tradex_http_requests_total{method="POST",route="/v1/admin/deposits",status="403"} 1`,
		"tradex_ws_connections 1", // the feed above
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

}

// hasAll reports whether s contains every one of wants.
func hasAll(s string, wants []string) bool {
	for _, w := range wants {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// getAs GETs url with a bearer token and returns the status and body.
func getAs(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
