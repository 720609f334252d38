package book

// The price levels of one side are a skiplist ordered by key, best first: key is the
// price for asks and -price for bids, so one ascending list serves both sides, and
// "crosses a limit" is key <= limitKey on either side.
//
// Why a skiplist: the book needs the best level in O(1) (head.next[0]), in-order walks
// from the best (matching, FOK checks, depth), and insert and remove by price in
// O(log n) whatever the shape of the book. A sorted slice would be simpler and could be
// as fast near the touch, but an order placed far from it (or a book with many sparse
// levels) costs a memmove of every level in between, which any client can provoke; a
// price-indexed array needs a bounded price range, which the book does not know. The
// skiplist is intrusive (the links live in the pooled level structs), so it allocates
// nothing once the pool is warm, and removing the best level, the common case while
// matching, is O(height) without a search. BenchmarkLadder compares it with a sorted
// slice near and far from the touch (BENCHMARKS.md).

// maxHeight bounds a level's height. With p = 1/4 a skiplist of 4^12 (16 million)
// levels keeps its expected O(log n) cost; larger books still work, a little slower.
const maxHeight = 12

// level is one price level: a FIFO queue of resting orders (an intrusive doubly linked
// list, oldest at head) and their total quantity.
type level struct {
	key    int64 // price for asks, -price for bids
	price  int64
	total  int64 // sum of the orders' remaining quantities
	count  int   // number of orders
	head   *order
	tail   *order
	height int
	next   [maxHeight]*level
}

// ladder is one side of the book.
type ladder struct {
	side   Side
	head   level // sentinel: head.next[i] is the first level of height > i
	height int   // the tallest level's height, at least 1
	levels int
	total  int64      // sum of the levels' totals
	pool   *levelPool // shared by both sides of a book
	rng    uint64     // xorshift state for level heights; does not affect events
}

func newLadder(side Side, pool *levelPool) ladder {
	return ladder{side: side, height: 1, pool: pool, rng: 0x9e3779b97f4a7c15 ^ uint64(side)}
}

// keyOf returns the ladder key of price.
func (l *ladder) keyOf(price int64) int64 {
	if l.side == Buy {
		return -price
	}
	return price
}

// best returns the best level, or nil when the side is empty.
func (l *ladder) best() *level { return l.head.next[0] }

// randomHeight returns 1 with probability 3/4, 2 with 3/16, and so on.
func (l *ladder) randomHeight() int {
	l.rng ^= l.rng << 13
	l.rng ^= l.rng >> 7
	l.rng ^= l.rng << 17
	h := 1
	for r := l.rng; h < maxHeight && r&3 == 0; r >>= 2 {
		h++
	}
	return h
}

// levelAt returns the level at price, inserting an empty one if there is none.
func (l *ladder) levelAt(price int64) *level {
	key := l.keyOf(price)
	var update [maxHeight]*level
	x := &l.head
	for i := l.height - 1; i >= 0; i-- {
		for x.next[i] != nil && x.next[i].key < key {
			x = x.next[i]
		}
		update[i] = x
	}
	if n := x.next[0]; n != nil && n.key == key {
		return n
	}
	lv := l.pool.get()
	lv.key, lv.price = key, price
	lv.height = l.randomHeight()
	for i := l.height; i < lv.height; i++ {
		update[i] = &l.head
	}
	if lv.height > l.height {
		l.height = lv.height
	}
	for i := range lv.height {
		lv.next[i] = update[i].next[i]
		update[i].next[i] = lv
	}
	l.levels++
	return lv
}

// remove unlinks the empty level lv and returns it to the pool.
func (l *ladder) remove(lv *level) {
	if l.head.next[0] == lv {
		// The best level: its predecessors are all the sentinel.
		for i := range lv.height {
			l.head.next[i] = lv.next[i]
		}
	} else {
		x := &l.head
		for i := l.height - 1; i >= 0; i-- {
			for x.next[i] != nil && x.next[i].key < lv.key {
				x = x.next[i]
			}
			if i < lv.height {
				x.next[i] = lv.next[i]
			}
		}
	}
	for l.height > 1 && l.head.next[l.height-1] == nil {
		l.height--
	}
	l.levels--
	l.pool.put(lv)
}

// levelChunk is how many levels the pool allocates at once when it runs dry.
const levelChunk = 64

// levelPool is a free list of levels, linked through next[0].
type levelPool struct {
	free *level
}

// get returns a cleared level.
func (p *levelPool) get() *level {
	if p.free == nil {
		p.grow(levelChunk)
	}
	lv := p.free
	p.free = lv.next[0]
	lv.next[0] = nil
	return lv
}

// put clears lv and returns it to the pool.
func (p *levelPool) put(lv *level) {
	*lv = level{}
	lv.next[0] = p.free
	p.free = lv
}

// grow adds n levels, allocated as one block.
func (p *levelPool) grow(n int) {
	block := make([]level, n)
	for i := range block {
		block[i].next[0] = p.free
		p.free = &block[i]
	}
}

// push appends o to the tail of lv's queue.
func (l *ladder) push(lv *level, o *order) {
	o.lvl = lv
	o.prev = lv.tail
	o.next = nil
	if lv.tail == nil {
		lv.head = o
	} else {
		lv.tail.next = o
	}
	lv.tail = o
	lv.count++
	lv.total += o.remaining
	l.total += o.remaining
}

// unlink removes o from its level's queue and removes the level if it is now empty. It
// returns the level's new total.
func (l *ladder) unlink(o *order) int64 {
	lv := o.lvl
	if o.prev == nil {
		lv.head = o.next
	} else {
		o.prev.next = o.next
	}
	if o.next == nil {
		lv.tail = o.prev
	} else {
		o.next.prev = o.prev
	}
	lv.count--
	lv.total -= o.remaining
	l.total -= o.remaining
	total := lv.total
	if lv.count == 0 {
		l.remove(lv)
	}
	o.prev, o.next, o.lvl = nil, nil, nil
	return total
}

// reduce takes q off o, which stays queued, and returns its level's new total.
func (l *ladder) reduce(o *order, q int64) int64 {
	o.remaining -= q
	o.lvl.total -= q
	l.total -= q
	return o.lvl.total
}
