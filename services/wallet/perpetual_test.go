package wallet

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/internal/perp"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
)

const perpSymbol = "BTCUSDT-PERP"

// perpInstruments adds a perpetual (price scale 1, quantity scale 3:
// amounts at scale 4) to the test instruments.
func perpInstruments() instruments {
	out := instruments{perpSymbol: {
		Symbol: perpSymbol, Kind: commonv1.InstrumentKind_INSTRUMENT_KIND_PERPETUAL, BaseAsset: "BTC", QuoteAsset: "USDT",
		PriceScale: 1, QuantityScale: 3, Perpetual: &metadatav1.PerpetualRules{MaxLeverage: 50, MaintenanceMarginRate: "0.005"},
	}}
	for k, v := range testInstruments {
		out[k] = v
	}
	return out
}

// perpEngine publishes a perpetual's engine events, its positions kept
// with internal/perp as the matching engine keeps them.
type perpEngine struct {
	t         *testing.T
	pub       *streams.Publisher
	n         int
	positions map[string]perp.Position
}

func (e *perpEngine) publish(ev *enginev1.EngineEvent) uint64 {
	e.t.Helper()
	e.n++
	ev.EventId, ev.InstrumentId = fmt.Sprintf("%s:%d:0", perpSymbol, e.n), perpSymbol
	ev.MarkPrice = "52000.0"
	seq, err := e.pub.Publish(e.t.Context(), streams.TopicEngineEvent, perpSymbol, ev, streams.WithMsgID(ev.EventId))
	if err != nil {
		e.t.Fatal(err)
	}
	return seq
}

func amount4(v int64) string { return decimal.Format(v, 4) }

// fill applies a fill of signed qty (scale 3) at price (scale 1) with the
// order's margin share to acct's position.
func (e *perpEngine) fill(acct string, qty, price, margin int64) *enginev1.PositionChange {
	e.t.Helper()
	next, ch, err := e.positions[acct].Trade(qty, price, margin)
	if err != nil {
		e.t.Fatal(err)
	}
	e.positions[acct] = next
	return &enginev1.PositionChange{
		Size: decimal.Format(next.Size, 3), EntryValue: amount4(next.Value), Margin: amount4(next.Margin),
		MarginFromOrder: amount4(margin), RealizedPnl: amount4(ch.Realized), ReleasedMargin: amount4(ch.Released),
		Payout: amount4(ch.Payout), Shortfall: amount4(ch.Shortfall),
	}
}

// trade publishes a trade of qty at price: the taker buys (or sells) from
// the maker, each bringing its margin share, both orders filled.
func (e *perpEngine) trade(taker, takerOrder string, takerSide commonv1.Side, maker, makerOrder string, qty, price, takerMargin, makerMargin int64, takerFee, makerFee string) uint64 {
	signed := qty
	makerSide := commonv1.Side_SIDE_SELL
	if takerSide == commonv1.Side_SIDE_SELL {
		signed, makerSide = -qty, commonv1.Side_SIDE_BUY
	}
	return e.publish(&enginev1.EngineEvent{Event: &enginev1.EngineEvent_Trade{Trade: &enginev1.Trade{
		TradeId: fmt.Sprintf("%s:%d:0", perpSymbol, e.n+1), Price: decimal.Format(price, 1), Quantity: decimal.Format(qty, 3),
		TakerOrderId: takerOrder, TakerAccountId: taker, TakerSide: takerSide, TakerRemainingQuantity: "0.000",
		MakerOrderId: makerOrder, MakerAccountId: maker, MakerSide: makerSide, MakerRemainingQuantity: "0.000",
		TakerFee: takerFee, MakerFee: makerFee,
		TakerPosition: e.fill(taker, signed, price, takerMargin), MakerPosition: e.fill(maker, -signed, price, makerMargin),
	}}})
}

// perpSettled waits until the wallet applied the perpetual's event at seq.
func perpSettled(t *testing.T, w *instance, seq uint64) {
	t.Helper()
	polltest.True(t, fmt.Sprint("engine event ", seq), func() bool {
		var got uint64
		w.svc.st.read(func(b *Book) { got = b.EngineSequence(perpSymbol) })
		return got >= seq
	})
}

