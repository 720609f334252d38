package platformtest_test

import (
	"context"
	"fmt"
	"maps"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/services/matching"
	"github.com/tradex-mesh/tradex/services/order"
	"github.com/tradex-mesh/tradex/services/wallet"
	"github.com/tradex-mesh/tradex/streams"
)

// The perpetual scenario trades BTCUSDT-PERP (price scale 1, quantity
// scale 3: amounts at scale 4) between a few accounts at leverages up to
// the maximum, while the price runs up 12%, down 25% and back.
const (
	perpSymbol   = "BTCUSDT-PERP"
	perpSeed     = 20261203
	perpActions  = 1500
	perpAccounts = 6
	perpDeposit  = "200000"   // USDT per account
	fundDeposit  = "10000000" // USDT in the insurance fund
	marginPool   = "margin-" + perpSymbol
)

// perpAction is one step of the perpetual scenario.
type perpAction struct {
	account  string
	place    *orderv1.PlaceOrderRequest
	cancel   string // client order id
	leverage int32
	margin   *orderv1.AdjustMarginRequest
	funding  *enginev1.FundingTick
}

// perpMid is the scenario's price path at step i, in ticks of 0.1: up 12%
// over the first third, down 25% over the second, back over the last.
func perpMid(i, n int) int64 {
	const start = 500_000 // 50,000.0
	third := n / 3
	switch {
	case i < third:
		return start + start*12/100*int64(i)/int64(third)
	case i < 2*third:
		return start*112/100 - start*25/100*int64(i-third)/int64(third)
	default:
		return start*87/100 + start*13/100*int64(i-2*third)/int64(n-2*third)
	}
}

// perpScenario is a seeded sequence of n steps: quotes around the moving
// mid (GTC), crossing IOC and market orders with protection prices,
// reduce-only orders, cancels, leverage changes (1 to 50), margin added
// and removed, and a funding tick every 100 steps with an index near the
// mid.
func perpScenario(seed uint64, n, accounts int) []perpAction {
	rng := rand.New(rand.NewPCG(seed, seed^0xfeed)) //nolint:gosec // a seeded, reproducible scenario
	placed := map[string][]string{}
	price := func(ticks int64) string { return fmt.Sprintf("%d.%d", ticks/10, ticks%10) }
	out := make([]perpAction, 0, n+n/100)
	for i := range n {
		mid := perpMid(i, n)
		if i%100 == 99 {
			out = append(out, perpAction{funding: &enginev1.FundingTick{
				IntervalEnd: timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)),
				IndexPrice:  price(mid - 100 + rng.Int64N(200)), RateClamp: "0.0075", ImpactNotional: "10000",
			}})
		}
		acct := fmt.Sprintf("perp%02d", rng.IntN(accounts))
		a := perpAction{account: acct}
		side := commonv1.Side_SIDE_BUY
		if rng.IntN(2) == 0 {
			side = commonv1.Side_SIDE_SELL
		}
		req := &orderv1.PlaceOrderRequest{AccountId: acct, ClientOrderId: fmt.Sprintf("p%05d", i), InstrumentId: perpSymbol,
			Side: side, Type: commonv1.OrderType_ORDER_TYPE_LIMIT, Quantity: fmt.Sprintf("0.%03d", 10+rng.IntN(490))}
		away := int64(1+rng.IntN(30)) * 50 // 5 to 150 USDT from the mid
		switch r := rng.IntN(100); {
		case r < 40: // a quote on its own side of the mid
			if side == commonv1.Side_SIDE_BUY {
				away = -away
			}
			req.Price = price(mid + away)
		case r < 60: // crossing: takes what is there
			req.TimeInForce = commonv1.TimeInForce_TIME_IN_FORCE_IOC
			if side == commonv1.Side_SIDE_SELL {
				away = -away
			}
			req.Price = price(mid + away)
		case r < 70: // market, with the protection price a perpetual needs
			req.Type = commonv1.OrderType_ORDER_TYPE_MARKET
			if side == commonv1.Side_SIDE_SELL {
				away = -away
			}
			req.Price = price(mid + 2*away)
		case r < 78: // reduce-only: refused unless it shrinks the position
			req.Type, req.ReduceOnly = commonv1.OrderType_ORDER_TYPE_MARKET, true
			if side == commonv1.Side_SIDE_SELL {
				away = -away
			}
			req.Price = price(mid + 2*away)
		case r < 86 && len(placed[acct]) > 0:
			out = append(out, perpAction{account: acct, cancel: placed[acct][rng.IntN(len(placed[acct]))]})
			continue
		case r < 92:
			out = append(out, perpAction{account: acct, leverage: 1 + rng.Int32N(50)})
			continue
		default:
			amount := fmt.Sprintf("%d", 10+rng.IntN(500))
			if rng.IntN(2) == 0 {
				amount = "-" + amount
			}
			out = append(out, perpAction{account: acct, margin: &orderv1.AdjustMarginRequest{
				AccountId: acct, InstrumentId: perpSymbol, Amount: amount, RequestId: fmt.Sprintf("m%05d", i)}})
			continue
		}
		placed[acct] = append(placed[acct], req.GetClientOrderId())
		a.place = req
		out = append(out, a)
	}
	return out
}

