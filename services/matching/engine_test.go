package matching

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
)

func TestInvalidCommandsAreRejected(t *testing.T) {
	t.Parallel()
	withSubmit := func(f func(s *enginev1.SubmitOrder)) *enginev1.OrderCommand {
		c := submit("BTCUSDT", "o1", "alice", buy, limit, gtc, "100.5", "1")
		f(c.GetSubmit())
		return c
	}
	cases := []struct {
		name string
		cmd  *enginev1.OrderCommand
	}{
		{"too many price digits", withSubmit(func(s *enginev1.SubmitOrder) { s.Price = "100.501" })},
		{"bad quantity", withSubmit(func(s *enginev1.SubmitOrder) { s.Quantity = "1e3" })},
		{"empty limit price", withSubmit(func(s *enginev1.SubmitOrder) { s.Price = "" })},
		{"zero quantity", withSubmit(func(s *enginev1.SubmitOrder) { s.Quantity = "0" })},
		{"negative price", withSubmit(func(s *enginev1.SubmitOrder) { s.Price = "-1" })},
		{"negative scale", withSubmit(func(s *enginev1.SubmitOrder) { s.PriceScale = -1 })},
		{"scales above 18", withSubmit(func(s *enginev1.SubmitOrder) { s.PriceScale, s.QuantityScale = 10, 9 })},
		{"side out of range", withSubmit(func(s *enginev1.SubmitOrder) { s.Side = 300 })},
		{"unspecified side", withSubmit(func(s *enginev1.SubmitOrder) { s.Side = 0 })},
		{"other instrument", withSubmit(func(*enginev1.SubmitOrder) {})},
		{"no command", &enginev1.OrderCommand{CommandId: "x", InstrumentId: "BTCUSDT"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newInstrument("BTCUSDT")
			if tc.name == "other instrument" {
				st = newInstrument("ETHUSDT")
			}
			evs := st.apply(input{sequence: 7, time: time.Unix(1, 0), cmd: tc.cmd})
			if len(evs) != 1 {
				t.Fatalf("got %d events, want 1: %v", len(evs), evs)
			}
			r := evs[0].GetRejected()
			if r == nil || r.GetReason() != commonv1.RejectReason_REJECT_REASON_INVALID_ORDER || r.GetMessage() == "" {
				t.Fatalf("got %v, want an invalid-order rejection", evs[0])
			}
			if evs[0].GetEventId() != st.id+":7:0" || evs[0].GetSequence() != 1 || st.lastInput != 7 || st.book.Len() != 0 {
				t.Fatalf("got %v, state input %d resting %d", evs[0], st.lastInput, st.book.Len())
			}
		})
	}
}

