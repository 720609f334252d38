package platformtest_test

import (
	"fmt"
	"math/rand/v2"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
)

// market is an instrument of the scenario: a price grid around a mid price
// and a quantity range, both in the demo instrument's units.
type market struct {
	symbol, base, quote string
	// mid and step are in ticks of 0.01; levels on each side of mid.
	mid, step, levels int64
	// minQty and maxQty are in lots; lotDigits is the lot's scale.
	minQty, maxQty int64
	lotDigits      int
	// huge is a quantity no account can ever fund (insufficient funds).
	huge string
}

var markets = []market{
	{symbol: "BTCUSDT", base: "BTC", quote: "USDT", mid: 5_000_000, step: 100, levels: 10,
		minQty: 100, maxQty: 5_000, lotDigits: 5, huge: "100000"},
	{symbol: "ETHUSDT", base: "ETH", quote: "USDT", mid: 300_000, step: 50, levels: 10,
		minQty: 100, maxQty: 5_000, lotDigits: 4, huge: "1000000"},
}

func (m market) price(ticks int64) string { return fmt.Sprintf("%d.%02d", ticks/100, ticks%100) }

func (m market) qty(lots int64) string {
	scale := int64(1)
	for range m.lotDigits {
		scale *= 10
	}
	return fmt.Sprintf("%d.%0*d", lots/scale, m.lotDigits, lots%scale)
}

// funds is what every account deposits before trading.
type funds map[string]string

// ampleFunds cover every hold of the scenario at once, so that no order's
// outcome depends on when settlements land (only the huge orders fail).
var ampleFunds = funds{"BTC": "1000", "ETH": "10000", "USDT": "1000000000"}

// tightFunds run out: holds fail or succeed depending on what has settled.
var tightFunds = funds{"BTC": "0.5", "ETH": "8", "USDT": "40000"}

// actionKind is what a scenario step does.
type actionKind int

const (
	actPlace actionKind = iota
	actCancel
	actWithdraw
)

// action is one step of the scenario, for one account on one instrument.
type action struct {
	kind    actionKind
	account string
	market  int
	place   *orderv1.PlaceOrderRequest
	// cancel: the client order id of an earlier order of the account on
	// the same instrument.
	cancel string
	// withdraw: asset, amount and transfer id.
	asset, amount, transferID string
}

// scenario is a seeded sequence of n actions by the given number of
// accounts over both markets: limit GTC, IOC, FOK and post-only orders,
// market orders (buys with a protection price), orders no account can fund,
// cancels of earlier orders, and a withdrawal every 250 actions. Prices sit
// on a narrow grid, so orders cross, rest, fill partly and trade with
// their own account (self-trade prevention).
func scenario(seed uint64, n, accounts int) []action {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed)) //nolint:gosec // a seeded, reproducible scenario
	placed := make(map[[2]int][]string)             // (account, market) -> client order ids
	out := make([]action, 0, n)
	for i := range n {
		acct := rng.IntN(accounts)
		mi := rng.IntN(len(markets))
		m := markets[mi]
		a := action{account: fmt.Sprintf("acct%02d", acct), market: mi}
		if i%250 == 249 {
			a.kind, a.asset, a.transferID = actWithdraw, m.base, fmt.Sprintf("w%05d", i)
			a.amount = m.qty(m.minQty * int64(1+rng.IntN(3)))
			out = append(out, a)
			continue
		}
		side := commonv1.Side_SIDE_BUY
		if rng.IntN(2) == 0 {
			side = commonv1.Side_SIDE_SELL
		}
		ticks := m.mid + m.step*(int64(rng.IntN(int(2*m.levels+1)))-m.levels)
		req := &orderv1.PlaceOrderRequest{
			AccountId: a.account, ClientOrderId: fmt.Sprintf("c%05d", i), InstrumentId: m.symbol, Side: side,
			Type: commonv1.OrderType_ORDER_TYPE_LIMIT, Price: m.price(ticks),
			Quantity: m.qty(m.minQty + rng.Int64N(m.maxQty-m.minQty+1)),
		}
		key := [2]int{acct, mi}
		switch r := rng.IntN(100); {
		case r < 18 && len(placed[key]) > 0:
			a.kind = actCancel
			a.cancel = placed[key][rng.IntN(len(placed[key]))]
			out = append(out, a)
			continue
		case r < 58: // limit GTC
		case r < 66:
			req.TimeInForce = commonv1.TimeInForce_TIME_IN_FORCE_IOC
		case r < 71:
			req.TimeInForce = commonv1.TimeInForce_TIME_IN_FORCE_FOK
		case r < 80:
			req.PostOnly = true
		case r < 92:
			req.Type = commonv1.OrderType_ORDER_TYPE_MARKET
			req.Price = ""
			if side == commonv1.Side_SIDE_BUY { // a protection bound, a little above the grid
				req.Price = m.price(m.mid + m.step*(m.levels+1))
			}
		case r < 94:
			req.Quantity = m.huge
		default:
			req.SelfTradePrevention = commonv1.SelfTradePrevention(1 + rng.Int32N(3))
		}
		a.place = req
		placed[key] = append(placed[key], req.GetClientOrderId())
		out = append(out, a)
	}
	return out
}
