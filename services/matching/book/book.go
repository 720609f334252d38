package book

import "math"

// Book is the order book of one instrument. It is not safe for concurrent use: the
// matching engine is its single writer, and reads (BestBid, Depth, Order, Snapshot,
// Check) happen between commands on the same goroutine. A Book must not be copied; use
// Snapshot and Restore.
type Book struct {
	bids   ladder
	asks   ladder
	index  map[string]*order // resting orders by id
	orders orderPool
	levels levelPool
	seq    uint64 // arrival number of the last accepted order
}

// Option configures a Book.
type Option func(*config)

type config struct {
	orders int
	levels int
}

// WithCapacity sizes the book for at least n resting orders up front: the id index and
// the order nodes.
func WithCapacity(n int) Option {
	return func(c *config) { c.orders = max(c.orders, n) }
}

// WithLevelCapacity allocates at least n price levels (for both sides together) up
// front.
func WithLevelCapacity(n int) Option {
	return func(c *config) { c.levels = max(c.levels, n) }
}

// New returns an empty book.
//
// A book allocates only when it holds more resting orders, or more price levels, than
// it held (or was sized for with WithCapacity and WithLevelCapacity) before: order nodes
// and levels that leave the book are reused, and the id index keeps its size. So once a
// book has seen its peak, or was sized for it, Apply allocates nothing.
func New(opts ...Option) *Book {
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	b := &Book{index: make(map[string]*order, c.orders)}
	b.bids, b.asks = newLadder(Buy, &b.levels), newLadder(Sell, &b.levels)
	if c.orders > 0 {
		b.orders.grow(c.orders)
	}
	if c.levels > 0 {
		b.levels.grow(c.levels)
	}
	return b
}

// Apply executes cmd and appends its events to out, returning the extended slice: pass
// out[:0] to reuse a buffer, so that a warm book allocates nothing per command. Events
// of several commands may be collected in one slice; each command's events are
// contiguous and in the order described on Event. Apply never fails: a command the book
// cannot execute yields an EventRejected or EventCancelRejected.
func (b *Book) Apply(cmd Command, out []Event) []Event {
	switch cmd.Kind {
	case Submit:
		return b.submit(&cmd, out)
	case Cancel:
		return b.cancel(&cmd, out)
	}
	return append(out, rejected(&cmd, resolveTIF(&cmd), RejectInvalidOrder, msgUnknownCommand))
}

// Messages of rejections; static so that rejecting allocates nothing.
const (
	msgUnknownCommand  = "unknown command kind"
	msgNoOrderID       = "order id is empty"
	msgNoAccount       = "account is empty"
	msgBadSide         = "side must be buy or sell"
	msgBadType         = "type must be limit or market"
	msgBadTimeInForce  = "time in force must be gtc, ioc or fok"
	msgBadQuantity     = "quantity must be positive"
	msgBadLimitPrice   = "limit price must be positive"
	msgBadMarketPrice  = "market protection price must not be negative"
	msgPostOnlyMarket  = "a market order cannot be post-only"
	msgPostOnlyTIF     = "a post-only order must be good till cancelled"
	msgBadSTP          = "unknown self-trade prevention mode"
	msgSideOverflow    = "resting quantity on this side would overflow"
	msgDuplicate       = "an order with this id is on the book"
	msgPostOnlyTake    = "post-only order would trade on arrival"
	msgNotFound        = "order is not on the book for this account"
	msgBadCancelReason = "cancel reason must be user or admin"
)

