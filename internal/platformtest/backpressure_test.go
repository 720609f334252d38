package platformtest_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/services/order"
)

// TestBackpressure: with settlement held back (the matching engine
// stopped, so commands wait), PlaceOrder answers Unavailable with a
// Retry-After once the backlog passes order.Config.MaxBacklog, cancels
// still go through, and orders are taken again once the backlog drains.
func TestBackpressure(t *testing.T) {
	t.Parallel()
	const limit = 3
	p := platformtest.New(t, platformtest.WithOrderConfig(func(c *order.Config) {
		c.MaxBacklog, c.BacklogEvery = limit, 5*time.Millisecond
	}))
	if _, err := p.Wallet.Deposit(t.Context(), &walletv1.DepositRequest{TransferId: "d1", AccountId: "ann", Asset: "USDT", Amount: "1000"}); err != nil {
		t.Fatal(err)
	}
	place := func() (*orderv1.PlaceOrderResponse, error) {
		return p.Orders.PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{AccountId: "ann", InstrumentId: "BTCUSDT",
			Side: commonv1.Side_SIDE_BUY, Type: commonv1.OrderType_ORDER_TYPE_LIMIT, Quantity: "0.001", Price: "40000"})
	}
	p.KillMatching()
	var placed []string
	var refused error
	polltest.True(t, "PlaceOrder refused while settlement is behind", func() bool {
		res, err := place()
		if err == nil {
			placed = append(placed, res.GetOrder().GetOrderId())
			return false
		}
		refused = err
		return true
	})
	var ce *connect.Error
	if !errors.As(refused, &ce) || ce.Code() != connect.CodeUnavailable || !strings.Contains(ce.Message(), "settlement is behind") ||
		ce.Meta().Get("Retry-After") == "" {
		t.Fatalf("refusal: %v (meta %v), want Unavailable, settlement is behind, Retry-After", refused, metaOf(ce))
	}
	if len(placed) <= limit {
		t.Errorf("refused after %d orders, want more than the limit of %d waiting first", len(placed), limit)
	}
	if _, err := p.Orders.CancelOrder(t.Context(), &orderv1.CancelOrderRequest{AccountId: "ann", OrderId: placed[0]}); err != nil {
		t.Errorf("cancel while settlement is behind: %v", err)
	}
	p.StartMatching()
	polltest.True(t, "PlaceOrder taken again once settled", func() bool {
		_, err := place()
		return err == nil
	})
}

func metaOf(ce *connect.Error) any {
	if ce == nil {
		return nil
	}
	return ce.Meta()
}
