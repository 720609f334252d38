package platformtest_test

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/services/order"
	"github.com/tradex-mesh/tradex/services/wallet"
	"github.com/tradex-mesh/tradex/streams"
)

// finalState is what a run ends with, keyed by what the scenario names
// (client order ids, accounts), so that two runs compare equal when they
// did the same.
type finalState struct {
	// orders: client order id -> "status filled average".
	orders map[string]string
	// balances: "account asset" -> "available held".
	balances map[string]string
	// trades: per instrument, in engine order: "taker maker price quantity".
	trades map[string][]string
	// commands: per instrument, engine.order.v1 in stream order, orders
	// named by client order id: "submit <cid> <side> <type> ..." or
	// "cancel <cid>".
	commands map[string][]string
}

// engineOrder is an order as the engine events tell it.
type engineOrder struct {
	account, instrument string
	side                commonv1.Side
	status              commonv1.OrderStatus
	filled              int64
}

// check verifies the invariants of a settled platform and returns its final
// state:
//   - every balance (available and held) >= 0, and the total of each asset
//     over all accounts is deposits minus withdrawals; each account's
//     balance is its deposits minus withdrawals plus its trades;
//   - the balances the wallet serves are the journal's;
//   - no hold remains for a closed order, every open order still holds, a
//     hold exists only for a placed order, and an account's held amount is
//     the sum of its holds;
//   - an order refused for funds published nothing and was not stored;
//   - the book was never crossed after a command;
//   - every order's status and filled quantity agree between the order
//     service and the engine events.
func check(t *testing.T, p *platformtest.Platform, out *outcome) finalState {
	t.Helper()
	js := p.JetStream()
	orders := listOrders(t, p)
	byID := map[string]*orderv1.Order{}
	for _, o := range orders {
		byID[o.GetOrderId()] = o
	}
	for cid, id := range out.placed {
		if o := byID[id]; o == nil || o.GetClientOrderId() != cid {
			t.Errorf("placed order %s (%s) not served by the order service: %v", cid, id, o)
		}
	}
	if len(orders) != len(out.placed) {
		t.Errorf("order service has %d orders, clients placed %d", len(orders), len(out.placed))
	}

	for _, m := range readAll(t, js, streams.TopicOrderCommand) {
		if cid := m.Header.Get(order.HeaderClientOrderID); out.unfunded[cid] {
			t.Errorf("order %s was refused for funds but its command is on the stream", cid)
		}
	}

	for _, m := range readAll(t, js, streams.DLQTopic(streams.TopicEngineEvent)) { // a settlement that failed for good
		t.Errorf("dead-lettered engine event %s: %s (%s)", m.Header.Get(streams.HeaderDLQOriginalMsgID),
			m.Header.Get(streams.HeaderDLQReason), m.Header.Get(streams.HeaderDLQHandler))
	}
	engine, trades, deltas, refused := replayEngine(t, js, byID)
	state := finalState{orders: map[string]string{}, balances: map[string]string{}, trades: trades, commands: effectiveCommands(t, js, byID, refused)}
	for id, o := range byID {
		e := engine[id]
		if e == nil {
			t.Errorf("order %s (%s): no engine event", o.GetClientOrderId(), id)
			continue
		}
		filled := mustParse(t, o.GetFilledQuantity())
		if o.GetStatus() != e.status || filled != e.filled {
			t.Errorf("order %s: order service says %v filled %d, engine events %v filled %d",
				o.GetClientOrderId(), o.GetStatus(), filled, e.status, e.filled)
		}
		state.orders[o.GetClientOrderId()] = fmt.Sprintf("%v %s %s", o.GetStatus(), o.GetFilledQuantity(), o.GetAveragePrice())
	}

	holds, last := replayJournal(t, js)
	heldByAccount := map[string]int64{}
	for id, h := range holds {
		o := byID[id]
		if o == nil {
			t.Errorf("hold %s of %s is not an order's", id, h.account)
			continue
		}
		heldByAccount[h.account+" "+h.asset] += h.remaining
		open := o.GetStatus() == commonv1.OrderStatus_ORDER_STATUS_NEW || o.GetStatus() == commonv1.OrderStatus_ORDER_STATUS_PARTIALLY_FILLED
		switch {
		case !open && h.remaining != 0:
			t.Errorf("order %s is %v but its hold keeps %d", o.GetClientOrderId(), o.GetStatus(), h.remaining)
		case open && h.remaining <= 0:
			t.Errorf("order %s is %v but its hold is %d", o.GetClientOrderId(), o.GetStatus(), h.remaining)
		case open && o.GetSide() == commonv1.Side_SIDE_SELL && h.remaining != mustParse(t, o.GetRemainingQuantity()):
			t.Errorf("open sell %s holds %d, remaining quantity %s", o.GetClientOrderId(), h.remaining, o.GetRemainingQuantity())
		}
	}

	totals := map[string]*big.Int{}
	want := map[string]*big.Int{}
	for acct, assets := range out.moved {
		for asset, moved := range assets {
			key := acct + " " + asset
			res, err := p.Wallet.GetBalance(t.Context(), &walletv1.GetBalanceRequest{AccountId: acct, Asset: asset})
			if err != nil {
				t.Fatalf("balance %s: %v", key, err)
			}
			b := res.GetBalance()
			avail, held := mustParse(t, b.GetAvailable()), mustParse(t, b.GetHeld())
			if avail < 0 || held < 0 {
				t.Errorf("negative balance %s: %s/%s", key, b.GetAvailable(), b.GetHeld())
			}
			if j := last[key]; j == nil || j.GetAvailable() != b.GetAvailable() || j.GetHeld() != b.GetHeld() {
				t.Errorf("balance %s %s/%s differs from the journal's last entry %v", key, b.GetAvailable(), b.GetHeld(), j)
			}
			if held != heldByAccount[key] {
				t.Errorf("balance %s holds %d, its holds add up to %d", key, held, heldByAccount[key])
			}
			total := big.NewInt(avail + held)
			if expect := new(big.Int).Add(moved, deltas[key]); total.Cmp(expect) != 0 {
				t.Errorf("balance %s: %s, its transfers and trades make %s", key, total, expect)
			}
			if totals[asset] == nil {
				totals[asset], want[asset] = new(big.Int), new(big.Int)
			}
			totals[asset].Add(totals[asset], total)
			want[asset].Add(want[asset], moved)
			state.balances[key] = b.GetAvailable() + " " + b.GetHeld()
		}
	}
	for _, m := range markets { // the fee accounts: what the trades paid them
		key := feeAccount(m.symbol) + " " + m.quote
		res, err := p.Wallet.GetBalance(t.Context(), &walletv1.GetBalanceRequest{AccountId: feeAccount(m.symbol), Asset: m.quote})
		if err != nil {
			t.Fatalf("balance %s: %v", key, err)
		}
		got := mustParse(t, res.GetBalance().GetAvailable()) + mustParse(t, res.GetBalance().GetHeld())
		if expect := deltas[key]; expect == nil || big.NewInt(got).Cmp(expect) != 0 {
			t.Errorf("fee account %s holds %d, the trades paid it %v", key, got, expect)
		}
		if got == 0 {
			t.Errorf("fee account %s received nothing: do the scenario's trades pay no fee?", key)
		}
		totals[m.quote].Add(totals[m.quote], big.NewInt(got))
		state.balances[key] = res.GetBalance().GetAvailable() + " " + res.GetBalance().GetHeld()
	}
	for asset, total := range totals {
		if total.Cmp(want[asset]) != 0 {
			t.Errorf("%s not conserved: accounts hold %s, deposits minus withdrawals are %s", asset, total, want[asset])
		}
	}
	return state
}

