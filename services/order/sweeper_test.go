package order_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/services/order"
	"github.com/tradex-mesh/tradex/streams"
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

// TestSweepMeetsALateSubmit: a submit stored after the sweeper marked its
// order (a retry that read no record just before) is found by the next
// sweep past the grace: the swept record goes, the hold stays, and the
// engine's first event makes the order's record from the command.
func TestSweepMeetsALateSubmit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var mu sync.Mutex
	skew := time.Duration(0)
	e.clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(skew) }
	e.deposit("jay", "USDT", "1000")
	const id = "0000000000000009late"
	if _, err := e.wallet.HoldBalance(t.Context(), &walletv1.HoldBalanceRequest{HoldId: id, AccountId: "jay", Asset: "USDT",
		Amount: "500", Reason: walletv1.HoldReason_HOLD_REASON_ORDER}); err != nil {
		t.Fatal(err)
	}
	e.start(func(c *order.Config) { c.SweepEvery, c.SweepAfter, c.SweepGrace = 5*time.Millisecond, 0, time.Hour })
	kv, err := streams.NewClient(e.js, streams.DefaultCatalog()).KV(t.Context(), streams.StoreOrders)
	if err != nil {
		t.Fatal(err)
	}
	polltest.True(t, "the order marked swept", func() bool {
		_, err := kv.Get(t.Context(), "o."+id)
		return err == nil
	})
	// The late retry's submit.
	cmd := &enginev1.OrderCommand{CommandId: id, InstrumentId: "BTCUSDT", SentAt: timestamppb.Now(),
		Command: &enginev1.OrderCommand_Submit{Submit: &enginev1.SubmitOrder{
			OrderId: id, AccountId: "jay", Side: buy, Type: commonv1.OrderType_ORDER_TYPE_LIMIT,
			TimeInForce: commonv1.TimeInForce_TIME_IN_FORCE_GTC, Price: "50000.00", Quantity: "0.01000", PriceScale: 2, QuantityScale: 5}}}
	seq, err := streams.NewPublisher(e.js, streams.DefaultCatalog()).Publish(t.Context(), streams.TopicOrderCommand, "BTCUSDT", cmd, streams.WithMsgID(id))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	skew = 2 * time.Hour // past the grace
	mu.Unlock()
	polltest.True(t, "the swept record deleted", func() bool {
		_, err := kv.Get(t.Context(), "o."+id)
		return errors.Is(err, streams.ErrNotFound)
	})
	res, err := e.wallet.ListHolds(t.Context(), &walletv1.ListHoldsRequest{AccountId: "jay"})
	if err != nil || len(res.GetHolds()) != 1 || res.GetHolds()[0].GetHoldId() != id {
		t.Fatalf("jay's open holds: %v, %v; want the late order's", res.GetHolds(), err)
	}
	e.engine("BTCUSDT").publish(&enginev1.EngineEvent{InputSequence: seq, Event: &enginev1.EngineEvent_Accepted{
		Accepted: &enginev1.OrderAccepted{OrderId: id, AccountId: "jay"}}})
	polltest.True(t, "the order's record made from its command", func() bool {
		ent, err := kv.Get(t.Context(), "o."+id)
		return err == nil && strings.Contains(string(ent.Value), `"instrument":"BTCUSDT"`) && !strings.Contains(string(ent.Value), "swept")
	})
}
