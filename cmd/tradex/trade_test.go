package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

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
	wallets := walletv1connect.NewWalletServiceClient(http.DefaultClient, base)
	orders := orderv1connect.NewOrderServiceClient(http.DefaultClient, base)

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
	md := marketdatav1connect.NewMarketDataServiceClient(http.DefaultClient, base)
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
