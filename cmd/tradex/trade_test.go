package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
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
	code, body := post("/v1/orders", "alice", `{ "instrumentId": "BTCUSDT", "side": "buy", "type": "limit", "quantity": 10.5, "price": 50000.0}`)
	if code != http.StatusCreated || !strings.Contains(body, `"status":"new"`) || !strings.Contains(body, `"accountId":"alice"`) {
		t.Fatalf("seed order: %d %s", code, body)
	}
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
		strings.Count(string(listed), `"instrumentId":"BTCUSDT"`) != 2 {
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
		`tradex_http_requests_total{method="POST",route="/v1/orders",status="201"} 2`,
		`tradex_http_requests_total{method="POST",route="/v1/admin/deposits",status="403"} 1`,
		"tradex_ws_connections 0",
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The WebSocket feed, with the platform's own subscribe frame.
	ws, wresp, err := websocket.DefaultDialer.DialContext(t.Context(), "ws://"+ep.HTTP+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = wresp.Body.Close()
	defer ws.Close()
	seed := `{"op":"subscribe","channels":[{"name":"book","symbols":["BTCUSDT-PERP"]}]}`
	if err := ws.WriteMessage(websocket.TextMessage, []byte(seed)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"op":"subscribed"`, `"type":"snapshot","symbol":"BTCUSDT-PERP"`} {
		if err := ws.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
			t.Fatal(err)
		}
		_, msg, err := ws.ReadMessage()
		if err != nil || !strings.Contains(string(msg), want) {
			t.Fatalf("frame %s, %v; want %s", msg, err, want)
		}
	}
}