// submit executes a Submit command.
func (b *Book) submit(c *Command, out []Event) []Event {
	tif := resolveTIF(c)
	if msg := validate(c, tif); msg != "" {
		return append(out, rejected(c, tif, RejectInvalidOrder, msg))
	}
	if _, dup := b.index[c.OrderID]; dup {
		return append(out, rejected(c, tif, RejectDuplicateOrder, msgDuplicate))
	}
	own, opp := b.sides(c.Side)
	limitKey := opp.keyOf(c.Price)
	if c.Type == Market && c.Price == 0 {
		limitKey = math.MaxInt64
	}
	if c.PostOnly {
		if best := opp.best(); best != nil && best.key <= limitKey {
			return append(out, rejected(c, tif, RejectPostOnlyWouldTake, msgPostOnlyTake))
		}
	}
	rests := c.Type == Limit && tif == GTC
	if rests && own.total > math.MaxInt64-c.Quantity {
		return append(out, rejected(c, tif, RejectInvalidOrder, msgSideOverflow))
	}
	b.seq++
	out = append(out, orderEvent(c, tif, EventAccepted, c.Quantity))
	if tif == FOK && !fillable(opp, c, limitKey) {
		e := orderEvent(c, tif, EventExpired, c.Quantity)
		e.ExpireReason = ExpireFillOrKill
		return append(out, e)
	}
	out, rem, stp := b.match(c, tif, opp, limitKey, out)
	switch {
	case rem == 0:
		return out
	case stp:
		return append(out, cancelled(c, tif, rem, CancelSelfTrade))
	case c.Type == Market:
		return append(out, cancelled(c, tif, rem, CancelMarketNoLiquidity))
	case tif == IOC:
		return append(out, cancelled(c, tif, rem, CancelIOCRemainder))
	case tif == FOK:
		// Unreachable: fillable said the whole quantity would trade.
		e := orderEvent(c, tif, EventExpired, rem)
		e.ExpireReason = ExpireFillOrKill
		return append(out, e)
	}
	total := b.rest(c, own, rem)
	out[len(out)-1].addChange(c.Side, c.Price, total)
	return out
}

// resolveTIF returns c's time in force with zero resolved.
func resolveTIF(c *Command) TimeInForce {
	switch {
	case c.TimeInForce != 0:
		return c.TimeInForce
	case c.Type == Market:
		return IOC
	}
	return GTC
}

// validate returns why c cannot be submitted, or "".
func validate(c *Command, tif TimeInForce) string {
	switch {
	case c.OrderID == "":
		return msgNoOrderID
	case c.Account == "":
		return msgNoAccount
	case !c.Side.valid():
		return msgBadSide
	case c.Type != Limit && c.Type != Market:
		return msgBadType
	case tif > FOK:
		return msgBadTimeInForce
	case c.Quantity <= 0:
		return msgBadQuantity
	case c.Type == Limit && c.Price <= 0:
		return msgBadLimitPrice
	case c.Type == Market && c.Price < 0:
		return msgBadMarketPrice
	case c.PostOnly && c.Type == Market:
		return msgPostOnlyMarket
	case c.PostOnly && tif != GTC:
		return msgPostOnlyTIF
	case c.SelfTradePrevention > STPCancelBoth:
		return msgBadSTP
	}
	return ""
}

// sides returns the ladder an order of side s rests on and the one it trades against.
func (b *Book) sides(s Side) (own, opp *ladder) {
	if s == Buy {
		return &b.bids, &b.asks
	}
	return &b.asks, &b.bids
}

// ladderOf returns the ladder of side s.
func (b *Book) ladderOf(s Side) *ladder {
	if s == Buy {
		return &b.bids
	}
	return &b.asks
}

// fillable reports whether an order c limited to limitKey would fill completely against
// opp now, under its self-trade prevention rule. It changes nothing.
func fillable(opp *ladder, c *Command, limitKey int64) bool {
	need := c.Quantity
	for lv := opp.best(); lv != nil && lv.key <= limitKey; lv = lv.next[0] {
		for m := lv.head; m != nil; m = m.next {
			if m.account == c.Account {
				if c.SelfTradePrevention == STPCancelMaker {
					continue // it would be cancelled, not traded
				}
				return false // matching stops here
			}
			if m.remaining >= need {
				return true
			}
			need -= m.remaining
		}
	}
	return false
}