// A perpetual's trades, funding and takeover move margins through the
// instrument's margin account: which always holds the open positions'
// margins less their entry values (their equity at any one mark), funds
// are conserved, and the positions the wallet serves are the engine's.
func TestPerpetualSettlement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	logs := &lockedBuffer{}
	start := func() *instance {
		client := streams.NewClient(e.js, streams.DefaultCatalog())
		svc, err := New(testConfig(), Deps{Streams: client, Publisher: client.Publisher(streams.WithSource("tradex/wallet")),
			Instruments: perpInstruments(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return e.run(svc)
	}
	w := start()
	c := w.client
	deposit(t, c, "d1", "alice", "USDT", "10000")
	deposit(t, c, "d2", "bob", "USDT", "10000")
	deposit(t, c, "d3", "carol", "USDT", "10000")
	hold(t, c, "A1", "alice", "USDT", "252.5") // buy 0.1 @ 50,000 at 20x: margin 250, taker fee 2.5
	hold(t, c, "B1", "bob", "USDT", "251")     // sell 0.1 @ 50,000 at 20x: margin 250, maker fee 1
	hold(t, c, "C1", "carol", "USDT", "520")   // buy 0.1 @ 52,000 at 10x, no fee
	eng := &perpEngine{t: t, pub: streams.NewPublisher(e.js, streams.DefaultCatalog(), streams.WithSource("tradex/matching")), positions: map[string]perp.Position{}}

	eng.trade("alice", "A1", commonv1.Side_SIDE_BUY, "bob", "B1", 100, 500000, 250_0000, 250_0000, "2.5000", "1.0000")
	// alice closes with a reduce-only order that holds nothing: +200 realized, 250 released.
	seq := eng.trade("carol", "C1", commonv1.Side_SIDE_BUY, "alice", "A2", 100, 520000, 520_0000, 0, "", "")
	perpSettled(t, w, seq)
	for _, b := range []struct{ acct, want string }{
		{"alice", "10197.50000000/0.00000000"}, {"bob", "9749.00000000/0.00000000"}, {"carol", "9480.00000000/0.00000000"},
		{"margin-" + perpSymbol, "570.00000000/0.00000000"}, {"fees-" + perpSymbol, "3.50000000/0.00000000"},
	} {
		if got := balance(t, c, b.acct, "USDT"); got != b.want {
			t.Errorf("%s USDT %s, want %s", b.acct, got, b.want)
		}
	}
	checkPool(t, w, eng)

	// The price ran up: alice's gain was paid while bob's loss is still his
	// margin's. bob's position is taken over by the fund at its bankruptcy
	// price with a shortfall the fund cannot pay yet: the event waits.
	bob := eng.positions["bob"]
	bankr, _, err := bob.BankruptcyPrice()
	if err != nil {
		t.Fatal(err)
	}
	worse := bankr + 100 // 10 USDT a BTC past it: a 1 USDT shortfall on 0.1
	taken := &enginev1.PositionTakenOver{AccountId: "bob", Size: "-0.100", Price: decimal.Format(worse, 1),
		Position: eng.fill("bob", 100, worse, 0), InsuranceAccountId: "insurance-fund", InsurancePosition: eng.fill("insurance-fund", -100, worse, 0)}
	if taken.GetPosition().GetShortfall() != "1.0000" {
		t.Fatalf("takeover %v, want a shortfall of 1", taken)
	}
	seq = eng.publish(&enginev1.EngineEvent{Event: &enginev1.EngineEvent_TakenOver{TakenOver: taken}})
	polltest.True(t, "the wallet to say the takeover waits for the fund", func() bool {
		return strings.Contains(logs.String(), "perpetual settlement waits for the insurance fund")
	})
	var at uint64
	w.svc.st.read(func(b *Book) { at = b.EngineSequence(perpSymbol) })
	if at >= seq {
		t.Fatal("a takeover the fund cannot pay was settled")
	}
	deposit(t, c, "fund", "insurance-fund", "USDT", "100")
	perpSettled(t, w, seq)
	if got := balance(t, c, "insurance-fund", "USDT"); got != "99.00000000/0.00000000" {
		t.Errorf("insurance fund %s, want 99 after paying the shortfall", got)
	}
	checkPool(t, w, eng)

	// Funding: carol's long pays, the fund's short receives; the payer's
	// rounding goes to the fund. A watch of carol's positions sees it.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	watch, err := c.WatchPositions(ctx, &walletv1.WatchPositionsRequest{AccountId: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watch.Close() }()
	var watched []string
	for len(watched) < 2 && watch.Receive() {
		m := watch.Msg()
		watched = append(watched, fmt.Sprintf("current %s/%s end %v", m.GetCurrent().GetSize(), m.GetCurrent().GetMargin(), m.GetSnapshotEnd() != nil))
	}
	if want := "current 0.100/520.00000000 end false; current / end true"; strings.Join(watched, "; ") != want {
		t.Fatalf("watch snapshot %q, want %q", strings.Join(watched, "; "), want)
	}
	funding := &enginev1.FundingSettled{Rate: "0.0001", MarkPrice: "52000.0", Insurance: "0.0001"}
	for _, p := range []struct {
		acct   string
		amount int64
	}{{"carol", 5201}, {"insurance-fund", -5200}} {
		pos := eng.positions[p.acct]
		pos.Margin -= p.amount
		eng.positions[p.acct] = pos
		funding.Payments = append(funding.Payments, &enginev1.FundingPayment{AccountId: p.acct, Amount: amount4(p.amount),
			Margin: amount4(pos.Margin), Shortfall: "0.0000", Size: decimal.Format(pos.Size, 3), EntryValue: amount4(pos.Value)})
	}
	seq = eng.publish(&enginev1.EngineEvent{Event: &enginev1.EngineEvent_Funding{Funding: funding}})
	perpSettled(t, w, seq)
	if !watch.Receive() {
		t.Fatalf("watch ended: %v", watch.Err())
	}
	if ch := watch.Msg().GetChanged(); ch.GetSize() != "0.100" || ch.GetMargin() != "519.47990000" || ch.GetMarkPrice() != "52000.0" {
		t.Errorf("watched change %v, want carol's margin after funding", ch)
	}
	checkPool(t, w, eng)
	if got := balance(t, c, "insurance-fund", "USDT"); got != "99.00010000/0.00000000" {
		t.Errorf("insurance fund %s, want 99.0001 with the funding's rounding", got)
	}

	// carol adds 100 of margin (held first), then takes 50 back.
	hold(t, c, "margin:1", "carol", "USDT", "100")
	for _, adj := range []struct {
		command    string
		amount     int64
		took, paid string
	}{{"margin:1", 100_0000, "100.0000", "0.0000"}, {"margin:2", -50_0000, "0.0000", "50.0000"}} {
		pos := eng.positions["carol"]
		pos.Margin += adj.amount
		eng.positions["carol"] = pos
		seq = eng.publish(&enginev1.EngineEvent{CommandId: adj.command, Event: &enginev1.EngineEvent_MarginAdjusted{MarginAdjusted: &enginev1.MarginAdjusted{
			AccountId: "carol", Amount: amount4(adj.amount), Position: &enginev1.PositionChange{
				Size: "0.100", EntryValue: amount4(pos.Value), Margin: amount4(pos.Margin), MarginFromOrder: adj.took, Payout: adj.paid,
			}}}})
	}
	perpSettled(t, w, seq)
	checkPool(t, w, eng)
	if got := balance(t, c, "carol", "USDT"); got != "9430.00000000/0.00000000" {
		t.Errorf("carol USDT %s after adding 100 and removing 50 of margin, want 9430", got)
	}

	// What the wallet serves: carol's position at the last mark.
	res := must[*walletv1.GetPositionsResponse](t)(c.GetPositions(t.Context(), &walletv1.GetPositionsRequest{AccountId: "carol"}))
	if len(res.GetPositions()) != 1 {
		t.Fatalf("carol's positions %v, want one", res)
	}
	got := res.GetPositions()[0]
	if got.GetSize() != "0.100" || got.GetEntryPrice() != "52000.0" || got.GetMargin() != "569.47990000" ||
		got.GetMarkPrice() != "52000.0" || got.GetUnrealizedPnl() != "0.00000000" || got.GetLiquidationPrice() == "" {
		t.Errorf("carol's position %v", got)
	}
	if res := must[*walletv1.GetPositionsResponse](t)(c.GetPositions(t.Context(), &walletv1.GetPositionsRequest{AccountId: "alice"})); len(res.GetPositions()) != 0 {
		t.Errorf("alice closed her position, got %v", res)
	}
	totalsBefore := totals(w)
	if totalsBefore["USDT"] != 30100_00000000 {
		t.Errorf("USDT over all accounts %d, want the deposits", totalsBefore["USDT"])
	}

	// A restart rebuilds the positions from the journal.
	cancel() // the watch: the server's stop waits for its streams
	before := stateOf(t, w)
	w.stop()
	w = start()
	if after := stateOf(t, w); after != before {
		t.Errorf("state after restart:\n%s\nwant\n%s", after, before)
	}
	// With no event settled since, the mark comes from the last engine event.
	res = must[*walletv1.GetPositionsResponse](t)(w.client.GetPositions(t.Context(), &walletv1.GetPositionsRequest{AccountId: "carol"}))
	if len(res.GetPositions()) != 1 || res.GetPositions()[0].GetMarkPrice() != "52000.0" || res.GetPositions()[0].GetUnrealizedPnl() == "" {
		t.Errorf("carol's position after a restart %v, want it valued at the last mark", res)
	}
}

// checkPool: the margin account holds the open positions' margins less
// their entry values, and the wallet's positions are the engine's.
func checkPool(t *testing.T, w *instance, eng *perpEngine) {
	t.Helper()
	var want int64
	for _, p := range eng.positions {
		want += p.Margin - p.Value
	}
	var pool int64
	var positions []Position
	w.svc.st.read(func(b *Book) {
		pool = b.Balance("margin-"+perpSymbol, "USDT").Available
		positions = b.Positions("")
	})
	if pool != want*10_000 { // scale 4 to 8
		t.Errorf("margin account %d, want %d", pool, want*10_000)
	}
	open := 0
	for acct, p := range eng.positions {
		if p.Size != 0 {
			open++
		}
		var got *Position
		for i := range positions {
			if positions[i].Account == acct {
				got = &positions[i]
			}
		}
		switch {
		case p.Size == 0 && got != nil:
			t.Errorf("%s's position %v, want closed", acct, got)
		case p.Size != 0 && (got == nil || got.Size != decimal.Format(p.Size, 3) || got.Value != p.Value*10_000 || got.Margin != p.Margin*10_000):
			t.Errorf("%s's position %v, want %+v", acct, got, p)
		}
	}
	if len(positions) != open {
		t.Errorf("wallet positions %v, want %d open", positions, open)
	}
}

// lockedBuffer collects a service's logs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
