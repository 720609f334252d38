package matching

import (
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/internal/perp"
	"github.com/tradex-mesh/tradex/services/matching/book"
)

// The engine is the risk engine of a perpetual (docs/perpetuals.md): an
// order with a leverage changes its account's position, which the engine
// keeps in command order, so that a replay gives the same positions.

// perpOrder is a perpetual order's margin: what the wallet holds for it
// (at the notional scale) and how much of it its fills took, in proportion
// to the quantity filled.
type perpOrder struct {
	account          string
	leverage         int32
	margin, quantity int64
	filled, taken    int64
}

// share is the margin a fill of qty takes: margin x filled / quantity,
// the rounding carried to the next fill (the last one takes the rest).
func (o *perpOrder) share(qty int64) int64 {
	o.filled += qty
	total, err := mulDiv(o.margin, o.filled, o.quantity)
	if err != nil || o.filled >= o.quantity {
		total = o.margin
	}
	s := total - o.taken
	o.taken = total
	return s
}

// mulDiv is a x b / c rounded down, c > 0, with an error on overflow.
func mulDiv(a, b, c int64) (int64, error) {
	n, err := perp.Notional(a, b) // a x b with an overflow check
	if err != nil {
		return 0, err
	}
	return n / c, nil
}

// perpOf reads a submit's perpetual fields: nil for a spot order (leverage
// 0); an order that cannot be one rejects the command.
func (st *instrument) perpOf(c *enginev1.OrderCommand, cmd book.Command) (*perpOrder, *enginev1.EngineEvent) {
	s := c.GetSubmit()
	if s.GetLeverage() == 0 && s.GetMargin() == "" && !s.GetReduceOnly() {
		return nil, nil
	}
	if s.GetLeverage() < 1 {
		return nil, invalid(c, "a perpetual order needs a leverage of 1 or more")
	}
	margin, err := decimal.ParseNonNegative(s.GetMargin(), s.GetPriceScale()+s.GetQuantityScale())
	if err != nil {
		return nil, invalid(c, "margin: "+err.Error())
	}
	if s.GetReduceOnly() {
		signed := cmd.Quantity
		if cmd.Side == book.Sell {
			signed = -signed
		}
		if !st.positions[cmd.Account].Reduces(signed) {
			return nil, invalid(c, "reduce-only order would open or grow the position (it must be on the other side and no larger)")
		}
	}
	return &perpOrder{account: cmd.Account, leverage: s.GetLeverage(), margin: margin, quantity: cmd.Quantity}, nil
}

// fill applies one side of a trade of a perpetual order to its account's
// position and says what it did.
func (st *instrument) fill(o *perpOrder, side book.Side, price, qty int64) *enginev1.PositionChange {
	signed := qty
	if side == book.Sell {
		signed = -qty
	}
	share := o.share(qty)
	pos := st.positions[o.account]
	next, ch, err := pos.Trade(signed, price, share)
	if err != nil { // out of int64: the instrument's scales allow no such value; keep the position
		next, ch = pos, perp.Change{Payout: share}
	}
	if next == (perp.Position{}) {
		delete(st.positions, o.account)
	} else {
		st.positions[o.account] = next
	}
	amount := func(v int64) string { return decimal.Format(v, st.priceScale+st.quantityScale) }
	return &enginev1.PositionChange{
		Size: decimal.Format(next.Size, st.quantityScale), EntryValue: amount(next.Value), Margin: amount(next.Margin),
		MarginFromOrder: amount(share), RealizedPnl: amount(ch.Realized), ReleasedMargin: amount(ch.Released),
		Payout: amount(ch.Payout), Shortfall: amount(ch.Shortfall),
	}
}

// positionsOfTrade records what a trade did to the positions of its
// perpetual orders (the taker's is taker, nil for spot; the maker's is
// remembered while it rests).
func (st *instrument) positionsOfTrade(e *book.Event, taker *perpOrder, tr *enginev1.Trade) {
	if taker != nil {
		tr.TakerPosition = st.fill(taker, e.Side, e.Price, e.Quantity)
	}
	if maker := st.perpOrders[e.MakerOrderID]; maker != nil {
		tr.MakerPosition = st.fill(maker, e.Side.Opposite(), e.Price, e.Quantity)
		if e.MakerRemaining == 0 {
			delete(st.perpOrders, e.MakerOrderID)
		}
	}
}
