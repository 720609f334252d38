package platformtest_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/internal/polltest"
)

// TestConsumerLagMetric: /metrics reports the backlog of every durable
// consumer, a stopped service's included: commands wait for a stopped
// matching engine, and the lag goes back to 0 once it runs again.
func TestConsumerLagMetric(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	lagLine := regexp.MustCompile(`tradex_consumer_lag\{consumer="matching-engine",service="matching",topic="engine\.order\.v1"\} (\d+)`)
	lag := func() int {
		rec := httptest.NewRecorder()
		p.Core().Metrics().Handler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
		m := lagLine.FindStringSubmatch(rec.Body.String())
		if m == nil {
			return -1
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	polltest.True(t, "the matching consumer's lag at 0", func() bool { return lag() == 0 })
	if _, err := p.Wallet.Deposit(t.Context(), &walletv1.DepositRequest{TransferId: "d1", AccountId: "ann", Asset: "USDT", Amount: "1000"}); err != nil {
		t.Fatal(err)
	}
	p.KillMatching()
	for range 3 {
		if _, err := p.Orders.PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{AccountId: "ann", InstrumentId: "BTCUSDT",
			Side: commonv1.Side_SIDE_BUY, Type: commonv1.OrderType_ORDER_TYPE_LIMIT, Quantity: "0.001", Price: "40000"}); err != nil {
			t.Fatal(err)
		}
	}
	polltest.True(t, "three commands waiting", func() bool { return lag() == 3 })
	p.StartMatching()
	polltest.True(t, "the backlog drained", func() bool { return lag() == 0 })
}
