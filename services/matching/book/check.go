package book

import (
	"fmt"
	"math"
)

// Check verifies the book's invariants and returns an error wrapping ErrCorrupt for the
// first one that does not hold:
//
//   - the book is not crossed at rest: the best bid is below the best ask;
//   - on each side levels are strictly ordered best first, at every height of the
//     skiplist, and none is empty;
//   - a level's total and order count equal the sum of its orders' remaining quantities
//     and their number, and each side's total is the sum of its levels;
//   - within a level, the queue is linked both ways, every order has the level's side
//     and price, 0 < remaining <= quantity, and arrival numbers ascend (FIFO);
//   - the id index holds exactly the queued orders.
//
// It walks the whole book; tests call it after every command.
func (b *Book) Check() error {
	queued := 0
	for _, l := range [...]*ladder{&b.bids, &b.asks} {
		n, err := b.checkLadder(l)
		if err != nil {
			return err
		}
		queued += n
	}
	if queued != len(b.index) {
		return fmt.Errorf("%w: %d orders queued, %d indexed", ErrCorrupt, queued, len(b.index))
	}
	if bid, ask := b.bids.best(), b.asks.best(); bid != nil && ask != nil && bid.price >= ask.price {
		return fmt.Errorf("%w: crossed at rest: bid %d >= ask %d", ErrCorrupt, bid.price, ask.price)
	}
	return nil
}

// checkLadder checks one side and returns how many orders it queues.
func (b *Book) checkLadder(l *ladder) (int, error) {
	if err := l.checkLinks(); err != nil {
		return 0, err
	}
	orders, levels := 0, 0
	var total int64
	for lv := l.best(); lv != nil; lv = lv.next[0] {
		if err := b.checkLevel(l, lv); err != nil {
			return 0, err
		}
		if total > math.MaxInt64-lv.total {
			return 0, fmt.Errorf("%w: %s total overflows", ErrCorrupt, l.side)
		}
		total += lv.total
		orders += lv.count
		levels++
	}
	if levels != l.levels {
		return 0, fmt.Errorf("%w: %s has %d levels, counted %d", ErrCorrupt, l.side, levels, l.levels)
	}
	if total != l.total {
		return 0, fmt.Errorf("%w: %s total %d, levels sum to %d", ErrCorrupt, l.side, l.total, total)
	}
	return orders, nil
}

// checkLinks checks that every height of the skiplist is strictly ordered by key, that
// it only holds levels tall enough for it, and that its keys match its prices.
func (l *ladder) checkLinks() error {
	if l.height < 1 || l.height > maxHeight {
		return fmt.Errorf("%w: %s height %d", ErrCorrupt, l.side, l.height)
	}
	for i := range maxHeight {
		if i >= l.height && l.head.next[i] != nil {
			return fmt.Errorf("%w: %s has levels above its height %d", ErrCorrupt, l.side, l.height)
		}
		prev := int64(math.MinInt64)
		for lv := l.head.next[i]; lv != nil; lv = lv.next[i] {
			if lv.height <= i || lv.key <= prev || lv.key != l.keyOf(lv.price) || lv.price <= 0 {
				return fmt.Errorf("%w: %s level %d out of order at height %d", ErrCorrupt, l.side, lv.price, i)
			}
			prev = lv.key
		}
	}
	return nil
}

// checkLevel checks one level's queue and totals against the index.
func (b *Book) checkLevel(l *ladder, lv *level) error {
	if lv.count == 0 || lv.head == nil || lv.head.prev != nil || lv.tail == nil || lv.tail.next != nil {
		return fmt.Errorf("%w: %s level %d: empty or unterminated queue", ErrCorrupt, l.side, lv.price)
	}
	var sum int64
	var prev *order
	count := 0
	for o := lv.head; o != nil; prev, o = o, o.next {
		if err := b.checkOrder(l, lv, prev, o); err != nil {
			return err
		}
		sum += o.remaining
		count++
	}
	if prev != lv.tail || count != lv.count || sum != lv.total {
		return fmt.Errorf("%w: %s level %d: total %d of %d orders, queue holds %d of %d",
			ErrCorrupt, l.side, lv.price, lv.total, lv.count, sum, count)
	}
	return nil
}

// checkOrder checks one queued order, prev being the one before it.
func (b *Book) checkOrder(l *ladder, lv *level, prev, o *order) error {
	switch {
	case o.prev != prev || o.lvl != lv:
		return fmt.Errorf("%w: order %q: broken links", ErrCorrupt, o.id)
	case o.side != l.side || o.price != lv.price:
		return fmt.Errorf("%w: order %q: %s %d queued at %s %d", ErrCorrupt, o.id, o.side, o.price, l.side, lv.price)
	case o.remaining <= 0 || o.remaining > o.quantity:
		return fmt.Errorf("%w: order %q: remaining %d of %d", ErrCorrupt, o.id, o.remaining, o.quantity)
	case prev != nil && prev.seq >= o.seq:
		return fmt.Errorf("%w: order %q: seq %d after %d breaks FIFO", ErrCorrupt, o.id, o.seq, prev.seq)
	case o.seq > b.seq:
		return fmt.Errorf("%w: order %q: seq %d beyond the book's %d", ErrCorrupt, o.id, o.seq, b.seq)
	case b.index[o.id] != o:
		return fmt.Errorf("%w: order %q: not indexed", ErrCorrupt, o.id)
	}
	return nil
}
