package matching

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
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
	total, err := perp.Share(o.margin, o.filled, o.quantity)
	if err != nil || o.filled >= o.quantity {
		total = o.margin
	}
	s := total - o.taken
	o.taken = total
	return s
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
	if r := s.GetMaintenanceMarginRate(); r != "" {
		mmr, err := decimal.ParseNonNegative(r, 6)
		if err != nil || mmr == 0 || mmr >= perp.RateUnit {
			return nil, invalid(c, fmt.Sprintf("maintenance_margin_rate %q: want a fraction above 0 and below 1 with at most 6 digits", r))
		}
		if mmr != st.mmr {
			st.mmr = mmr // the latest rate liquidates, from this command on
			st.liq.rebuild(st.positions, mmr)
		}
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
	st.setPosition(o.account, next)
	amount := func(v int64) string { return decimal.Format(v, st.priceScale+st.quantityScale) }
	return &enginev1.PositionChange{
		Size: decimal.Format(next.Size, st.quantityScale), EntryValue: amount(next.Value), Margin: amount(next.Margin),
		MarginFromOrder: amount(share), RealizedPnl: amount(ch.Realized), ReleasedMargin: amount(ch.Released),
		Payout: amount(ch.Payout), Shortfall: amount(ch.Shortfall),
	}
}

// InsuranceAccount is the insurance fund's account: it takes over what a
// liquidation's order does not close, needs no margin and is never
// liquidated. It is part of what a replay reproduces: never change it.
const InsuranceAccount = "insurance-fund"

// liquidate liquidates, in account order, every position whose equity at
// mark is below its maintenance margin: its resting orders are cancelled,
// an IOC order up to its bankruptcy price goes into the book, and what that
// does not close passes to the insurance fund at the bankruptcy price.
// emitBook emits a book event's EngineEvent, emit any other.
func (st *instrument) liquidate(seq uint64, mark int64, emitBook func(e *book.Event, po *perpOrder), emit func(*enginev1.EngineEvent)) {
	if st.mmr == 0 {
		return
	}
	var spared []string // candidates not liquidated: indexed again at the end
	defer func() {
		for _, acct := range spared {
			st.liq.update(acct, st.positions[acct], st.mmr)
		}
		if st.liq.stale() {
			st.liq.rebuild(st.positions, st.mmr)
		}
	}()
	// Rounds: a liquidation's fills change other positions, which the next
	// round looks at.
	for {
		cands := st.liq.candidates(mark)
		if len(cands) == 0 {
			return
		}
		for _, acct := range cands {
			if !st.liquidateOne(seq, acct, mark, emitBook, emit) {
				spared = append(spared, acct)
			}
		}
	}
}

// liquidateOne liquidates acct's position if its equity at mark is below
// its maintenance margin, and reports whether it did.
func (st *instrument) liquidateOne(seq uint64, acct string, mark int64, emitBook func(e *book.Event, po *perpOrder), emit func(*enginev1.EngineEvent)) bool {
	pos := st.positions[acct]
	if liq, err := pos.Liquidatable(mark, st.mmr); err != nil || !liq {
		return false
	}
	bankr, ok, err := pos.BankruptcyPrice()
	if err != nil || !ok {
		return false
	}
	st.cancelOrdersOf(acct, emitBook)
	side := book.Sell
	if pos.Size < 0 {
		side = book.Buy
	}
	size := max(pos.Size, -pos.Size)
	po := &perpOrder{account: acct, leverage: 1, quantity: size}
	cmd := book.Command{Kind: book.Submit, OrderID: fmt.Sprintf("liquidation:%d:%s", seq, acct), Account: acct,
		Side: side, Type: book.Limit, TimeInForce: book.IOC, Price: bankr, Quantity: size}
	st.buf = st.book.Apply(cmd, st.buf[:0])
	for i := range st.buf {
		emitBook(&st.buf[i], po)
	}
	if left := st.positions[acct]; left.Size != 0 {
		emit(st.takeOver(acct, left, bankr))
	}
	return true
}

// setPosition stores acct's position (a flat one is dropped) and indexes
// it for liquidation.
func (st *instrument) setPosition(acct string, pos perp.Position) {
	if pos == (perp.Position{}) {
		delete(st.positions, acct)
	} else {
		st.positions[acct] = pos
	}
	st.liq.update(acct, pos, st.mmr)
}

