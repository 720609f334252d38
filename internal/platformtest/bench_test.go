package platformtest_test

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/platformtest"
)

// benchParallelism times GOMAXPROCS is the number of concurrent callers.
const benchParallelism = 8

var durabilities = []struct {
	name string
	sync embedded.SyncPolicy
}{{"fsync=always", embedded.SyncAlways}, {"fsync=periodic", embedded.SyncPeriodic}}

// BenchmarkPlaceOrder measures the write path end to end: PlaceOrder over
// Connect (HTTP/1.1) to the order service, which validates, holds the funds
// through the wallet (Connect), publishes the command to JetStream and
// answers; the matching engine executes it and publishes its events. The
// latency of an order is from the PlaceOrder call to its first engine event
// (accepted or rejected) arriving at a subscriber; "answer" is the
// PlaceOrder call alone. With mix=cross buys and sells overlap and about
// half the orders trade (the wallet settles each trade); with mix=rest
// nothing trades. mix=cross-perpetual is mix=cross on BTCUSDT-PERP at 10x:
// every order holds margin, every trade moves two positions through the
// margin account.
func BenchmarkPlaceOrder(b *testing.B) {
	for _, d := range durabilities {
		for _, mix := range []string{"rest", "cross", "cross-perpetual"} {
			b.Run(fmt.Sprintf("%s/mix=%s", d.name, mix), func(b *testing.B) {
				benchmarkPlaceOrder(b, d.sync, mix != "rest", mix == "cross-perpetual")
			})
		}
	}
}

func benchmarkPlaceOrder(b *testing.B, policy embedded.SyncPolicy, cross, perpetual bool) {
	p := platformtest.New(b, platformtest.WithSync(policy))
	const accounts = 16
	for i := range accounts {
		for asset, amount := range ampleFunds {
			if _, err := p.Wallet.Deposit(b.Context(), &walletv1.DepositRequest{
				TransferId: fmt.Sprintf("dep-%d-%s", i, asset), AccountId: fmt.Sprintf("bench%02d", i), Asset: asset, Amount: amount,
			}); err != nil {
				b.Fatal(err)
			}
		}
	}
	var mu sync.Mutex
	firstEvent := map[string]time.Time{}
	sub, err := p.Server().Conn().Subscribe("engine.event.v1.>", func(m *nats.Msg) {
		at := time.Now()
		var ev enginev1.EngineEvent
		if proto.Unmarshal(m.Data, &ev) != nil {
			return
		}
		id := ev.GetAccepted().GetOrderId() + ev.GetRejected().GetOrderId()
		if id == "" {
			return
		}
		mu.Lock()
		if _, ok := firstEvent[id]; !ok {
			firstEvent[id] = at
		}
		mu.Unlock()
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	var n atomic.Int64
	started := map[string]time.Time{}
	var answers []time.Duration
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	began := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			// cross: buys 49,990-50,009, sells 49,991-50,010; rest: 1,000 apart
			side, ticks := commonv1.Side_SIDE_BUY, 4_999_000+i%20*100
			if i%2 == 0 {
				side, ticks = commonv1.Side_SIDE_SELL, 5_001_000-i%20*100
				if !cross {
					ticks += 100_000
				}
			}
			req := &orderv1.PlaceOrderRequest{
				AccountId: fmt.Sprintf("bench%02d", i%accounts), InstrumentId: "BTCUSDT", Side: side,
				Type: commonv1.OrderType_ORDER_TYPE_LIMIT, Price: markets[0].price(ticks), Quantity: "0.00100",
			}
			if perpetual { // the same prices at its tick of 0.1, its lot of 0.001
				req.InstrumentId, req.Price, req.Quantity = "BTCUSDT-PERP", fmt.Sprintf("%d.%d", ticks/100, ticks/10%10), "0.001"
			}
			start := time.Now()
			res, err := p.Orders.PlaceOrder(b.Context(), req)
			if err != nil {
				b.Error(err)
				return
			}
			answered := time.Since(start)
			mu.Lock()
			started[res.GetOrder().GetOrderId()] = start
			answers = append(answers, answered)
			mu.Unlock()
		}
	})
	loaded := time.Now()
	waitAll(b, &mu, started, firstEvent)
	evented := time.Now()
	p.WaitSettled(b)
	settled := time.Now()
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	events := make([]time.Duration, 0, len(started))
	for id, t0 := range started {
		events = append(events, firstEvent[id].Sub(t0))
	}
	b.ReportMetric(float64(b.N)/evented.Sub(began).Seconds(), "orders/s")
	b.ReportMetric(float64(b.N)/settled.Sub(began).Seconds(), "settled-orders/s")
	b.ReportMetric(float64(settled.Sub(loaded).Milliseconds()), "settle-lag-ms")
	reportPercentiles(b, "answer", answers)
	reportPercentiles(b, "event", events)
}

// BenchmarkRawPublish is the baseline of BenchmarkPlaceOrder in the same
// run: a synchronous JetStream publish of a 256-byte message with a
// Nats-Msg-Id to a file stream, by as many concurrent callers; the latency
// is from the call to the broker's ack.
func BenchmarkRawPublish(b *testing.B) {
	for _, d := range durabilities {
		b.Run(d.name, func(b *testing.B) {
			s := embeddedtest.New(b, embeddedtest.WithSync(d.sync))
			js := s.JetStream()
			if _, err := js.CreateStream(b.Context(), jetstream.StreamConfig{
				Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
			}); err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, 256)
			var n atomic.Int64
			var mu sync.Mutex
			var acks []time.Duration
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := fmt.Sprintf("m%d", n.Add(1))
					start := time.Now()
					if _, err := js.Publish(b.Context(), "raw.BTCUSDT", payload, jetstream.WithMsgID(id)); err != nil {
						b.Error(err)
						return
					}
					acked := time.Since(start)
					mu.Lock()
					acks = append(acks, acked)
					mu.Unlock()
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			reportPercentiles(b, "ack", acks)
		})
	}
}

// waitAll waits until every started item has arrived.
func waitAll(b *testing.B, mu *sync.Mutex, started, arrived map[string]time.Time) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		missing := 0
		for id := range started {
			if _, ok := arrived[id]; !ok {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d never arrived", missing, len(started))
		}
		select {
		case <-time.After(time.Millisecond):
		case <-b.Context().Done():
			return
		}
	}
}

// reportPercentiles reports the p50 and p99 of lat as "<what>-p50-µs" and
// "<what>-p99-µs".
func reportPercentiles(b *testing.B, what string, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), what+"-p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), what+"-p99-µs")
}
