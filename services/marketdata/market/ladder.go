package market

import (
	"cmp"
	"slices"
)

// ladder is one side of the L2 book: levels sorted best first (highest
// price first for bids, desc; lowest first for asks).
type ladder struct {
	desc   bool
	levels []Level
}

// find returns where price is, or would be inserted.
func (l *ladder) find(price int64) (int, bool) {
	return slices.BinarySearchFunc(l.levels, price, func(lv Level, p int64) int {
		if l.desc {
			return cmp.Compare(p, lv.Price)
		}
		return cmp.Compare(lv.Price, p)
	})
}

// set sets the level's total; 0 removes it.
func (l *ladder) set(price, qty int64) {
	i, ok := l.find(price)
	switch {
	case ok && qty == 0:
		l.levels = slices.Delete(l.levels, i, i+1)
	case ok:
		l.levels[i].Quantity = qty
	case qty > 0:
		l.levels = slices.Insert(l.levels, i, Level{Price: price, Quantity: qty})
	}
}

func (l *ladder) top(depth int) []Level {
	n := len(l.levels)
	if depth > 0 {
		n = min(n, depth)
	}
	return slices.Clone(l.levels[:n])
}

func (l *ladder) best() (Level, bool) {
	if len(l.levels) == 0 {
		return Level{}, false
	}
	return l.levels[0], true
}

// ring keeps the last n values pushed.
type ring[T any] struct {
	buf   []T
	start int
	n     int
}

func newRing[T any](n int) ring[T] { return ring[T]{buf: make([]T, n)} }

func (r *ring[T]) len() int { return r.n }

// at returns the i-th value, oldest first.
func (r *ring[T]) at(i int) T { return r.buf[(r.start+i)%len(r.buf)] }

// last returns the newest value for updating in place.
func (r *ring[T]) last() *T { return &r.buf[(r.start+r.n-1)%len(r.buf)] }

func (r *ring[T]) push(v T) {
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = v
		r.n++
		return
	}
	r.buf[r.start] = v
	r.start = (r.start + 1) % len(r.buf)
}