// match trades c against opp up to limitKey, appending trades (and, under
// STPCancelMaker and STPCancelBoth, maker cancels) to out. It returns what is left of c
// and whether self-trade prevention stopped it (the caller cancels the rest).
func (b *Book) match(c *Command, tif TimeInForce, opp *ladder, limitKey int64, out []Event) ([]Event, int64, bool) {
	rem := c.Quantity
	for rem > 0 {
		lv := opp.best()
		if lv == nil || lv.key > limitKey {
			break
		}
		m := lv.head
		if m.account == c.Account {
			switch c.SelfTradePrevention {
			case STPCancelMaker:
				out = b.cancelResting(m, CancelSelfTrade, out)
				continue
			case STPCancelBoth:
				out = b.cancelResting(m, CancelSelfTrade, out)
			}
			return out, rem, true
		}
		q := min(rem, m.remaining)
		rem -= q
		e := Event{
			Kind:           EventTrade,
			Side:           c.Side,
			Type:           c.Type,
			TimeInForce:    tif,
			OrderID:        c.OrderID,
			Account:        c.Account,
			Price:          lv.price,
			Quantity:       q,
			Remaining:      rem,
			MakerOrderID:   m.id,
			MakerAccount:   m.account,
			MakerRemaining: m.remaining - q,
			NumChanges:     1,
		}
		var total int64
		if q == m.remaining {
			total = opp.unlink(m)
			b.drop(m)
		} else {
			total = opp.reduce(m, q)
		}
		e.Changes[0] = LevelChange{Side: opp.side, Price: e.Price, Quantity: total}
		out = append(out, e)
	}
	return out, rem, false
}

// rest puts the remainder rem of c on its side and returns its level's new total.
func (b *Book) rest(c *Command, own *ladder, rem int64) int64 {
	o := b.orders.get()
	o.id, o.account = c.OrderID, c.Account
	o.price, o.quantity, o.remaining = c.Price, c.Quantity, rem
	o.seq, o.side, o.postOnly = b.seq, c.Side, c.PostOnly
	lv := own.levelAt(c.Price)
	own.push(lv, o)
	b.index[o.id] = o
	return lv.total
}

// drop forgets o, which has left its level, and returns its node to the pool.
func (b *Book) drop(o *order) {
	delete(b.index, o.id)
	b.orders.put(o)
}

// cancel executes a Cancel command.
func (b *Book) cancel(c *Command, out []Event) []Event {
	reason := c.CancelReason
	if reason == 0 {
		reason = CancelUserRequested
	}
	if reason != CancelUserRequested && reason != CancelAdmin {
		return append(out, cancelRejected(c, RejectInvalidOrder, msgBadCancelReason))
	}
	o, ok := b.index[c.OrderID]
	if !ok || o.account != c.Account {
		return append(out, cancelRejected(c, RejectOrderNotFound, msgNotFound))
	}
	return b.cancelResting(o, reason, out)
}

// cancelResting removes the resting order o and appends its Cancelled event.
func (b *Book) cancelResting(o *order, reason CancelReason, out []Event) []Event {
	e := Event{
		Kind:         EventCancelled,
		Side:         o.side,
		Type:         Limit,
		TimeInForce:  GTC,
		PostOnly:     o.postOnly,
		CancelReason: reason,
		OrderID:      o.id,
		Account:      o.account,
		Price:        o.price,
		Quantity:     o.remaining,
	}
	e.addChange(o.side, o.price, b.ladderOf(o.side).unlink(o))
	b.drop(o)
	return append(out, e)
}

// orderEvent returns an event of kind about the incoming order c.
func orderEvent(c *Command, tif TimeInForce, kind EventKind, qty int64) Event {
	return Event{
		Kind:        kind,
		Side:        c.Side,
		Type:        c.Type,
		TimeInForce: tif,
		PostOnly:    c.PostOnly,
		OrderID:     c.OrderID,
		Account:     c.Account,
		Price:       c.Price,
		Quantity:    qty,
	}
}

// rejected returns the Rejected event of c.
func rejected(c *Command, tif TimeInForce, reason RejectReason, msg string) Event {
	e := orderEvent(c, tif, EventRejected, c.Quantity)
	e.RejectReason, e.Message = reason, msg
	return e
}

// cancelled returns the Cancelled event of the remainder rem of the incoming order c.
func cancelled(c *Command, tif TimeInForce, rem int64, reason CancelReason) Event {
	e := orderEvent(c, tif, EventCancelled, rem)
	e.CancelReason = reason
	return e
}

// cancelRejected returns the CancelRejected event of the cancel command c.
func cancelRejected(c *Command, reason RejectReason, msg string) Event {
	return Event{
		Kind:         EventCancelRejected,
		OrderID:      c.OrderID,
		Account:      c.Account,
		RejectReason: reason,
		Message:      msg,
	}
}
