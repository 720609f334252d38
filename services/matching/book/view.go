package book

// Level is one L2 price level as the read views report it.
type Level struct {
	// Price is the level's price in ticks.
	Price int64
	// Quantity is the total resting quantity at the level.
	Quantity int64
	// Orders is the number of resting orders at the level.
	Orders int
}

// RestingOrder is a resting order as Order and Snapshot report it.
type RestingOrder struct {
	// ID is the order's id.
	ID string
	// Account owns the order.
	Account string
	// Side is Buy (a bid) or Sell (an ask).
	Side Side
	// PostOnly is the order's post-only flag.
	PostOnly bool
	// Price is the limit price in ticks.
	Price int64
	// Quantity is the quantity the order was submitted with.
	Quantity int64
	// Remaining is what is left to fill (0 < Remaining <= Quantity).
	Remaining int64
	// Seq is the order's arrival number: within a level, orders fill in ascending Seq.
	Seq uint64
}

// Len returns the number of resting orders.
func (b *Book) Len() int { return len(b.index) }

// Levels returns the number of price levels on side s.
func (b *Book) Levels(s Side) int {
	if !s.valid() {
		return 0
	}
	return b.ladderOf(s).levels
}

// BestBid returns the highest bid level; ok is false when there are no bids.
func (b *Book) BestBid() (lvl Level, ok bool) { return b.bids.bestLevel() }

// BestAsk returns the lowest ask level; ok is false when there are no asks.
func (b *Book) BestAsk() (lvl Level, ok bool) { return b.asks.bestLevel() }

func (l *ladder) bestLevel() (Level, bool) {
	lv := l.best()
	if lv == nil {
		return Level{}, false
	}
	return lv.view(), true
}

func (lv *level) view() Level {
	return Level{Price: lv.price, Quantity: lv.total, Orders: lv.count}
}

// Depth appends up to n levels of side s to out, best first, and returns the extended
// slice; pass out[:0] to reuse a buffer.
func (b *Book) Depth(s Side, n int, out []Level) []Level {
	if !s.valid() {
		return out
	}
	for lv := b.ladderOf(s).best(); lv != nil && n > 0; lv = lv.next[0] {
		out = append(out, lv.view())
		n--
	}
	return out
}

// Order returns the resting order id; ok is false when no order with that id rests on
// the book (it never did, or it filled, was cancelled or expired).
func (b *Book) Order(id string) (o RestingOrder, ok bool) {
	n, ok := b.index[id]
	if !ok {
		return RestingOrder{}, false
	}
	return n.view(), true
}

func (o *order) view() RestingOrder {
	return RestingOrder{
		ID:        o.id,
		Account:   o.account,
		Side:      o.side,
		PostOnly:  o.postOnly,
		Price:     o.price,
		Quantity:  o.quantity,
		Remaining: o.remaining,
		Seq:       o.seq,
	}
}
