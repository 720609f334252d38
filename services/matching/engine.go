package matching

import (
	"context"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/internal/perp"
	"github.com/tradex-mesh/tradex/services/matching/book"
)

// instrument is the engine state of one instrument: its book, the scales its integers
// are in, and how far it has got in the input and output streams. It is used by one
// goroutine at a time (the instrument's single writer).
type instrument struct {
	id   string
	book *book.Book
	// priceScale and quantityScale are the scales of the book's integers, taken from the
	// first submit (and from any submit while the book is empty).
	priceScale, quantityScale int32
	// scaled is false until a submit set the scales.
	scaled bool
	// lastInput is the stream sequence on engine.order.v1 of the last command applied.
	lastInput uint64
	// sequence is the output sequence of the last event produced.
	sequence uint64
	// stored is the stream sequence on engine.event.v1 of the instrument's last event
	// (0: none); the next publish expects it.
	stored uint64
	// sinceSnapshot counts the commands applied since the last snapshot.
	sinceSnapshot int
	// executed remembers the submit command ids applied (memory.go).
	executed commandMemory
	// mark is the mark price (at the price scale) and lastTrade the price of
	// the last trade (0: none yet).
	mark      perp.Mark
	lastTrade int64
	// fees are the fee rates and fees so far of the resting orders that
	// have rates, by order id: a trade with one as maker charges its maker
	// rate.
	fees map[string]*orderFees
	// positions are a perpetual's positions by account, and perpOrders
	// the margins of its resting orders by order id (positions.go).
	positions  map[string]perp.Position
	perpOrders map[string]*perpOrder
	// mmr is the maintenance margin rate (millionths) liquidations use:
	// the latest a perpetual's submit carried (0: none yet).
	mmr int64
	// lastFunding is the end (Unix nanoseconds) of the last funding
	// interval settled: a tick for it or an earlier one is a repeat.
	lastFunding int64
	// liq indexes the positions for liquidation (liqindex.go).
	liq *liqIndex

	buf []book.Event
}

// newInstrument returns the state of an instrument with an empty book.
func newInstrument(id string) *instrument {
	return &instrument{id: id, book: book.New(), fees: map[string]*orderFees{},
		positions: map[string]perp.Position{}, perpOrders: map[string]*perpOrder{}, liq: newLiqIndex()}
}

// input is one command as read from engine.order.v1.
type input struct {
	// sequence is the command's stream sequence.
	sequence uint64
	// time is when the stream stored it.
	time time.Time
	// cmd is the decoded command.
	cmd *enginev1.OrderCommand
	// trace, for a command read from the stream rather than delivered,
	// is the context of its message (its trace and correlation id): its
	// events continue its trace. Nil for the delivered command (the
	// handler's context is its).
	trace context.Context //nolint:containedctx // a command's own trace, used only while publishing its events
}