// perpOutcome is what the perpetual scenario's clients saw; calls counts
// the steps done and the calls retried (a service was down).
type perpOutcome struct {
	placed, refused, marginChanged, marginRefused int
	calls                                         *outcome
}

// drivePerp funds the accounts and the insurance fund, then runs the
// steps in order (one lane: the instrument's commands are the same in
// every run), retrying what meets a service that is down.
func drivePerp(ctx context.Context, p *platformtest.Platform, steps []perpAction, out *perpOutcome) error {
	deposit := func(acct, amount string) error {
		_, err := retry(ctx, out.calls, func(ctx context.Context) (*walletv1.DepositResponse, error) {
			return p.Wallet.Deposit(ctx, &walletv1.DepositRequest{TransferId: "dep-" + acct, AccountId: acct, Asset: "USDT", Amount: amount})
		})
		return err
	}
	if err := deposit(matching.InsuranceAccount, fundDeposit); err != nil {
		return err
	}
	for i := range perpAccounts {
		if err := deposit(fmt.Sprintf("perp%02d", i), perpDeposit); err != nil {
			return err
		}
	}
	pub := streams.NewPublisher(p.JetStream(), streams.DefaultCatalog(), streams.WithSource("tradex/order"))
	counted := out.calls
	for i, a := range steps {
		var err error
		switch {
		case a.place != nil:
			_, err = retry(ctx, counted, func(ctx context.Context) (*orderv1.PlaceOrderResponse, error) {
				return p.Orders.PlaceOrder(ctx, a.place)
			})
			if connect.CodeOf(err) == connect.CodeFailedPrecondition {
				out.refused, err = out.refused+1, nil
			} else if err == nil {
				out.placed++
			}
		case a.cancel != "":
			_, err = retry(ctx, counted, func(ctx context.Context) (*orderv1.CancelOrderResponse, error) {
				return p.Orders.CancelOrder(ctx, &orderv1.CancelOrderRequest{AccountId: a.account, ClientOrderId: a.cancel})
			})
			if connect.CodeOf(err) == connect.CodeNotFound {
				err = nil
			}
		case a.leverage != 0:
			_, err = retry(ctx, counted, func(ctx context.Context) (*orderv1.SetLeverageResponse, error) {
				return p.Orders.SetLeverage(ctx, &orderv1.SetLeverageRequest{AccountId: a.account, InstrumentId: perpSymbol, Leverage: a.leverage})
			})
		case a.margin != nil:
			_, err = retry(ctx, counted, func(ctx context.Context) (*orderv1.AdjustMarginResponse, error) {
				return p.Orders.AdjustMargin(ctx, a.margin)
			})
			if connect.CodeOf(err) == connect.CodeFailedPrecondition { // no position, nothing to spare, no funds
				out.marginRefused, err = out.marginRefused+1, nil
			} else if err == nil {
				out.marginChanged++
			}
		case a.funding != nil: // what the order service's funding loop publishes at an interval end
			id := fmt.Sprintf("funding:%s:%d", perpSymbol, a.funding.GetIntervalEnd().AsTime().Unix())
			_, err = pub.Publish(ctx, streams.TopicOrderCommand, perpSymbol, &enginev1.OrderCommand{
				CommandId: id, InstrumentId: perpSymbol, SentAt: timestamppb.Now(),
				Command: &enginev1.OrderCommand_Funding{Funding: a.funding}}, streams.WithMsgID(id))
		}
		if err != nil {
			return fmt.Errorf("step %d (%s): %w", i, a.account, err)
		}
		counted.done.Add(1)
	}
	return nil
}

// perpState is what a perpetual run ends with: every USDT balance,
// every open position, and the trades in engine order.
type perpState struct {
	balances, positions map[string]string
	trades              []string
	liquidations        int
	takeovers           int
	fundings            int
}

