package book

import (
	"math"
	"slices"
)

// refBook is a slow, obviously correct model of Book for the randomized and fuzz tests:
// resting orders in one slice in arrival order, every question answered by a scan, and
// fill-or-kill decided by matching on a copy and looking at the outcome. Only the
// command checks (validate, resolveTIF) are shared with Book.
type refBook struct {
	orders []RestingOrder // arrival order
	seq    uint64
}

func (r *refBook) apply(c Command) []Event {
	switch c.Kind {
	case Submit:
		return r.submit(c)
	case Cancel:
		return r.cancel(c)
	}
	return []Event{rejected(&c, resolveTIF(&c), RejectInvalidOrder, msgUnknownCommand)}
}

func (r *refBook) submit(c Command) []Event {
	tif := resolveTIF(&c)
	if msg := validate(&c, tif); msg != "" {
		return []Event{rejected(&c, tif, RejectInvalidOrder, msg)}
	}
	if r.find(c.OrderID) >= 0 {
		return []Event{rejected(&c, tif, RejectDuplicateOrder, msgDuplicate)}
	}
	if c.PostOnly && r.bestMaker(c) >= 0 {
		return []Event{rejected(&c, tif, RejectPostOnlyWouldTake, msgPostOnlyTake)}
	}
	if c.Type == Limit && tif == GTC && r.sideTotalOverflows(c.Side, c.Quantity) {
		return []Event{rejected(&c, tif, RejectInvalidOrder, msgSideOverflow)}
	}
	r.seq++
	events := []Event{orderEvent(&c, tif, EventAccepted, c.Quantity)}
	if tif == FOK {
		trial := refBook{orders: slices.Clone(r.orders), seq: r.seq}
		if _, rem, stopped := trial.match(c, tif); rem > 0 || stopped {
			e := orderEvent(&c, tif, EventExpired, c.Quantity)
			e.ExpireReason = ExpireFillOrKill
			return append(events, e)
		}
	}
	trades, rem, stopped := r.match(c, tif)
	events = append(events, trades...)
	switch {
	case rem == 0:
	case stopped:
		events = append(events, cancelled(&c, tif, rem, CancelSelfTrade))
	case c.Type == Market:
		events = append(events, cancelled(&c, tif, rem, CancelMarketNoLiquidity))
	case tif == IOC:
		events = append(events, cancelled(&c, tif, rem, CancelIOCRemainder))
	default:
		r.orders = append(r.orders, RestingOrder{
			ID: c.OrderID, Account: c.Account, Side: c.Side, PostOnly: c.PostOnly,
			Price: c.Price, Quantity: c.Quantity, Remaining: rem, Seq: r.seq,
		})
		events[len(events)-1].addChange(c.Side, c.Price, r.levelTotal(c.Side, c.Price))
	}
	return events
}

// match trades c against the book, returning the events, what is left and whether
// self-trade prevention stopped it.
func (r *refBook) match(c Command, tif TimeInForce) ([]Event, int64, bool) {
	var events []Event
	rem := c.Quantity
	for rem > 0 {
		i := r.bestMaker(c)
		if i < 0 {
			break
		}
		m := r.orders[i]
		if m.Account == c.Account {
			stp := c.SelfTradePrevention
			if stp == STPCancelMaker || stp == STPCancelBoth {
				events = append(events, r.remove(i, CancelSelfTrade))
			}
			if stp == STPCancelMaker {
				continue
			}
			return events, rem, true
		}
		q := min(rem, m.Remaining)
		rem -= q
		r.orders[i].Remaining -= q
		if r.orders[i].Remaining == 0 {
			r.orders = slices.Delete(r.orders, i, i+1)
		}
		e := Event{
			Kind: EventTrade, Side: c.Side, Type: c.Type, TimeInForce: tif,
			OrderID: c.OrderID, Account: c.Account, Price: m.Price, Quantity: q, Remaining: rem,
			MakerOrderID: m.ID, MakerAccount: m.Account, MakerRemaining: m.Remaining - q,
		}
		e.addChange(m.Side, m.Price, r.levelTotal(m.Side, m.Price))
		events = append(events, e)
	}
	return events, rem, false
}

// bestMaker returns the index of the resting order c would meet first, or -1: the best
// opposite price within c's limit, the oldest at that price.
func (r *refBook) bestMaker(c Command) int {
	best := -1
	for i, o := range r.orders {
		if o.Side == c.Side || !crosses(c, o.Price) {
			continue
		}
		if best < 0 || better(o.Side, o.Price, r.orders[best].Price) {
			best = i // arrival order: the first at a price is the oldest
		}
	}
	return best
}

// crosses reports whether incoming order c may trade at price.
func crosses(c Command, price int64) bool {
	switch {
	case c.Type == Market && c.Price == 0:
		return true
	case c.Side == Buy:
		return price <= c.Price
	}
	return price >= c.Price
}

// better reports whether price a is strictly better than b for resting side s.
func better(s Side, a, b int64) bool {
	if s == Buy {
		return a > b
	}
	return a < b
}

func (r *refBook) cancel(c Command) []Event {
	reason := c.CancelReason
	if reason == 0 {
		reason = CancelUserRequested
	}
	if reason != CancelUserRequested && reason != CancelAdmin {
		return []Event{cancelRejected(&c, RejectInvalidOrder, msgBadCancelReason)}
	}
	i := r.find(c.OrderID)
	if i < 0 || r.orders[i].Account != c.Account {
		return []Event{cancelRejected(&c, RejectOrderNotFound, msgNotFound)}
	}
	return []Event{r.remove(i, reason)}
}

// remove cancels the resting order i.
func (r *refBook) remove(i int, reason CancelReason) Event {
	o := r.orders[i]
	r.orders = slices.Delete(r.orders, i, i+1)
	e := Event{
		Kind: EventCancelled, Side: o.Side, Type: Limit, TimeInForce: GTC, PostOnly: o.PostOnly,
		CancelReason: reason, OrderID: o.ID, Account: o.Account, Price: o.Price, Quantity: o.Remaining,
	}
	e.addChange(o.Side, o.Price, r.levelTotal(o.Side, o.Price))
	return e
}

func (r *refBook) find(id string) int {
	return slices.IndexFunc(r.orders, func(o RestingOrder) bool { return o.ID == id })
}

func (r *refBook) levelTotal(s Side, price int64) int64 {
	var t int64
	for _, o := range r.orders {
		if o.Side == s && o.Price == price {
			t += o.Remaining
		}
	}
	return t
}

func (r *refBook) sideTotalOverflows(s Side, add int64) bool {
	t := add
	for _, o := range r.orders {
		if o.Side == s {
			if t > math.MaxInt64-o.Remaining {
				return true
			}
			t += o.Remaining
		}
	}
	return false
}

// depth returns all levels of side s, best first.
func (r *refBook) depth(s Side) []Level {
	var levels []Level
	for _, o := range r.orders {
		if o.Side != s {
			continue
		}
		i := slices.IndexFunc(levels, func(l Level) bool { return l.Price == o.Price })
		if i < 0 {
			levels = append(levels, Level{Price: o.Price})
			i = len(levels) - 1
		}
		levels[i].Quantity += o.Remaining
		levels[i].Orders++
	}
	slices.SortFunc(levels, func(a, b Level) int {
		if better(s, a.Price, b.Price) {
			return -1
		}
		return 1
	})
	return levels
}