// apply executes in on the book and returns its events, at least one, numbered from the
// instrument's next output sequence. It never fails: a command the engine cannot
// execute becomes a rejection. The state advances as if the events were published.
func (st *instrument) apply(in input) []*enginev1.EngineEvent {
	ts := timestamppb.New(in.time)
	var out []*enginev1.EngineEvent
	emit := func(e *enginev1.EngineEvent) {
		idx := uint32(len(out)) //nolint:gosec // a command yields few events
		e.EventId = eventID(st.id, in.sequence, idx)
		e.InstrumentId = st.id
		e.InputSequence = in.sequence
		e.InputIndex = idx
		e.Sequence = st.sequence + uint64(idx) + 1
		e.EngineTime = ts
		e.CommandId = in.cmd.GetCommandId()
		out = append(out, e)
	}
	cmd, scales, reject := st.decode(in.cmd)
	fees := &orderFees{}
	var po *perpOrder // nil: not a perpetual order
	if reject == nil && in.cmd.GetSubmit() != nil {
		fees, reject = feesOf(in.cmd)
	}
	if reject == nil && in.cmd.GetSubmit() != nil {
		po, reject = st.perpOf(in.cmd, cmd)
	}
	if po != nil && fees.charges() {
		fees.limitTo(cmd.Price, cmd.Quantity)
	}
	if sub := in.cmd.GetSubmit(); sub != nil && st.executed.seen(in.cmd.GetCommandId(), in.time) {
		reject = duplicate(sub)
	}
	switch {
	case in.cmd.GetMargin() != nil && in.cmd.GetInstrumentId() == st.id:
		st.buf = st.buf[:0] // nothing happens on the book
		if st.executed.seen(in.cmd.GetCommandId(), in.time) {
			emit(rejected(in.cmd, commonv1.RejectReason_REJECT_REASON_DUPLICATE_ORDER, "margin: the command was executed before"))
			break
		}
		emit(st.adjustMargin(in.cmd))
	case in.cmd.GetFunding() != nil && in.cmd.GetInstrumentId() == st.id:
		st.buf = st.buf[:0] // nothing happens on the book
		for _, e := range st.settleFunding(in.cmd) {
			emit(e)
		}
	case reject != nil:
		st.buf = st.buf[:0] // nothing happened on the book
		emit(reject)
	default:
		if scales != nil && st.book.Len() == 0 {
			st.priceScale, st.quantityScale, st.scaled = scales[0], scales[1], true
		}
		st.buf = st.book.Apply(cmd, st.buf[:0])
		for i := range st.buf {
			e := st.translate(&st.buf[i], fees, po)
			emit(e)
			if tr := e.GetTrade(); tr != nil {
				tr.TradeId = e.GetEventId()
			}
		}
		if _, rests := st.book.Order(cmd.OrderID); cmd.Kind == book.Submit && rests {
			if fees.charges() {
				st.fees[cmd.OrderID] = fees // its trades as maker need its rate
			}
			if po != nil {
				st.perpOrders[cmd.OrderID] = po // and its margin
			}
		}
	}
	if mark, ok := st.updateMark(); ok {
		st.liquidate(in.sequence, mark, func(e *book.Event, po *perpOrder) {
			ev := st.translate(e, &orderFees{}, po)
			emit(ev)
			if tr := ev.GetTrade(); tr != nil {
				tr.TradeId = ev.GetEventId()
			}
		}, emit)
		out[len(out)-1].MarkPrice = decimal.Format(mark, st.priceScale)
	}
	st.lastInput = in.sequence
	st.sequence += uint64(len(out))
	st.sinceSnapshot++
	return out
}

// updateMark folds the book's best prices and the last trade of the command
// just applied (in st.buf) into the mark price.
func (st *instrument) updateMark() (int64, bool) {
	if !st.scaled {
		return 0, false
	}
	for i := range st.buf {
		if st.buf[i].Kind == book.EventTrade {
			st.lastTrade = st.buf[i].Price
		}
	}
	var bid, ask int64
	if l, ok := st.book.BestBid(); ok {
		bid = l.Price
	}
	if l, ok := st.book.BestAsk(); ok {
		ask = l.Price
	}
	return st.mark.Update(bid, ask, st.lastTrade)
}

// eventID is "<instrument>:<input sequence>:<index>".
func eventID(inst string, seq uint64, idx uint32) string {
	return inst + ":" + strconv.FormatUint(seq, 10) + ":" + strconv.FormatUint(uint64(idx), 10)
}

// decode turns an OrderCommand into a book command. For a submit it also returns the
// scales it carries. A command the engine cannot execute yields the event that rejects
// it instead.
func (st *instrument) decode(c *enginev1.OrderCommand) (book.Command, *[2]int32, *enginev1.EngineEvent) {
	if id := c.GetInstrumentId(); id != st.id {
		return book.Command{}, nil, invalid(c, fmt.Sprintf("instrument_id %q is not the subject's instrument %q", id, st.id))
	}
	switch {
	case c.GetSubmit() != nil:
		return st.decodeSubmit(c)
	case c.GetCancel() != nil:
		cl := c.GetCancel()
		reason := cl.GetReason()
		if reason != commonv1.CancelReason_CANCEL_REASON_UNSPECIFIED &&
			reason != commonv1.CancelReason_CANCEL_REASON_USER_REQUESTED &&
			reason != commonv1.CancelReason_CANCEL_REASON_ADMIN {
			return book.Command{}, nil, cancelInvalid(cl, "cancel reason must be USER_REQUESTED or ADMIN")
		}
		return book.Command{
			Kind: book.Cancel, OrderID: cl.GetOrderId(), Account: cl.GetAccountId(),
			CancelReason: book.CancelReason(reason),
		}, nil, nil
	}
	return book.Command{}, nil, invalid(c, "command is neither submit nor cancel")
}