// checkPerp verifies the perpetual run's invariants and returns its state:
//   - no engine event was dead-lettered, no journal entry ever has a
//     negative available or held amount;
//   - every account's position is the engine's, and every liquidated
//     position is closed by its liquidation;
//   - USDT over every account (balances, the margin account, the insurance
//     fund, the fee account) is the deposits exactly, and the margin
//     account holds the open positions' margins less their entry values:
//     balances + margins + insurance fund + fees - entry values = deposits.
func checkPerp(t *testing.T, p *platformtest.Platform) perpState {
	t.Helper()
	js := p.JetStream()
	for _, m := range readAll(t, js, streams.DLQTopic(streams.TopicEngineEvent)) {
		t.Errorf("dead-lettered engine event %s: %s", m.Header.Get(streams.HeaderDLQOriginalMsgID), m.Header.Get(streams.HeaderDLQReason))
	}
	st := perpState{balances: map[string]string{}, positions: map[string]string{}}
	for _, m := range readAll(t, js, streams.TopicBalanceChanged) {
		var e walletv1.BalanceChanged
		if err := proto.Unmarshal(m.Data, &e); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(e.GetAvailable(), "-") || strings.HasPrefix(e.GetHeld(), "-") {
			t.Errorf("journal entry %d: %s %s went negative: %s/%s", m.Sequence, e.GetAccountId(), e.GetAsset(), e.GetAvailable(), e.GetHeld())
		}
	}

	// The engine's positions, from its events in order.
	engine := map[string]*enginev1.PositionChange{}
	liquidated := map[string]string{} // "<input seq> <account>" -> the account's size after it
	for _, m := range readAll(t, js, streams.TopicEngineEvent) {
		var ev enginev1.EngineEvent
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.GetInstrumentId() != perpSymbol {
			continue
		}
		key := func(acct string) string { return fmt.Sprintf("%d %s", ev.GetInputSequence(), acct) }
		switch e := ev.GetEvent().(type) {
		case *enginev1.EngineEvent_Trade:
			tr := e.Trade
			engine[tr.GetTakerAccountId()], engine[tr.GetMakerAccountId()] = tr.GetTakerPosition(), tr.GetMakerPosition()
			st.trades = append(st.trades, fmt.Sprintf("%s %s %s %s", tr.GetTakerAccountId(), tr.GetMakerAccountId(), tr.GetPrice(), tr.GetQuantity()))
			if strings.HasPrefix(tr.GetTakerOrderId(), "liquidation:") {
				liquidated[key(tr.GetTakerAccountId())] = tr.GetTakerPosition().GetSize()
			}
		case *enginev1.EngineEvent_TakenOver:
			engine[e.TakenOver.GetAccountId()], engine[e.TakenOver.GetInsuranceAccountId()] = e.TakenOver.GetPosition(), e.TakenOver.GetInsurancePosition()
			liquidated[key(e.TakenOver.GetAccountId())] = e.TakenOver.GetPosition().GetSize()
			st.takeovers++
		case *enginev1.EngineEvent_Funding:
			for _, pay := range e.Funding.GetPayments() {
				engine[pay.GetAccountId()] = &enginev1.PositionChange{Size: pay.GetSize(), EntryValue: pay.GetEntryValue(), Margin: pay.GetMargin()}
			}
			if len(e.Funding.GetPayments()) > 0 {
				st.fundings++
			}
		case *enginev1.EngineEvent_MarginAdjusted:
			engine[e.MarginAdjusted.GetAccountId()] = e.MarginAdjusted.GetPosition()
		}
	}
	for k, size := range liquidated {
		if mustParseScale(t, size, 3) != 0 {
			t.Errorf("liquidation %s left a position of %s", k, size)
		}
	}
	st.liquidations = len(liquidated)

	accounts := []string{matching.InsuranceAccount, marginPool, wallet.Default().FeeAccountPrefix + perpSymbol}
	for i := range perpAccounts {
		accounts = append(accounts, fmt.Sprintf("perp%02d", i))
	}
	total, entryValues, margins := new(big.Int), int64(0), int64(0)
	for _, acct := range accounts {
		res, err := p.Wallet.GetBalance(t.Context(), &walletv1.GetBalanceRequest{AccountId: acct, Asset: "USDT"})
		if err != nil {
			t.Fatal(err)
		}
		b := res.GetBalance()
		total.Add(total, big.NewInt(mustParse(t, b.GetAvailable())+mustParse(t, b.GetHeld())))
		st.balances[acct] = b.GetAvailable() + " " + b.GetHeld()
		pos, err := p.Wallet.GetPositions(t.Context(), &walletv1.GetPositionsRequest{AccountId: acct})
		if err != nil {
			t.Fatal(err)
		}
		want := engine[acct]
		open := want != nil && mustParseScale(t, want.GetSize(), 3) != 0
		switch got := pos.GetPositions(); {
		case !open && len(got) != 0:
			t.Errorf("%s: wallet position %v, engine's is closed", acct, got)
		case open && (len(got) != 1 || got[0].GetSize() != want.GetSize() ||
			mustParse(t, got[0].GetEntryValue()) != mustParseScale(t, want.GetEntryValue(), 4)*10_000 ||
			mustParse(t, got[0].GetMargin()) != mustParseScale(t, want.GetMargin(), 4)*10_000):
			t.Errorf("%s: wallet position %v, engine's %v", acct, got, want)
		case open:
			entryValues += mustParse(t, got[0].GetEntryValue())
			margins += mustParse(t, got[0].GetMargin())
			st.positions[acct] = fmt.Sprintf("%s %s %s", got[0].GetSize(), got[0].GetEntryValue(), got[0].GetMargin())
		}
	}
	deposits := new(big.Int).Mul(big.NewInt(mustParse(t, perpDeposit)), big.NewInt(perpAccounts))
	deposits.Add(deposits, big.NewInt(mustParse(t, fundDeposit)))
	if total.Cmp(deposits) != 0 {
		t.Errorf("USDT over all accounts %s, deposits %s", total, deposits)
	}
	if pool := mustParse(t, strings.Fields(st.balances[marginPool])[0]); pool != margins-entryValues {
		t.Errorf("margin account %d, the open positions' margins less entry values %d", pool, margins-entryValues)
	}
	return st
}