// listOrders pages through every order.
func listOrders(t *testing.T, p *platformtest.Platform) []*orderv1.Order {
	t.Helper()
	var all []*orderv1.Order
	token := ""
	for {
		res, err := p.Orders.ListOrders(t.Context(), &orderv1.ListOrdersRequest{
			Page: &commonv1.PageRequest{PageSize: 1000, PageToken: token}})
		if err != nil {
			t.Fatalf("list orders: %v", err)
		}
		all = append(all, res.GetOrders()...)
		if token = res.GetPage().GetNextPageToken(); token == "" || len(res.GetOrders()) == 0 {
			return all
		}
	}
}

// replayEngine reads every engine event in order: the orders' statuses,
// each instrument's trades (named by client order ids), and each account's
// balance change from its trades. It fails the test if a book is crossed
// once a command's events are applied.
func replayEngine(t *testing.T, js jetstream.JetStream, byID map[string]*orderv1.Order) (map[string]*engineOrder, map[string][]string, map[string]*big.Int, map[uint64]bool) {
	t.Helper()
	refused := map[uint64]bool{} // input sequences of cancels the engine refused
	orders := map[string]*engineOrder{}
	trades := map[string][]string{}
	deltas := map[string]*big.Int{}
	add := func(acct, asset string, v int64) {
		key := acct + " " + asset
		if deltas[key] == nil {
			deltas[key] = new(big.Int)
		}
		deltas[key].Add(deltas[key], big.NewInt(v))
	}
	cid := func(id string) string {
		if o := byID[id]; o != nil {
			return o.GetClientOrderId()
		}
		return "?" + id
	}
	books := map[string]*l2{}
	var prev *enginev1.EngineEvent
	for _, m := range readAll(t, js, streams.TopicEngineEvent) {
		var ev enginev1.EngineEvent
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			t.Fatalf("engine event %d: %v", m.Sequence, err)
		}
		inst := ev.GetInstrumentId()
		if prev != nil && (prev.GetInstrumentId() != inst || prev.GetInputSequence() != ev.GetInputSequence()) {
			books[prev.GetInstrumentId()].checkUncrossed(t, prev)
		}
		prev = &ev
		if books[inst] == nil {
			books[inst] = &l2{bids: map[int64]int64{}, asks: map[int64]int64{}}
		}
		books[inst].apply(t, ev.GetBookChanges())
		switch e := ev.GetEvent().(type) {
		case *enginev1.EngineEvent_Accepted:
			a := e.Accepted
			orders[a.GetOrderId()] = &engineOrder{account: a.GetAccountId(), instrument: inst, side: a.GetSide(), status: commonv1.OrderStatus_ORDER_STATUS_NEW}
		case *enginev1.EngineEvent_Rejected:
			orders[e.Rejected.GetOrderId()] = &engineOrder{status: commonv1.OrderStatus_ORDER_STATUS_REJECTED}
		case *enginev1.EngineEvent_Trade:
			tr := e.Trade
			qty := mustParse(t, tr.GetQuantity())
			for _, side := range []struct{ id, remaining string }{{tr.GetTakerOrderId(), tr.GetTakerRemainingQuantity()}, {tr.GetMakerOrderId(), tr.GetMakerRemainingQuantity()}} {
				o := orders[side.id]
				if o == nil {
					t.Fatalf("trade %s of order %s before it was accepted", tr.GetTradeId(), side.id)
				}
				o.filled += qty
				o.status = commonv1.OrderStatus_ORDER_STATUS_PARTIALLY_FILLED
				if mustParse(t, side.remaining) == 0 {
					o.status = commonv1.OrderStatus_ORDER_STATUS_FILLED
				}
			}
			base, quote := strings.TrimSuffix(inst, "USDT"), "USDT"
			notional := mustParse(t, tr.GetQuoteQuantity())
			buyer, seller := tr.GetTakerAccountId(), tr.GetMakerAccountId()
			buyFee, sellFee := mustParse(t, tr.GetTakerFee()), mustParse(t, tr.GetMakerFee())
			if tr.GetTakerSide() == commonv1.Side_SIDE_SELL {
				buyer, seller = seller, buyer
				buyFee, sellFee = sellFee, buyFee
			}
			add(buyer, base, qty)
			add(buyer, quote, -notional-buyFee)
			add(seller, base, -qty)
			add(seller, quote, notional-sellFee)
			add(feeAccount(inst), quote, buyFee+sellFee)
			trades[inst] = append(trades[inst], fmt.Sprintf("%s %s %s %s", cid(tr.GetTakerOrderId()), cid(tr.GetMakerOrderId()), tr.GetPrice(), tr.GetQuantity()))
		case *enginev1.EngineEvent_Cancelled:
			orders[e.Cancelled.GetOrderId()].status = commonv1.OrderStatus_ORDER_STATUS_CANCELLED
		case *enginev1.EngineEvent_Expired:
			orders[e.Expired.GetOrderId()].status = commonv1.OrderStatus_ORDER_STATUS_EXPIRED
		case *enginev1.EngineEvent_CancelRejected:
			refused[ev.GetInputSequence()] = true
		}
	}
	if prev != nil {
		books[prev.GetInstrumentId()].checkUncrossed(t, prev)
	}
	return orders, trades, deltas, refused
}