// decodeSubmit converts a SubmitOrder, its decimal strings with its own scales.
func (st *instrument) decodeSubmit(c *enginev1.OrderCommand) (book.Command, *[2]int32, *enginev1.EngineEvent) {
	s := c.GetSubmit()
	ps, qs := s.GetPriceScale(), s.GetQuantityScale()
	switch {
	case ps < 0 || qs < 0 || ps+qs > decimal.MaxScale:
		return book.Command{}, nil, invalid(c, "price_scale and quantity_scale must be 0 or more and add up to at most 18")
	case st.scaled && st.book.Len() > 0 && (ps != st.priceScale || qs != st.quantityScale):
		return book.Command{}, nil, invalid(c, fmt.Sprintf("scales %d/%d differ from the book's %d/%d", ps, qs, st.priceScale, st.quantityScale))
	case !enumFits(int32(s.GetSide()), int32(s.GetType()), int32(s.GetTimeInForce()), int32(s.GetSelfTradePrevention())):
		return book.Command{}, nil, invalid(c, "side, type, time in force or self-trade prevention out of range")
	}
	var price int64
	if s.GetPrice() != "" || s.GetType() != commonv1.OrderType_ORDER_TYPE_MARKET {
		p, err := decimal.Parse(s.GetPrice(), ps)
		if err != nil {
			return book.Command{}, nil, invalid(c, "price: "+err.Error())
		}
		price = p
	}
	qty, err := decimal.Parse(s.GetQuantity(), qs)
	if err != nil {
		return book.Command{}, nil, invalid(c, "quantity: "+err.Error())
	}
	//nolint:gosec // enumFits checked every enum fits in a uint8
	return book.Command{
		Kind: book.Submit, OrderID: s.GetOrderId(), Account: s.GetAccountId(),
		Side: book.Side(s.GetSide()), Type: book.OrderType(s.GetType()),
		TimeInForce: book.TimeInForce(s.GetTimeInForce()), PostOnly: s.GetPostOnly(),
		Price: price, Quantity: qty,
		SelfTradePrevention: book.SelfTradePrevention(s.GetSelfTradePrevention()),
	}, &[2]int32{ps, qs}, nil
}

// enumFits reports whether every value fits the book's uint8 enums.
func enumFits(vs ...int32) bool {
	for _, v := range vs {
		if v < 0 || v > 255 {
			return false
		}
	}
	return true
}

// invalid is the rejection of a command that cannot be executed.
func invalid(c *enginev1.OrderCommand, msg string) *enginev1.EngineEvent {
	if cl := c.GetCancel(); cl != nil {
		return cancelInvalid(cl, msg)
	}
	return rejected(c, commonv1.RejectReason_REJECT_REASON_INVALID_ORDER, msg)
}

// rejected is the rejection of a command that is not a cancel: it names a
// submit's order and account, a margin change's command id and account, a
// funding tick's command id.
func rejected(c *enginev1.OrderCommand, reason commonv1.RejectReason, msg string) *enginev1.EngineEvent {
	r := &enginev1.OrderRejected{OrderId: c.GetCommandId(), Reason: reason, Message: msg}
	switch {
	case c.GetSubmit() != nil:
		r.OrderId, r.AccountId = c.GetSubmit().GetOrderId(), c.GetSubmit().GetAccountId()
	case c.GetMargin() != nil:
		r.AccountId = c.GetMargin().GetAccountId()
	}
	return &enginev1.EngineEvent{Event: &enginev1.EngineEvent_Rejected{Rejected: r}}
}

// duplicate is the rejection of a submit whose command id was executed
// before (stored again after the stream's duplicate window): the first one
// stands, its funds and state untouched.
func duplicate(s *enginev1.SubmitOrder) *enginev1.EngineEvent {
	return &enginev1.EngineEvent{Event: &enginev1.EngineEvent_Rejected{Rejected: &enginev1.OrderRejected{
		OrderId: s.GetOrderId(), AccountId: s.GetAccountId(),
		Reason: commonv1.RejectReason_REJECT_REASON_DUPLICATE_ORDER, Message: "this submit was executed before (a command id is executed once)",
	}}}
}