func mustParseScale(t *testing.T, s string, scale int32) int64 {
	t.Helper()
	v, err := decimal.Parse(s, scale)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

// newPerpPlatform is newPlatform without the order service's own funding
// loop: the scenario publishes the ticks at its own steps.
func newPerpPlatform(t *testing.T) *platformtest.Platform {
	return newPlatform(t, platformtest.WithOrderConfig(func(c *order.Config) { c.FundingEvery = 0 }))
}

// A seeded random perpetual market: leverage up to the maximum, the price
// driven 12% up, 25% down and back, funding every 100 steps, margin added
// and removed; positions get liquidated on the way. At the end funds are
// conserved to the unit, no balance was ever negative, every liquidated
// position is closed, and the wallet's positions are the engine's.
func TestPerpetualScenario(t *testing.T) {
	t.Parallel()
	p := newPerpPlatform(t)
	out := &perpOutcome{calls: newOutcome()}
	if err := drivePerp(t.Context(), p, perpScenario(perpSeed, perpActions, perpAccounts), out); err != nil {
		t.Fatal(err)
	}
	p.WaitSettled(t)
	st := checkPerp(t, p)
	if st.liquidations == 0 || st.fundings == 0 || len(st.trades) < 100 || out.marginChanged == 0 {
		t.Errorf("scenario too tame: %d liquidations, %d fundings, %d trades, %d margin changes", st.liquidations, st.fundings, len(st.trades), out.marginChanged)
	}
	t.Logf("%d orders placed, %d refused; %d trades, %d liquidations (%d taken over), %d fundings, %d margin changes (%d refused); open %v",
		out.placed, out.refused, len(st.trades), st.liquidations, st.takeovers, st.fundings, out.marginChanged, out.marginRefused, slices.Sorted(maps.Keys(st.positions)))
}

// The matching engine and the wallet are killed, alone and together, at
// seeded points of the perpetual scenario and restarted from the streams:
// the run ends in exactly the state of an uninterrupted run.
func TestPerpetualCrashesEndInTheUninterruptedState(t *testing.T) {
	t.Parallel()
	steps := perpScenario(perpSeed, perpActions, perpAccounts)
	ref := newPerpPlatform(t)
	if err := drivePerp(t.Context(), ref, steps, &perpOutcome{calls: newOutcome()}); err != nil {
		t.Fatal(err)
	}
	ref.WaitSettled(t)
	want := checkPerp(t, ref)

	p := newPerpPlatform(t)
	out := &perpOutcome{calls: newOutcome()}
	driven := make(chan error, 1)
	go func() { driven <- drivePerp(t.Context(), p, steps, out) }()
	rng := rand.New(rand.NewPCG(perpSeed, 11)) //nolint:gosec // seeded crash points, reproducible
	victims := []struct{ wallet, matching bool }{{wallet: true}, {matching: true}, {wallet: true, matching: true}}
	points := make([]int64, 6)
	for i := range points {
		points[i] = rng.Int64N(perpActions * 9 / 10)
	}
	slices.Sort(points)
	until := waitDrive(t, driven)
	calls := out.calls
	for i, at := range points {
		until(func() bool { return calls.done.Load() >= at })
		v := victims[i%len(victims)]
		if v.wallet {
			p.KillWallet()
		}
		if v.matching {
			p.KillMatching()
		}
		retries, progress := calls.retries.Load(), calls.done.Load()
		// Down while commands pile up, or until the clients noticed (orders
		// need the wallet, a margin change waits for the engine's answer).
		n := progress + int64(20+rng.IntN(80))
		until(func() bool { return calls.done.Load() >= n || calls.retries.Load() >= retries+3 })
		if v.wallet {
			p.StartWallet()
		}
		if v.matching {
			p.StartMatching()
		}
	}
	until(func() bool { return false })
	p.WaitSettled(t)
	got := checkPerp(t, p)
	for what, pair := range map[string][2]map[string]string{"balance": {want.balances, got.balances}, "position": {want.positions, got.positions}} {
		for _, k := range slices.Sorted(maps.Keys(pair[0])) {
			if pair[0][k] != pair[1][k] {
				t.Errorf("%s %s: %q, uninterrupted run %q", what, k, pair[1][k], pair[0][k])
			}
		}
		if len(pair[0]) != len(pair[1]) {
			t.Errorf("%ss: %v, uninterrupted run %v", what, pair[1], pair[0])
		}
	}
	if at := firstDiff(want.trades, got.trades); at < max(len(want.trades), len(got.trades)) {
		t.Errorf("trades differ at %d:\n this run:\n  %s\n uninterrupted run:\n  %s", at,
			strings.Join(around(got.trades, at), "\n  "), strings.Join(around(want.trades, at), "\n  "))
	}
	t.Logf("%d crashes; %d trades, %d liquidations", len(points), len(got.trades), got.liquidations)
}

// At a funding interval's end the order service ticks the perpetual with
// the index read from its spot instrument's book through the market data
// service: the mid of best bid and ask at the perpetual's price scale,
// rounded down.
func TestFundingTickCarriesTheSpotIndex(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64 // how far the order service's clock runs ahead
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	p := newPlatform(t, platformtest.WithOrderClock(clock),
		platformtest.WithOrderConfig(func(c *order.Config) { c.FundingEvery = 20 * time.Millisecond }))
	for _, d := range []*walletv1.DepositRequest{
		{TransferId: "idx-1", AccountId: "bidder", Asset: "USDT", Amount: "100000"},
		{TransferId: "idx-2", AccountId: "asker", Asset: "BTC", Amount: "1"},
	} {
		if _, err := p.Wallet.Deposit(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	// BTCUSDT (scale 2): 49,990.08 / 50,010.10, a mid of 50,000.09; the
	// perpetual's scale is 1, rounded down: 50,000.0.
	for _, o := range []*orderv1.PlaceOrderRequest{
		{AccountId: "bidder", Side: commonv1.Side_SIDE_BUY, Price: "49990.08"},
		{AccountId: "asker", Side: commonv1.Side_SIDE_SELL, Price: "50010.10"},
	} {
		o.InstrumentId, o.Type, o.Quantity = "BTCUSDT", commonv1.OrderType_ORDER_TYPE_LIMIT, "0.5"
		if _, err := p.Orders.PlaceOrder(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	polltest.Until(t, "a two-sided BTCUSDT book in market data", func() error {
		res, err := p.MarketData.GetBook(t.Context(), &marketdatav1.GetBookRequest{InstrumentId: "BTCUSDT", Depth: 1})
		if err != nil {
			return err
		}
		if len(res.GetBook().GetBids()) == 0 || len(res.GetBook().GetAsks()) == 0 {
			return fmt.Errorf("book %v", res.GetBook())
		}
		return nil
	})
	// Move the order service's clock a second past the next 8-hour end.
	now := time.Now()
	end := now.Truncate(8 * time.Hour).Add(8 * time.Hour)
	offset.Store(int64(end.Sub(now) + time.Second))
	id := fmt.Sprintf("funding:%s:%d", perpSymbol, end.Unix())
	polltest.Until(t, "the funding tick of "+end.Format(time.RFC3339), func() error {
		for _, m := range readAll(t, p.JetStream(), streams.TopicOrderCommand) {
			var cmd enginev1.OrderCommand
			if err := proto.Unmarshal(m.Data, &cmd); err != nil {
				return err
			}
			if cmd.GetCommandId() != id {
				continue
			}
			if got := cmd.GetFunding().GetIndexPrice(); got != "50000.0" {
				t.Fatalf("tick %s: index %q, want 50000.0", id, got)
			}
			return nil
		}
		return fmt.Errorf("no command %s", id)
	})
}
