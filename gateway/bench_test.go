package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tradex-mesh/tradex/gateway"
	"github.com/tradex-mesh/tradex/gateway/auth"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/order/v1/orderv1connect"
)

// benchConns is the number of client connections (and goroutines) of the
// REST benchmarks.
const benchConns = 64

// seedBody is the platform's example order body.
const seedBody = `{ "instrumentId": "BTCUSDT", "side": "buy", "type": "limit", "quantity": 10.5, "price": 50000.0}`

// BenchmarkRESTPlaceOrder measures POST /v1/orders through the gateway
// against a bare Fiber JSON handler, in the same run with the same client
// (64 keep-alive connections over loopback, the same body). The gateway's
// order service here answers at once from memory (fixedOrders), so the
// ratio is the gateway's own cost: credential check, rate limit, decoding
// the body onto the contract, the account check, the call and encoding the
// answer. The end-to-end cost of placing an order is BenchmarkPlaceOrder in
// internal/platformtest.
func BenchmarkRESTPlaceOrder(b *testing.B) {
	b.Run("bare-fiber", func(b *testing.B) {
		app := fiber.New(fiber.Config{DisableStartupMessage: true})
		app.Post("/v1/orders", bareOrderHandler)
		runREST(b, serveApp(b, app), "")
	})
	b.Run("gateway", func(b *testing.B) {
		cfg := gateway.Default()
		cfg.RateLimit = gateway.RateLimit{PerSecond: 1e9, Burst: 1e9} // on, never refusing: its cost is counted
		gw, err := gateway.New(cfg, gateway.Deps{
			Services: gateway.Services{Orders: fixedOrders{}},
			Verifier: auth.Dev{},
		})
		if err != nil {
			b.Fatal(err)
		}
		runREST(b, serveApp(b, gw.App()), "alice")
	})
}

// bareOrderHandler is what a minimal Fiber JSON endpoint does: decode the
// body into a struct, answer a struct as JSON.
func bareOrderHandler(c *fiber.Ctx) error {
	var req struct {
		InstrumentID string      `json:"instrumentId"`
		Side         string      `json:"side"`
		Type         string      `json:"type"`
		Quantity     json.Number `json:"quantity"`
		Price        json.Number `json:"price"`
	}
	if err := c.BodyParser(&req); err != nil {
		return fiber.ErrBadRequest
	}
	return c.Status(http.StatusCreated).JSON(fiber.Map{"order": fiber.Map{
		"orderId": "01JBENCH", "instrumentId": req.InstrumentID, "side": req.Side, "type": req.Type,
		"quantity": req.Quantity, "price": req.Price, "status": "new", "createdAt": time.Now().UTC(),
	}, "replayed": false})
}

// fixedOrders is an order service that accepts every order at once.
type fixedOrders struct {
	orderv1connect.UnimplementedOrderServiceHandler
}

func (fixedOrders) PlaceOrder(_ context.Context, req *orderv1.PlaceOrderRequest) (*orderv1.PlaceOrderResponse, error) {
	now := timestamppb.Now()
	return &orderv1.PlaceOrderResponse{Order: &orderv1.Order{
		OrderId: "01JBENCH", AccountId: req.GetAccountId(), InstrumentId: req.GetInstrumentId(), Side: req.GetSide(),
		Type: req.GetType(), TimeInForce: commonv1.TimeInForce_TIME_IN_FORCE_GTC, Price: req.GetPrice(),
		Quantity: req.GetQuantity(), FilledQuantity: "0", RemainingQuantity: req.GetQuantity(),
		Status: commonv1.OrderStatus_ORDER_STATUS_NEW, CreatedAt: now, UpdatedAt: now, Revision: 1,
	}}, nil
}

func serveApp(b *testing.B, app *fiber.App) string {
	b.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(b.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	b.Cleanup(func() { _ = app.Shutdown() })
	return "http://" + ln.Addr().String()
}

// runREST posts the seed body b.N times from benchConns connections and
// reports req/s and the p50/p99 latency.
func runREST(b *testing.B, base, token string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchConns, MaxConnsPerHost: benchConns}}
	defer client.CloseIdleConnections()
	post := func() (time.Duration, error) {
		req, err := http.NewRequestWithContext(b.Context(), http.MethodPost, base+"/v1/orders", bytes.NewReader([]byte(seedBody)))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Errorf("status %d", resp.StatusCode)
		}
		return time.Since(start), nil
	}
	for range benchConns { // warm every connection
		if _, err := post(); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range benchConns {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				d, err := post()
				if err != nil {
					b.Error(err)
					return
				}
				lat[i] = d
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