// cancelInvalid is the rejection of a cancel that cannot be executed.
func cancelInvalid(cl *enginev1.CancelOrder, msg string) *enginev1.EngineEvent {
	return &enginev1.EngineEvent{Event: &enginev1.EngineEvent_CancelRejected{CancelRejected: &enginev1.CancelRejected{
		OrderId: cl.GetOrderId(), AccountId: cl.GetAccountId(),
		Reason: commonv1.RejectReason_REJECT_REASON_INVALID_ORDER, Message: msg,
	}}}
}

// orderFees are an order's fee rates (millionths) and what its trades owe
// so far: owed is the sum of their values times their rates (at the
// notional scale and 6 more digits), charged what the fees charged add up
// to (at the notional scale). Each trade charges the rounded-up total less
// what was charged before, so that an order's fees add up to its total
// rounded up once, never more than the fee the order service held for.
type orderFees struct {
	maker, taker  int64
	owed, charged big.Int
	// limit, when not nil, bounds what the order is charged in all: a
	// perpetual's order pays its fees from its hold, which holds them at
	// its own price (a sell filled higher pays no more).
	limit *big.Int
}

// limitTo bounds the order's fees to its value price x qty at the larger
// of its rates, rounded up: what the order service held for them.
func (f *orderFees) limitTo(price, qty int64) {
	n := new(big.Int).Mul(big.NewInt(price), big.NewInt(qty))
	n.Mul(n, big.NewInt(max(f.maker, f.taker)))
	limit, rest := n.QuoRem(n, big.NewInt(perp.RateUnit), new(big.Int))
	if rest.Sign() > 0 {
		limit.Add(limit, big.NewInt(1))
	}
	f.limit = limit
}

// charges reports whether the order has a fee rate.
func (f *orderFees) charges() bool { return f.maker != 0 || f.taker != 0 }

// charge adds a trade of price x qty at rate and returns its fee.
func (f *orderFees) charge(price, qty, rate int64) *big.Int {
	n := new(big.Int).Mul(big.NewInt(price), big.NewInt(qty))
	f.owed.Add(&f.owed, n.Mul(n, big.NewInt(rate)))
	total, rest := new(big.Int).QuoRem(&f.owed, big.NewInt(perp.RateUnit), new(big.Int))
	if rest.Sign() > 0 {
		total.Add(total, big.NewInt(1))
	}
	if f.limit != nil && total.Cmp(f.limit) > 0 {
		total.Set(f.limit)
	}
	fee := new(big.Int).Sub(total, &f.charged)
	f.charged.Set(total)
	return fee
}

// feesOf reads a submit's fee rates; a rate that is not a fraction with at
// most 6 digits from 0 to 1 rejects the command.
func feesOf(c *enginev1.OrderCommand) (*orderFees, *enginev1.EngineEvent) {
	s := c.GetSubmit()
	out := &orderFees{}
	for _, r := range []struct {
		name, text string
		dst        *int64
	}{{"maker_fee_rate", s.GetMakerFeeRate(), &out.maker}, {"taker_fee_rate", s.GetTakerFeeRate(), &out.taker}} {
		if r.text == "" {
			continue
		}
		v, err := decimal.ParseNonNegative(r.text, 6)
		if err != nil || v > perp.RateUnit {
			return &orderFees{}, invalid(c, fmt.Sprintf("%s %q: want a fraction from 0 to 1 with at most 6 digits", r.name, r.text))
		}
		*r.dst = v
	}
	return out, nil
}