// l2 is a price-level book rebuilt from the events' book changes.
type l2 struct{ bids, asks map[int64]int64 }

func (b *l2) apply(t *testing.T, changes []*enginev1.BookLevelChange) {
	for _, c := range changes {
		side := b.bids
		if c.GetSide() == commonv1.Side_SIDE_SELL {
			side = b.asks
		}
		price, qty := mustParse(t, c.GetPrice()), mustParse(t, c.GetQuantity())
		if qty == 0 {
			delete(side, price)
		} else {
			side[price] = qty
		}
	}
}

func (b *l2) checkUncrossed(t *testing.T, after *enginev1.EngineEvent) {
	if len(b.bids) == 0 || len(b.asks) == 0 {
		return
	}
	bid, ask := slices.Max(keys(b.bids)), slices.Min(keys(b.asks))
	if bid >= ask {
		t.Errorf("%s book crossed after command %d: best bid %d >= best ask %d", after.GetInstrumentId(), after.GetInputSequence(), bid, ask)
	}
}

func keys(m map[int64]int64) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// hold is a hold as the journal tells it.
type hold struct {
	account, asset string
	remaining      int64
}

// replayJournal reads the wallet journal: every hold's remaining amount
// (the sum of its held deltas) and the last entry of each account's asset.
func replayJournal(t *testing.T, js jetstream.JetStream) (map[string]*hold, map[string]*walletv1.BalanceChanged) {
	t.Helper()
	holds := map[string]*hold{}
	last := map[string]*walletv1.BalanceChanged{}
	for _, m := range readAll(t, js, streams.TopicBalanceChanged) {
		var e walletv1.BalanceChanged
		if err := proto.Unmarshal(m.Data, &e); err != nil {
			t.Fatalf("journal entry %d: %v", m.Sequence, err)
		}
		last[e.GetAccountId()+" "+e.GetAsset()] = &e
		if id := e.GetHoldId(); id != "" {
			if holds[id] == nil {
				holds[id] = &hold{account: e.GetAccountId(), asset: e.GetAsset()}
			}
			holds[id].remaining += mustParse(t, e.GetHeldDelta())
		}
	}
	return holds, last
}

