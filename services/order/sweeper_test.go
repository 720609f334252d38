package order_test

import (
	"testing"
	"time"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/services/order"
)

// TestSweeperReleasesHoldsWhoseSubmitNeverLanded: a hold made for an order
// whose submit was never published (the order service died between the
// two) is released by the sweeper, and the order answers as rejected; the
// hold of an order whose submit is on engine.order.v1, not executed yet
// (no engine runs here), is kept.
func TestSweeperReleasesHoldsWhoseSubmitNeverLanded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.deposit("ivy", "USDT", "1000")
	// Placed while the sweeper waits: its submit is on the stream.
	svc := e.start()
	placed := svc.place(t, limit("ivy", "", "BTCUSDT", buy, "0.01", "50000")).GetOrder() // holds 500 USDT
	svc.stop()
	// A hold whose order never got its submit published.
	const lost = "0000000000000009lost"
	if _, err := e.wallet.HoldBalance(t.Context(), &walletv1.HoldBalanceRequest{HoldId: lost, AccountId: "ivy", Asset: "USDT",
		Amount: "300", Reason: walletv1.HoldReason_HOLD_REASON_ORDER}); err != nil {
		t.Fatal(err)
	}
	svc = e.start(func(c *order.Config) { c.SweepEvery, c.SweepAfter, c.SweepGrace = 5*time.Millisecond, 0, 0 })
	openHolds := func() map[string]bool {
		res, err := e.wallet.ListHolds(t.Context(), &walletv1.ListHoldsRequest{AccountId: "ivy"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, h := range res.GetHolds() {
			out[h.GetHoldId()] = true
		}
		return out
	}
	polltest.True(t, "the lost order's hold released", func() bool { return !openHolds()[lost] })
	if !openHolds()[placed.GetOrderId()] {
		t.Error("the hold of an order whose submit is on the stream was released")
	}
	bal, err := e.wallet.GetBalance(t.Context(), &walletv1.GetBalanceRequest{AccountId: "ivy", Asset: "USDT"})
	if err != nil {
		t.Fatal(err)
	}
	if b := bal.GetBalance(); b.GetAvailable() != "500.00000000" || b.GetHeld() != "500.00000000" {
		t.Errorf("ivy's USDT %s/%s, want 500/500 (only the placed order's hold left)", b.GetAvailable(), b.GetHeld())
	}
	o, err := svc.client.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: lost})
	if err != nil {
		t.Fatal(err)
	}
	if o.GetOrder().GetStatus() != commonv1.OrderStatus_ORDER_STATUS_REJECTED {
		t.Errorf("the lost order: %v, want rejected", o.GetOrder())
	}
}