// translate turns a book event into an EngineEvent without its ids; taker
// is the fee rates of the command's order.
func (st *instrument) translate(e *book.Event, taker *orderFees, takerPerp *perpOrder) *enginev1.EngineEvent {
	out := &enginev1.EngineEvent{}
	for _, ch := range e.BookChanges() {
		out.BookChanges = append(out.BookChanges, &enginev1.BookLevelChange{
			Side: commonv1.Side(ch.Side), Price: st.price(ch.Price), Quantity: st.qty(ch.Quantity),
		})
	}
	side := commonv1.Side(e.Side)
	switch e.Kind {
	case book.EventAccepted:
		out.Event = &enginev1.EngineEvent_Accepted{Accepted: &enginev1.OrderAccepted{
			OrderId: e.OrderID, AccountId: e.Account, Side: side, Type: commonv1.OrderType(e.Type),
			TimeInForce: commonv1.TimeInForce(e.TimeInForce), PostOnly: e.PostOnly,
			Price: st.limitPrice(e), Quantity: st.qty(e.Quantity),
		}}
	case book.EventRejected:
		out.Event = &enginev1.EngineEvent_Rejected{Rejected: &enginev1.OrderRejected{
			OrderId: e.OrderID, AccountId: e.Account,
			Reason: commonv1.RejectReason(e.RejectReason), Message: e.Message,
		}}
	case book.EventTrade:
		maker := st.fees[e.MakerOrderID]
		if maker == nil {
			maker = &orderFees{}
		}
		if e.MakerRemaining == 0 {
			delete(st.fees, e.MakerOrderID)
		}
		tr := &enginev1.Trade{
			Price: st.price(e.Price), Quantity: st.qty(e.Quantity), QuoteQuantity: st.quote(e.Price, e.Quantity),
			TakerOrderId: e.OrderID, TakerAccountId: e.Account, TakerSide: side,
			TakerRemainingQuantity: st.qty(e.Remaining),
			MakerOrderId:           e.MakerOrderID, MakerAccountId: e.MakerAccount,
			MakerSide: commonv1.Side(e.Side.Opposite()), MakerRemainingQuantity: st.qty(e.MakerRemaining),
			TakerFee: st.scaled128(taker.charge(e.Price, e.Quantity, taker.taker)),
			MakerFee: st.scaled128(maker.charge(e.Price, e.Quantity, maker.maker)),
		}
		st.positionsOfTrade(e, takerPerp, tr)
		out.Event = &enginev1.EngineEvent_Trade{Trade: tr}
	case book.EventCancelled:
		delete(st.fees, e.OrderID) // a resting order leaves the book
		delete(st.perpOrders, e.OrderID)
		out.Event = &enginev1.EngineEvent_Cancelled{Cancelled: &enginev1.OrderCancelled{
			OrderId: e.OrderID, AccountId: e.Account, Side: side, Price: st.limitPrice(e),
			RemainingQuantity: st.qty(e.Quantity), Reason: commonv1.CancelReason(e.CancelReason),
		}}
	case book.EventExpired:
		out.Event = &enginev1.EngineEvent_Expired{Expired: &enginev1.OrderExpired{
			OrderId: e.OrderID, AccountId: e.Account, RemainingQuantity: st.qty(e.Quantity),
			Reason: commonv1.ExpireReason(e.ExpireReason),
		}}
	case book.EventCancelRejected:
		out.Event = &enginev1.EngineEvent_CancelRejected{CancelRejected: &enginev1.CancelRejected{
			OrderId: e.OrderID, AccountId: e.Account,
			Reason: commonv1.RejectReason(e.RejectReason), Message: e.Message,
		}}
	}
	return out
}

// limitPrice is an order event's price: empty for a market order.
func (st *instrument) limitPrice(e *book.Event) string {
	if e.Type == book.Market {
		return ""
	}
	return st.price(e.Price)
}

func (st *instrument) price(v int64) string { return decimal.Format(v, st.priceScale) }

func (st *instrument) qty(v int64) string { return decimal.Format(v, st.quantityScale) }

// quote is price*qty at scale price_scale+quantity_scale, exact for any int64s.
func (st *instrument) quote(price, qty int64) string {
	return st.scaled128(new(big.Int).Mul(big.NewInt(price), big.NewInt(qty)))
}

// scaled128 writes p at scale price_scale+quantity_scale.
func (st *instrument) scaled128(p *big.Int) string {
	digits := p.String()
	scale := int(st.priceScale + st.quantityScale)
	if scale == 0 {
		return digits
	}
	neg := digits[0] == '-'
	if neg {
		digits = digits[1:]
	}
	for len(digits) <= scale {
		digits = "0" + digits
	}
	s := digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	if neg {
		s = "-" + s
	}
	return s
}