// readAll returns every message of a topic's stream in order.
func readAll(t *testing.T, js jetstream.JetStream, topic string) []*jetstream.RawStreamMsg {
	t.Helper()
	st, err := js.Stream(t.Context(), streams.StreamName(topic))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("%s message %d: %v", topic, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// effectiveCommands lists each instrument's commands of engine.order.v1 in
// stream order, orders named by client order id, leaving out the cancels
// the engine refused (whether a cancel of a finished order is sent at all
// depends on how far the order service's records are): "submit <cid>
// <side> <type> <tif> post=<bool> <price> <quantity> <stp>" or "cancel
// <cid>".
func effectiveCommands(t *testing.T, js jetstream.JetStream, byID map[string]*orderv1.Order, refused map[uint64]bool) map[string][]string {
	t.Helper()
	commands := map[string][]string{}
	for _, m := range readAll(t, js, streams.TopicOrderCommand) {
		if refused[m.Sequence] {
			continue
		}
		var cmd enginev1.OrderCommand
		if err := proto.Unmarshal(m.Data, &cmd); err != nil {
			t.Fatalf("order command %d: %v", m.Sequence, err)
		}
		inst := cmd.GetInstrumentId()
		if sub := cmd.GetSubmit(); sub != nil {
			commands[inst] = append(commands[inst], fmt.Sprintf("submit %s %v %v %v post=%t %s %s %v",
				byID[sub.GetOrderId()].GetClientOrderId(), sub.GetSide(), sub.GetType(), sub.GetTimeInForce(),
				sub.GetPostOnly(), sub.GetPrice(), sub.GetQuantity(), sub.GetSelfTradePrevention()))
		} else {
			commands[inst] = append(commands[inst], "cancel "+byID[cmd.GetCancel().GetOrderId()].GetClientOrderId())
		}
	}
	return commands
}

// feeAccount is the wallet's fee account of an instrument.
func feeAccount(inst string) string { return wallet.Default().FeeAccountPrefix + inst }