// cancelOrdersOf cancels every resting perpetual order of acct.
func (st *instrument) cancelOrdersOf(acct string, emitBook func(e *book.Event, po *perpOrder)) {
	var ids []string
	for id, o := range st.perpOrders {
		if o.account == acct {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		st.buf = st.book.Apply(book.Command{Kind: book.Cancel, OrderID: id, Account: acct, CancelReason: book.CancelAdmin}, st.buf[:0])
		for i := range st.buf {
			emitBook(&st.buf[i], nil)
		}
	}
}

// takeOver passes position pos of acct to the insurance fund at price.
func (st *instrument) takeOver(acct string, pos perp.Position, price int64) *enginev1.EngineEvent {
	user := &perpOrder{account: acct, leverage: 1, quantity: max(pos.Size, -pos.Size)}
	fund := &perpOrder{account: InsuranceAccount, leverage: 1, quantity: user.quantity}
	closing, opening := book.Sell, book.Buy // the fund buys a long from the account
	if pos.Size < 0 {
		closing, opening = book.Buy, book.Sell
	}
	out := &enginev1.PositionTakenOver{
		AccountId: acct, Size: decimal.Format(pos.Size, st.quantityScale), Price: decimal.Format(price, st.priceScale),
		Position: st.fill(user, closing, price, user.quantity), InsuranceAccountId: InsuranceAccount,
		InsurancePosition: st.fill(fund, opening, price, fund.quantity),
	}
	return &enginev1.EngineEvent{Event: &enginev1.EngineEvent_TakenOver{TakenOver: out}}
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

// impactDepth bounds the levels a side's impact price is taken from.
const impactDepth = 1000

// settleFunding settles a funding tick: every open position pays size x
// mark x rate from its margin (or receives it into it), in account order.
// A tick the engine cannot read is rejected; without a mark yet (no quote
// or trade) nothing is paid.
func (st *instrument) settleFunding(c *enginev1.OrderCommand) []*enginev1.EngineEvent {
	end := c.GetFunding().GetIntervalEnd()
	if !end.IsValid() {
		return []*enginev1.EngineEvent{invalid(c, "funding tick: interval_end is required")}
	}
	if at := end.AsTime().UnixNano(); at <= st.lastFunding {
		// Once per interval, whoever sent the tick and however often.
		return []*enginev1.EngineEvent{rejected(c, commonv1.RejectReason_REJECT_REASON_DUPLICATE_ORDER,
			fmt.Sprintf("funding tick: the interval ending %s is settled", end.AsTime().UTC().Format(time.RFC3339)))}
	}
	out, contributions := st.fundingOf(c)
	f := out.GetFunding()
	if f != nil {
		st.lastFunding = end.AsTime().UnixNano()
	}
	if f == nil || len(f.Payments) <= maxFundingPayments {
		return []*enginev1.EngineEvent{out}
	}
	// Many positions: one event per maxFundingPayments, each with the
	// insurance of its own payments, so that each settles in one journal
	// write of the wallet.
	ns := st.priceScale + st.quantityScale
	var events []*enginev1.EngineEvent
	for chunk := range slices.Chunk(f.Payments, maxFundingPayments) {
		part := proto.CloneOf(f)
		part.Payments = chunk
		var insurance int64
		for _, p := range chunk {
			insurance += contributions[p.GetAccountId()]
		}
		part.Insurance = decimal.Format(insurance, ns)
		events = append(events, &enginev1.EngineEvent{Event: &enginev1.EngineEvent_Funding{Funding: part}})
	}
	return events
}

// maxFundingPayments bounds the payments of one FundingSettled event.
const maxFundingPayments = 128

// fundingOf computes a funding tick's settlement with all its payments
// and, by account, what each payment gives the insurance fund.
func (st *instrument) fundingOf(c *enginev1.OrderCommand) (*enginev1.EngineEvent, map[string]int64) {
	f := c.GetFunding()
	ns := st.priceScale + st.quantityScale
	reject := func(msg string) (*enginev1.EngineEvent, map[string]int64) {
		return invalid(c, "funding tick: "+msg), nil
	}
	clamp, err := decimal.ParseNonNegative(f.GetRateClamp(), 6)
	if err != nil || clamp > perp.RateUnit {
		return reject(fmt.Sprintf("rate_clamp %q: want a fraction with at most 6 digits", f.GetRateClamp()))
	}
	out := &enginev1.FundingSettled{IntervalEnd: f.GetIntervalEnd(), Rate: "0"}
	event := &enginev1.EngineEvent{Event: &enginev1.EngineEvent_Funding{Funding: out}}
	mark, ok := st.mark.Price()
	if !ok || !st.scaled {
		return event, nil
	}
	notional, err := decimal.ParseNonNegative(f.GetImpactNotional(), ns)
	if err != nil || notional == 0 {
		return reject(fmt.Sprintf("impact_notional %q: want a positive amount at scale %d", f.GetImpactNotional(), ns))
	}
	index := mark
	if f.GetIndexPrice() != "" {
		if index, err = decimal.ParseNonNegative(f.GetIndexPrice(), st.priceScale); err != nil || index == 0 {
			return reject(fmt.Sprintf("index_price %q: want a positive price at scale %d", f.GetIndexPrice(), st.priceScale))
		}
	}
	impact := func(side book.Side) int64 {
		levels := st.book.Depth(side, impactDepth, nil)
		pl := make([]perp.Level, len(levels))
		for i, l := range levels {
			pl[i] = perp.Level{Price: l.Price, Quantity: l.Quantity}
		}
		if p, ok, err := perp.ImpactPrice(pl, notional); err == nil && ok {
			return p
		}
		return mark // a book too thin for the impact notional
	}
	bid, ask := impact(book.Buy), impact(book.Sell)
	rate, err := perp.FundingRate(bid, ask, index, clamp)
	if err != nil {
		return reject(err.Error())
	}
	price := func(v int64) string { return decimal.Format(v, st.priceScale) }
	amount := func(v int64) string { return decimal.Format(v, ns) }
	out.Rate, out.MarkPrice, out.IndexPrice, out.ImpactBid, out.ImpactAsk = decimal.FormatTrim(rate, 6), price(mark), price(index), price(bid), price(ask)
	var insurance int64
	contributions := map[string]int64{}
	for _, acct := range slices.Sorted(maps.Keys(st.positions)) {
		pos := st.positions[acct]
		owed, err := pos.Funding(mark, rate)
		if err != nil || pos.Size == 0 || owed == 0 {
			continue
		}
		p := &enginev1.FundingPayment{AccountId: acct, Amount: amount(owed),
			Size: decimal.Format(pos.Size, st.quantityScale), EntryValue: amount(pos.Value)}
		if owed > 0 {
			taken := min(owed, pos.Margin)
			pos.Margin -= taken
			insurance += taken
			contributions[acct] = taken
			p.Shortfall = amount(owed - taken)
		} else {
			pos.Margin -= owed
			insurance += owed
			contributions[acct] = owed
			p.Shortfall = amount(0)
		}
		p.Margin = amount(pos.Margin)
		st.setPosition(acct, pos)
		out.Payments = append(out.Payments, p)
	}
	out.Insurance = amount(insurance)
	return event, contributions
}

// adjustMargin adds margin to a position or removes what it can spare at
// the mark (perp.Position.MaxRemovable at the command's leverage). A
// command that cannot apply is rejected: the wallet releases an add's hold.
func (st *instrument) adjustMargin(c *enginev1.OrderCommand) *enginev1.EngineEvent {
	a := c.GetMargin()
	ns := st.priceScale + st.quantityScale
	reject := func(msg string) *enginev1.EngineEvent { return invalid(c, "margin: "+msg) }
	pos, ok := st.positions[a.GetAccountId()]
	if !ok || pos.Size == 0 || !st.scaled {
		return reject("the account has no open position")
	}
	amount, err := decimal.Parse(a.GetAmount(), ns)
	if err != nil || amount == 0 {
		return reject(fmt.Sprintf("amount %q: want a non-zero amount with at most %d decimals", a.GetAmount(), ns))
	}
	format := func(v int64) string { return decimal.Format(v, ns) }
	change := &enginev1.PositionChange{MarginFromOrder: format(0), Payout: format(0), RealizedPnl: format(0), ReleasedMargin: format(0), Shortfall: format(0)}
	if amount > 0 {
		change.MarginFromOrder = format(amount)
	} else {
		mark, ok := st.mark.Price()
		if !ok || a.GetLeverage() < 1 {
			return reject("a removal needs a mark price and the account's leverage")
		}
		most, err := pos.MaxRemovable(mark, int64(a.GetLeverage()))
		if err != nil {
			return reject(err.Error())
		}
		if -amount > most {
			return reject(fmt.Sprintf("at most %s can be removed at the mark %s", format(most), decimal.Format(mark, st.priceScale)))
		}
		change.Payout = format(-amount)
	}
	if pos, err = pos.WithMargin(amount); err != nil {
		return reject(err.Error())
	}
	st.setPosition(a.GetAccountId(), pos)
	change.Size, change.EntryValue, change.Margin = decimal.Format(pos.Size, st.quantityScale), format(pos.Value), format(pos.Margin)
	return &enginev1.EngineEvent{Event: &enginev1.EngineEvent_MarginAdjusted{MarginAdjusted: &enginev1.MarginAdjusted{
		AccountId: a.GetAccountId(), Amount: format(amount), Position: change,
	}}}
}
