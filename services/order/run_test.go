package order_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/services/order"
	"github.com/tradex-mesh/tradex/streams"
)

// TestOrdersFollowFromTheEngine: PlaceOrder answers without writing the
// order's record (the hold and the command are its only durable writes)
// and serves the order from memory until the engine's events write it;
// the events stored while the service was down are applied in a few
// writes, not one per event; and a run stops before an event that cannot
// apply, which goes to the dead-letter topic on its own delivery while
// the events around it apply.
func TestOrdersFollowFromTheEngine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.start()
	e.deposit("gina", "USDT", "10000")
	kv, err := streams.NewClient(e.js, streams.DefaultCatalog()).KV(t.Context(), streams.StoreOrders)
	if err != nil {
		t.Fatal(err)
	}
	const orders = 20
	var ids []string
	for range orders {
		o := svc.place(t, limit("gina", "", "BTCUSDT", buy, "0.01", "50000")).GetOrder()
		ids = append(ids, o.GetOrderId())
	}
	if got := svc.get(t, ids[0]); got.GetStatus() != commonv1.OrderStatus_ORDER_STATUS_NEW {
		t.Fatalf("GetOrder right after PlaceOrder: %v", got)
	}
	if _, err := kv.Get(t.Context(), "o."+ids[0]); !errors.Is(err, streams.ErrNotFound) {
		t.Errorf("the order's record before any engine event: err = %v, want ErrNotFound (not written by PlaceOrder)", err)
	}
	svc.stop()

	eng := e.engine("BTCUSDT")
	for _, id := range ids {
		eng.accepted(id, "gina")
	}
	for i, id := range ids {
		if i == orders/2 { // a trade whose price does not parse: refused
			eng.trade("not a price", "0.01000", id, "gina", "0", ids[0], "gina", "0", commonv1.Side_SIDE_BUY)
		}
		eng.cancelled(id, "gina")
	}
	// Every run writes the instrument's position once: count them.
	var runs atomic.Int64
	ctx, stop := context.WithCancel(t.Context())
	followed := make(chan error, 1)
	go func() {
		followed <- kv.Follow(ctx, "s.BTCUSDT", func(_ context.Context, c streams.KVChange) error {
			if !c.SnapshotEnd && !c.Current {
				runs.Add(1)
			}
			return nil
		})
	}()
	svc = e.start()
	for _, id := range ids {
		svc.waitOrder(t, id, status(commonv1.OrderStatus_ORDER_STATUS_CANCELLED, "0.00000", "0.00000"))
	}
	stop()
	if err := <-followed; err != nil {
		t.Fatal(err)
	}
	if n := runs.Load(); n > 4 {
		t.Errorf("%d engine events applied in %d writes of the position, want runs", 2*orders+1, n)
	}
	dlq := streams.NewClient(e.js, streams.DefaultCatalog()).DLQ()
	polltest.True(t, "the refused trade dead-lettered by the order service", func() bool {
		dead, err := dlq.List(t.Context(), streams.TopicEngineEvent, streams.DLQFilter{Handler: order.Default().ConsumerName})
		return err == nil && len(dead) == 1 && dead[0].Sequence > 0
	})
}
