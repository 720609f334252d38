package wallet

import (
	"testing"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
)

// A trade's fees: the buyer's comes out of its order's hold (which the
// order service sized to cover it), the seller's out of what it received;
// the instrument's fee account gets both, and funds stay conserved.
func TestSettlementChargesFees(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.start(testConfig())
	eng := newEngine(t, e.js)
	c := w.client
	deposit(t, c, "d1", "alice", "USDT", "10000")
	deposit(t, c, "d2", "bob", "BTC", "1")
	hold(t, c, "A1", "alice", "USDT", "5005") // buy 0.5 @ 10000 and a 0.1% fee
	hold(t, c, "B1", "bob", "BTC", "0.5")

	// alice (taker) pays 0.05% of 4500, bob (maker) 0.02% of 4500, in two
	// fills settled one at a time: the first fill's fee must come off the
	// hold for good, or the last fill releases too much of it.
	fill := func(id, qty, left, takerFee, makerFee string) uint64 {
		return eng.publish(&enginev1.EngineEvent{Event: &enginev1.EngineEvent_Trade{Trade: &enginev1.Trade{
			TradeId: id, Price: "9000.00", Quantity: qty,
			TakerOrderId: "A1", TakerAccountId: "alice", TakerSide: commonv1.Side_SIDE_BUY, TakerRemainingQuantity: left,
			MakerOrderId: "B1", MakerAccountId: "bob", MakerSide: commonv1.Side_SIDE_SELL, MakerRemainingQuantity: left,
			TakerFee: takerFee, MakerFee: makerFee,
		}}})
	}
	settled(t, w, fill("trade-0", "0.20000", "0.30000", "0.9000000", "0.3600000"))
	seq := fill("trade-1", "0.30000", "0.00000", "1.3500000", "0.5400000")
	settled(t, w, seq)
	for _, c := range []struct{ acct, asset, want string }{
		{"alice", "USDT", "5497.75000000/0.00000000"}, // 10000 - 4500 - 2.25; the rest of the hold released
		{"alice", "BTC", "0.50000000/0.00000000"},
		{"bob", "USDT", "4499.10000000/0.00000000"}, // 4500 - 0.90
		{"bob", "BTC", "0.50000000/0.00000000"},
		{"fees-BTCUSDT", "USDT", "3.15000000/0.00000000"},
	} {
		if got := balance(t, w.client, c.acct, c.asset); got != c.want {
			t.Errorf("%s %s = %s, want %s", c.acct, c.asset, got, c.want)
		}
	}
	if got := totals(w); got["USDT"] != 10000_00000000 || got["BTC"] != 1_00000000 {
		t.Errorf("totals %v: funds not conserved", got)
	}
	st, err := e.js.Stream(t.Context(), "WALLET_BALANCE_CHANGED_V1")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(t.Context(), "wallet.balance.changed.v1.fees-BTCUSDT")
	if err != nil {
		t.Fatal(err)
	}
	var entry walletv1.BalanceChanged
	if err := proto.Unmarshal(m.Data, &entry); err != nil || entry.GetReason() != walletv1.BalanceChangeReason_BALANCE_CHANGE_REASON_FEE ||
		entry.GetAvailableDelta() != "1.89000000" || entry.GetTradeId() != "trade-1" {
		t.Errorf("the fee account's journal entry: %v, %v", &entry, err)
	}
}