func TestScalesFixedWhileOrdersRest(t *testing.T) {
	t.Parallel()
	st := newInstrument("BTCUSDT")
	st.apply(input{sequence: 1, cmd: submit("BTCUSDT", "o1", "a", buy, limit, gtc, "100.5", "1")})
	other := submit("BTCUSDT", "o2", "b", sell, limit, gtc, "100.5", "1")
	other.GetSubmit().PriceScale = 3
	evs := st.apply(input{sequence: 2, cmd: other})
	if evs[0].GetRejected().GetReason() != commonv1.RejectReason_REJECT_REASON_INVALID_ORDER {
		t.Fatalf("got %v, want a rejection for changed scales", evs[0])
	}
	evs = st.apply(input{sequence: 3, cmd: cancelCmd("BTCUSDT", "c", "o1", "a")})
	if c := evs[0].GetCancelled(); c.GetPrice() != "100.50" || c.GetRemainingQuantity() != "1.00000" {
		t.Fatalf("got %v", evs[0])
	}
	again := submit("BTCUSDT", "o3", "b", sell, limit, gtc, "100.5", "1") // a new order: o2's id is taken
	again.GetSubmit().PriceScale = 3
	evs = st.apply(input{sequence: 4, cmd: again}) // the book is empty: new scales apply
	if evs[0].GetAccepted().GetPrice() != "100.500" {
		t.Fatalf("got %v", evs[0])
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	st := &instrument{priceScale: 2, quantityScale: 5}
	for _, c := range []struct {
		p, q int64
		want string
	}{
		{5000050, 40000, "20000.2000000"},
		{1, 1, "0.0000001"},
		{9223372036854775807, 9223372036854775807, "8507059173023461584739690778423.2501249"},
	} {
		if got := st.quote(c.p, c.q); got != c.want {
			t.Errorf("quote(%d, %d) = %s, want %s", c.p, c.q, got, c.want)
		}
	}
}

// The last event of every command carries the mark price: the median of the
// best bid, the best ask and the last trade, moved a quarter of the way
// toward it per command (internal/perp.Mark).
func TestMarkPriceOnTheLastEventOfACommand(t *testing.T) {
	t.Parallel()
	st := newInstrument("BTCUSDT")
	steps := []struct {
		cmd  *enginev1.OrderCommand
		want string
	}{
		{submit("BTCUSDT", "a1", "alice", sell, limit, gtc, "101", "1"), "101.00"}, // the ask alone
		{submit("BTCUSDT", "b1", "bob", buy, limit, gtc, "99", "1"), "100.75"},     // the mid, 100: a quarter of the way
		{submit("BTCUSDT", "b2", "bob", buy, limit, ioc, "101", "1"), "100.82"},    // takes the ask: no ask, so the last trade, 101
		{cancelCmd("BTCUSDT", "c1", "b1", "bob"), "100.87"},                        // an empty book: the last trade
		{submit("BTCUSDT", "x", "bob", buy, limit, gtc, "1.001", "1"), "100.91"},   // rejected: the mark still moves
		{submit("BTCUSDT", "a2", "alice", sell, limit, gtc, "500", "1"), "100.94"}, // a lone far ask moves nothing
		{submit("BTCUSDT", "b3", "bob", buy, limit, gtc, "99", "1"), "100.96"},     // median(99, 500, 101)
	}
	for i, s := range steps {
		evs := st.apply(input{sequence: uint64(i + 1), cmd: s.cmd})
		for j, e := range evs[:len(evs)-1] {
			if e.GetMarkPrice() != "" {
				t.Fatalf("command %d: event %d of %d carries a mark", i, j, len(evs))
			}
		}
		if got := evs[len(evs)-1].GetMarkPrice(); got != s.want {
			t.Fatalf("command %d (%s): mark %q, want %q", i, s.cmd.GetCommandId(), got, s.want)
		}
	}
	if m, _ := st.mark.Price(); m != 10096 || st.lastTrade != 10100 {
		t.Fatalf("state: mark %d, last trade %d", m, st.lastTrade)
	}
	if evs := newInstrument("BTCUSDT").apply(input{sequence: 1, cmd: cancelCmd("BTCUSDT", "c", "o", "a")}); evs[0].GetMarkPrice() != "" {
		t.Fatalf("a mark before any price: %v", evs[0])
	}
}

// A trade charges the taker order's taker rate and the maker order's maker
// rate on its value, rounded up; a resting order keeps its rates until it
// leaves the book; a rate that is no fraction rejects the order.
func TestFees(t *testing.T) {
	t.Parallel()
	st := newInstrument("BTCUSDT")
	withFees := func(c *enginev1.OrderCommand, maker, taker string) *enginev1.OrderCommand {
		c.GetSubmit().MakerFeeRate, c.GetSubmit().TakerFeeRate = maker, taker
		return c
	}
	apply := func(seq uint64, c *enginev1.OrderCommand) []*enginev1.EngineEvent {
		return st.apply(input{sequence: seq, cmd: c})
	}
	apply(1, withFees(submit("BTCUSDT", "m1", "alice", sell, limit, gtc, "50000", "0.3"), "0.0002", "0.0005"))
	apply(2, withFees(submit("BTCUSDT", "m2", "carol", sell, limit, gtc, "50001", "1"), "0.0001", "0.0004"))
	apply(3, submit("BTCUSDT", "m3", "dave", sell, limit, gtc, "50002", "1")) // no fees: not remembered
	if len(st.fees) != 2 {
		t.Fatalf("resting orders' rates %v, want m1's and m2's", st.fees)
	}
	evs := apply(4, withFees(submit("BTCUSDT", "t1", "bob", buy, limit, ioc, "50001", "0.50001"), "0.0002", "0.0005"))
	var fees []string
	for _, e := range evs {
		if tr := e.GetTrade(); tr != nil {
			fees = append(fees, tr.GetMakerOrderId()+" "+tr.GetQuoteQuantity()+" taker "+tr.GetTakerFee()+" maker "+tr.GetMakerFee())
		}
	}
	want := []string{
		"m1 15000.0000000 taker 7.5000000 maker 3.0000000", // 15000 x 0.05%, x 0.02%
		"m2 10000.7000100 taker 5.0003501 maker 1.0000701", // 5.000350005 and 1.000070001, rounded up
	}
	if strings.Join(fees, "; ") != strings.Join(want, "; ") {
		t.Fatalf("fees:\n %s\nwant\n %s", strings.Join(fees, "\n "), strings.Join(want, "\n "))
	}
	if _, ok := st.fees["m1"]; ok || len(st.fees) != 1 {
		t.Fatalf("after m1 filled: rates %v, want m2's only", st.fees)
	}
	apply(5, cancelCmd("BTCUSDT", "c2", "m2", "carol"))
	if len(st.fees) != 0 {
		t.Fatalf("after m2 cancelled: rates %v", st.fees)
	}
	evs = apply(6, withFees(submit("BTCUSDT", "t2", "bob", buy, limit, ioc, "50002", "1"), "", "0.0005"))
	if tr := evs[1].GetTrade(); tr.GetMakerFee() != "0.0000000" || tr.GetTakerFee() != "25.0010000" {
		t.Fatalf("trade with a maker without fees: %v", tr)
	}
	// Many small fills of one order pay its total rounded up once, not
	// each rounded up: at most what the order service held for.
	small := newInstrument("ETHUSDT")
	small.apply(input{sequence: 1, cmd: withFees(submit("ETHUSDT", "big", "alice", sell, limit, gtc, "1.01", "1"), "0.0003", "")})
	var paid []string
	for i := range 7 {
		evs := small.apply(input{sequence: uint64(2 + i), cmd: submit("ETHUSDT", "s"+string(rune('a'+i)), "bob", buy, limit, ioc, "1.01", "0.00001")})
		paid = append(paid, evs[1].GetTrade().GetMakerFee())
	}
	// 7 x 0.0000101 x 0.03% = 0.00000002121: one unit, charged by the first fill
	if strings.Join(paid, " ") != "0.0000001 0.0000000 0.0000000 0.0000000 0.0000000 0.0000000 0.0000000" {
		t.Fatalf("maker fees of seven small fills: %v", paid)
	}
	// A perpetual's order pays its fees from its hold, which holds them at
	// its own price: a sell filled above it pays no more (a spot sell pays
	// from what it receives).
	perpetual := newInstrument("BTCUSDT-PERP")
	perpetual.apply(input{sequence: 1, cmd: withFees(submit("BTCUSDT-PERP", "bid", "alice", buy, limit, gtc, "60000", "1"), "0.0002", "0.0005")})
	sellPerp := withFees(submit("BTCUSDT-PERP", "ask", "bob", sell, limit, ioc, "50000", "1"), "0.0002", "0.0005")
	sellPerp.GetSubmit().Leverage, sellPerp.GetSubmit().Margin = 10, "5000"
	if tr := perpetual.apply(input{sequence: 2, cmd: sellPerp})[1].GetTrade(); tr.GetTakerFee() != "25.0000000" || tr.GetMakerFee() != "12.0000000" {
		t.Fatalf("perpetual sell filled at 60,000 of 50,000: fees %s (taker) %s (maker), want 25 (its limit's) and 12", tr.GetTakerFee(), tr.GetMakerFee())
	}
	for i, bad := range []string{"-0.0001", "1.5", "0.0000001", "x"} {
		evs := apply(uint64(7+i), withFees(submit("BTCUSDT", "bad"+bad, "bob", buy, limit, gtc, "1", "1"), bad, ""))
		if r := evs[0].GetRejected(); r.GetReason() != commonv1.RejectReason_REJECT_REASON_INVALID_ORDER || !strings.Contains(r.GetMessage(), "maker_fee_rate") {
			t.Errorf("maker rate %q: %v, want an invalid-order rejection naming it", bad, evs[0])
		}
	}
}

// A perpetual's orders (with a leverage) change their accounts' positions:
// each fill takes its share of the order's margin and the trade says what
// it did to both positions; a reduce-only order that would open or grow a
// position is rejected.
func TestPositions(t *testing.T) {
	t.Parallel()
	st := newInstrument("BTCUSDT-PERP")
	order := func(id, acct string, side commonv1.Side, tif commonv1.TimeInForce, price, qty, margin string, reduceOnly bool) *enginev1.OrderCommand {
		c := submit("BTCUSDT-PERP", id, acct, side, limit, tif, price, qty)
		c.GetSubmit().Leverage, c.GetSubmit().Margin, c.GetSubmit().ReduceOnly = 10, margin, reduceOnly
		return c
	}
	seq := uint64(0)
	apply := func(c *enginev1.OrderCommand) []*enginev1.EngineEvent {
		seq++
		return st.apply(input{sequence: seq, cmd: c})
	}
	change := func(p *enginev1.PositionChange) string {
		return fmt.Sprintf("size %s value %s margin %s took %s realized %s released %s payout %s shortfall %s", p.GetSize(), p.GetEntryValue(),
			p.GetMargin(), p.GetMarginFromOrder(), p.GetRealizedPnl(), p.GetReleasedMargin(), p.GetPayout(), p.GetShortfall())
	}
	apply(order("a1", "alice", sell, gtc, "50000", "2", "10000", false))
	evs := apply(order("b1", "bob", buy, gtc, "50000", "1.5", "7500", false))
	tr := evs[1].GetTrade()
	if got, want := change(tr.GetTakerPosition()), "size 1.50000 value 75000.0000000 margin 7500.0000000 took 7500.0000000 realized 0.0000000 released 0.0000000 payout 0.0000000 shortfall 0.0000000"; got != want {
		t.Fatalf("bob's position:\n got %s\nwant %s", got, want)
	}
	if got, want := change(tr.GetMakerPosition()), "size -1.50000 value -75000.0000000 margin 7500.0000000 took 7500.0000000 realized 0.0000000 released 0.0000000 payout 0.0000000 shortfall 0.0000000"; got != want {
		t.Fatalf("alice's position:\n got %s\nwant %s", got, want)
	}
	evs = apply(order("c1", "carol", buy, ioc, "50010", "0.5", "2500.5", false))
	if got := change(evs[1].GetTrade().GetMakerPosition()); got != "size -2.00000 value -100000.0000000 margin 10000.0000000 took 2500.0000000 realized 0.0000000 released 0.0000000 payout 0.0000000 shortfall 0.0000000" {
		t.Fatalf("alice's position after her order's last fill: %s", got)
	}
	apply(order("d1", "dave", buy, gtc, "49000", "0.5", "2450", false))
	evs = apply(order("b2", "bob", sell, ioc, "49000", "0.5", "0", true)) // reduce-only: closes a third of bob's long at a loss
	if got := change(evs[1].GetTrade().GetTakerPosition()); got != "size 1.00000 value 50000.0000000 margin 5000.0000000 took 0.0000000 realized -500.0000000 released 2500.0000000 payout 2000.0000000 shortfall 0.0000000" {
		t.Fatalf("bob's reduce-only fill: %s", got)
	}
	for _, c := range []*enginev1.OrderCommand{
		order("b3", "bob", sell, gtc, "60000", "1.00001", "0", true), // more than the position
		order("b4", "bob", buy, gtc, "40000", "0.1", "0", true),      // the position's own side
		order("e1", "erin", sell, gtc, "60000", "0.1", "0", true),    // no position
	} {
		if r := apply(c)[0].GetRejected(); !strings.Contains(r.GetMessage(), "reduce-only") {
			t.Errorf("reduce-only %s: %v, want rejected", c.GetCommandId(), r)
		}
	}
	if len(st.positions) != 4 || st.positions["carol"].Size != 50000 || st.positions["dave"].Margin != 24500000000 {
		t.Fatalf("positions %+v", st.positions)
	}
	// A spot order on another instrument has no position.
	spot := newInstrument("BTCUSDT")
	spot.apply(input{sequence: 1, cmd: submit("BTCUSDT", "s1", "alice", sell, limit, gtc, "1", "1")})
	if tr := spot.apply(input{sequence: 2, cmd: submit("BTCUSDT", "s2", "bob", buy, limit, ioc, "1", "1")})[1].GetTrade(); tr.GetTakerPosition() != nil || tr.GetMakerPosition() != nil || len(spot.positions) != 0 {
		t.Fatalf("a spot trade with positions: %v", tr)
	}
}

// Margin can be added to an open position at any time and removed while
// what stays covers its initial margin at the mark; anything else is
// rejected and changes nothing.
func TestMarginAdjustment(t *testing.T) {
	t.Parallel()
	st := newInstrument("BTCUSDT-PERP")
	seq := uint64(0)
	apply := func(c *enginev1.OrderCommand) *enginev1.EngineEvent {
		seq++
		return st.apply(input{sequence: seq, cmd: c})[0]
	}
	order := func(id, acct string, side commonv1.Side, qty, margin string) *enginev1.OrderCommand {
		c := submit("BTCUSDT-PERP", id, acct, side, limit, gtc, "50000", qty)
		c.GetSubmit().Leverage, c.GetSubmit().Margin = 10, margin
		return c
	}
	adjust := func(acct, amount string) *enginev1.OrderCommand {
		return &enginev1.OrderCommand{CommandId: fmt.Sprintf("margin:%d", seq+1), InstrumentId: "BTCUSDT-PERP",
			Command: &enginev1.OrderCommand_Margin{Margin: &enginev1.AdjustMargin{AccountId: acct, Amount: amount, Leverage: 10}}}
	}
	apply(order("a1", "alice", sell, "2", "10000"))
	apply(order("b1", "bob", buy, "1.5", "7500")) // bob: long 1.5 at 50,000, margin 7,500 (all of it initial at 10x)
	for _, tc := range []struct {
		name, acct, amount string
		margin             string // bob's after; "" for a rejection
		took, paid         string
	}{
		{"remove from a position with nothing to spare", "bob", "-0.0000001", "", "", ""},
		{"add", "bob", "1000", "8500.0000000", "1000.0000000", "0.0000000"},
		{"remove more than it spares", "bob", "-1000.0000001", "", "", ""},
		{"remove what it spares", "bob", "-1000", "7500.0000000", "0.0000000", "1000.0000000"},
		{"zero", "bob", "0", "", "", ""},
		{"no position", "erin", "100", "", "", ""},
		{"not an amount", "bob", "1e3", "", "", ""},
	} {
		before := st.positions["bob"]
		ev := apply(adjust(tc.acct, tc.amount))
		if tc.margin == "" {
			if r := ev.GetRejected(); r == nil || !strings.HasPrefix(r.GetMessage(), "margin: ") || st.positions["bob"] != before {
				t.Errorf("%s: %v, want a rejection that changes nothing", tc.name, ev)
			}
			continue
		}
		p := ev.GetMarginAdjusted().GetPosition()
		if p.GetMargin() != tc.margin || p.GetMarginFromOrder() != tc.took || p.GetPayout() != tc.paid || p.GetSize() != "1.50000" {
			t.Errorf("%s: %v, want margin %s, %s from the hold, %s paid out", tc.name, ev, tc.margin, tc.took, tc.paid)
		}
	}
}

// A funding tick settles every open position at the mark: longs pay shorts
// when the impact mid is above the index, the rate clamped; the payments
// come out of and go into the positions' margins.
func TestFunding(t *testing.T) {
	t.Parallel()
	st := newInstrument("BTCUSDT-PERP")
	seq := uint64(0)
	apply := func(c *enginev1.OrderCommand) []*enginev1.EngineEvent {
		seq++
		return st.apply(input{sequence: seq, cmd: c})
	}
	order := func(id, acct string, side commonv1.Side, tif commonv1.TimeInForce, price, qty, margin string) *enginev1.OrderCommand {
		c := submit("BTCUSDT-PERP", id, acct, side, limit, tif, price, qty)
		c.GetSubmit().Leverage, c.GetSubmit().Margin = 10, margin
		return c
	}
	var hours int64
	tickAt := func(hour int64, index, clamp string) *enginev1.OrderCommand {
		return &enginev1.OrderCommand{CommandId: fmt.Sprintf("funding:%d", hour), InstrumentId: "BTCUSDT-PERP",
			Command: &enginev1.OrderCommand_Funding{Funding: &enginev1.FundingTick{IntervalEnd: timestamppb.New(time.Unix(hour*3600, 0)),
				IndexPrice: index, RateClamp: clamp, ImpactNotional: "10000"}}}
	}
	tick := func(index, clamp string) *enginev1.OrderCommand { hours += 8; return tickAt(hours, index, clamp) }
	if f := apply(tick("", "0.00075"))[0].GetFunding(); f == nil || f.GetRate() != "0" || len(f.GetPayments()) != 0 {
		t.Fatalf("a tick before any mark: %v", f)
	}
	apply(order("a1", "alice", sell, gtc, "50000", "2", "10000"))
	apply(order("b1", "bob", buy, gtc, "50000", "1.5", "7500"))
	apply(order("c1", "carol", buy, ioc, "50010", "0.5", "2500"))
	apply(order("d1", "dave", buy, gtc, "49990", "1", "5000"))  // the impact bid
	apply(order("e1", "erin", sell, gtc, "50030", "1", "5000")) // the impact ask
	evs := apply(tick("49950.00", "0.00075"))
	f := evs[0].GetFunding()
	if f.GetRate() != "0.00075" || f.GetMarkPrice() != "50000.00" || f.GetImpactBid() != "49990.00" || f.GetImpactAsk() != "50030.00" ||
		f.GetIndexPrice() != "49950.00" || f.GetInsurance() != "0.0000000" {
		t.Fatalf("funding %v; want the premium (50010 - 49950) / 49950 clamped to 0.075%%", f)
	}
	var got []string
	for _, p := range f.GetPayments() {
		got = append(got, p.GetAccountId()+" "+p.GetAmount()+" margin "+p.GetMargin())
	}
	want := "alice -75.0000000 margin 10075.0000000, bob 56.2500000 margin 7443.7500000, carol 18.7500000 margin 2481.2500000"
	if strings.Join(got, ", ") != want {
		t.Fatalf("payments:\n %s\nwant\n %s", strings.Join(got, ", "), want)
	}
	if st.positions["bob"].Margin != 74437500000 {
		t.Fatalf("bob's margin %d after funding", st.positions["bob"].Margin)
	}
	if r := apply(tick("49950.00", "2"))[0].GetRejected(); !strings.Contains(r.GetMessage(), "rate_clamp") {
		t.Fatalf("a tick with a clamp over 1: %v", r)
	}
	// Once per interval: the same interval again (another sender, a resend
	// after the broker's duplicate window) or an earlier one pays nothing.
	settledAt := hours - 8
	for _, h := range []int64{settledAt, settledAt - 8} {
		r := apply(tickAt(h, "49950.00", "0.00075"))[0].GetRejected()
		if r.GetReason() != commonv1.RejectReason_REJECT_REASON_DUPLICATE_ORDER || st.positions["bob"].Margin != 74437500000 {
			t.Fatalf("a repeated tick for hour %d: %v, bob's margin %d", h, r, st.positions["bob"].Margin)
		}
	}
	// And across a restart: the snapshot keeps the last interval settled.
	data, err := encodeSnapshot(st)
	if err != nil {
		t.Fatal(err)
	}
	restored, err := decodeSnapshot("BTCUSDT-PERP", data)
	if err != nil {
		t.Fatal(err)
	}
	if r := restored.apply(input{sequence: seq + 1, cmd: tickAt(settledAt, "49950.00", "0.00075")})[0].GetRejected(); r.GetReason() != commonv1.RejectReason_REJECT_REASON_DUPLICATE_ORDER {
		t.Fatalf("a repeated tick after a restore: %v", r)
	}
	if f := restored.apply(input{sequence: seq + 2, cmd: tickAt(settledAt+8, "49950.00", "0.00075")})[0].GetFunding(); len(f.GetPayments()) != 3 {
		t.Fatalf("the next interval after a restore: %v", f)
	}
}

// A position whose equity at the mark falls below its maintenance margin
// is liquidated: its resting orders are cancelled, an IOC order up to its
// bankruptcy price trades what the book takes, and the insurance fund
// takes over the rest at the bankruptcy price.
func TestLiquidation(t *testing.T) {
	t.Parallel()
	// erin bids 0.4 of alice's 1 at 45,500: the liquidation fills that and
	// the fund takes over the rest at the bankruptcy price.
	got, seq, st := liquidationRun(t, "0.4")
	want := []string{
		"cancelled a2 CANCEL_REASON_ADMIN",
		"accepted liquidation:" + fmt.Sprint(seq) + ":alice 45000.00",
		"trade 0.40000 @ 45500.00 payout 200.0000000", // released 2000, realized 0.4 x (45500 - 50000)
		"cancelled liquidation:" + fmt.Sprint(seq) + ":alice CANCEL_REASON_IOC_REMAINDER",
		"taken over 0.60000 @ 45000.00 alice 0.00000 payout 0.0000000 shortfall 0.0000000 fund 0.60000 margin 0.0000000",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("liquidation events:\n %s\nwant\n %s", strings.Join(got, "\n "), strings.Join(want, "\n "))
	}
	if _, ok := st.positions["alice"]; ok || st.positions[InsuranceAccount].Value != 270000000000 || st.positions["erin"].Size != 40000 {
		t.Fatalf("positions after the liquidation %+v", st.positions)
	}

	// erin bids all of it: the book closes the position, the fund takes nothing.
	got, seq, st = liquidationRun(t, "1")
	want = []string{
		"cancelled a2 CANCEL_REASON_ADMIN",
		"accepted liquidation:" + fmt.Sprint(seq) + ":alice 45000.00",
		"trade 1.00000 @ 45500.00 payout 500.0000000", // released 5000, realized 1 x (45500 - 50000)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("fully filled liquidation events:\n %s\nwant\n %s", strings.Join(got, "\n "), strings.Join(want, "\n "))
	}
	if _, ok := st.positions["alice"]; ok || st.positions[InsuranceAccount].Size != 0 || st.positions["erin"].Size != 100000 {
		t.Fatalf("positions after the fully filled liquidation %+v", st.positions)
	}
}

// liquidationRun opens alice long 1 at 50,000 at 10x (bankrupt at 45,000),
// rests erin's bid of erinQty at 45,500 and moves the mark toward a last
// trade at 44,000 until alice is liquidated; it returns the liquidation's
// events, its command's sequence and the instrument.
func liquidationRun(t *testing.T, erinQty string) ([]string, uint64, *instrument) {
	t.Helper()
	st := newInstrument("BTCUSDT-PERP")
	seq := uint64(0)
	apply := func(c *enginev1.OrderCommand) []*enginev1.EngineEvent {
		seq++
		return st.apply(input{sequence: seq, cmd: c})
	}
	order := func(id, acct string, side commonv1.Side, tif commonv1.TimeInForce, price, qty, margin string) *enginev1.OrderCommand {
		c := submit("BTCUSDT-PERP", id, acct, side, limit, tif, price, qty)
		c.GetSubmit().Leverage, c.GetSubmit().Margin, c.GetSubmit().MaintenanceMarginRate = 10, margin, "0.005"
		return c
	}
	apply(order("b1", "bob", sell, gtc, "50000", "1", "5000"))
	apply(order("a1", "alice", buy, gtc, "50000", "1", "5000"))  // alice long 1 @ 50000, 10x: bankrupt at 45000
	apply(order("a2", "alice", buy, gtc, "30000", "0.1", "300")) // resting: cancelled when she is liquidated
	apply(order("c1", "carol", sell, gtc, "44000", "0.1", "440"))
	apply(order("d1", "dave", buy, ioc, "44000", "0.1", "440")) // the last trade at 44000
	apply(order("e1", "erin", buy, gtc, "45500", erinQty, "4550"))
	var liq []*enginev1.EngineEvent
	for range 20 { // each command moves the mark a quarter of the way to 44000
		evs := apply(submit("BTCUSDT-PERP", fmt.Sprint("x", seq), "zed", buy, limit, gtc, "1.001", "1")) // rejected, but the mark moves
		if len(evs) > 1 {
			liq = evs[1:]
			break
		}
	}
	var got []string
	for _, e := range liq {
		switch ev := e.GetEvent().(type) {
		case *enginev1.EngineEvent_Cancelled:
			got = append(got, "cancelled "+ev.Cancelled.GetOrderId()+" "+ev.Cancelled.GetReason().String())
		case *enginev1.EngineEvent_Accepted:
			got = append(got, "accepted "+ev.Accepted.GetOrderId()+" "+ev.Accepted.GetPrice())
		case *enginev1.EngineEvent_Trade:
			got = append(got, "trade "+ev.Trade.GetQuantity()+" @ "+ev.Trade.GetPrice()+" payout "+ev.Trade.GetTakerPosition().GetPayout())
		case *enginev1.EngineEvent_TakenOver:
			got = append(got, "taken over "+ev.TakenOver.GetSize()+" @ "+ev.TakenOver.GetPrice()+" alice "+ev.TakenOver.GetPosition().GetSize()+
				" payout "+ev.TakenOver.GetPosition().GetPayout()+" shortfall "+ev.TakenOver.GetPosition().GetShortfall()+
				" fund "+ev.TakenOver.GetInsurancePosition().GetSize()+" margin "+ev.TakenOver.GetInsurancePosition().GetMargin())
		default:
			got = append(got, fmt.Sprintf("%T", ev))
		}
	}
	return got, seq, st
}
