package matching

import (
	"container/heap"
	"math"
	"slices"

	"github.com/tradex-mesh/tradex/internal/perp"
)

// liqIndex finds the positions a mark price may liquidate without looking
// at every position after every command: each open position (but the
// insurance fund's) has an entry with a bound on the mark, a little past
// its liquidation price, beyond which it cannot be liquidated; longs are
// kept highest bound first, shorts lowest first. A position's change pushes
// a new entry and leaves its old one stale (versions tell them apart); the
// heaps are rebuilt when stale entries outnumber live ones. It is derived
// state: rebuilt from the positions on restore and when the maintenance
// margin rate changes.
type liqIndex struct {
	longs, shorts boundHeap
	version       map[string]uint64
}

// liqEntry is one position's bound at one version.
type liqEntry struct {
	account string
	bound   int64
	version uint64
}

// boundHeap is a heap of entries; less orders its top.
type boundHeap struct {
	entries []liqEntry
	less    func(a, b int64) bool
}

// Len, Less, Swap, Push and Pop make boundHeap a heap.Interface.
func (h *boundHeap) Len() int           { return len(h.entries) }
func (h *boundHeap) Less(i, j int) bool { return h.less(h.entries[i].bound, h.entries[j].bound) }
func (h *boundHeap) Swap(i, j int)      { h.entries[i], h.entries[j] = h.entries[j], h.entries[i] }

// Push adds an entry (heap.Push calls it).
func (h *boundHeap) Push(x any) { h.entries = append(h.entries, x.(liqEntry)) }

// Pop removes the last entry (heap.Pop calls it).
func (h *boundHeap) Pop() any {
	last := h.entries[len(h.entries)-1]
	h.entries = h.entries[:len(h.entries)-1]
	return last
}

func newLiqIndex() *liqIndex {
	return &liqIndex{
		longs:   boundHeap{less: func(a, b int64) bool { return a > b }},
		shorts:  boundHeap{less: func(a, b int64) bool { return a < b }},
		version: map[string]uint64{},
	}
}

// update records acct's position after a change, at maintenance margin
// rate mmr.
func (x *liqIndex) update(acct string, pos perp.Position, mmr int64) {
	x.version[acct]++
	if pos.Size == 0 || acct == InsuranceAccount {
		delete(x.version, acct) // no live entry: any left is stale
		return
	}
	e := liqEntry{account: acct, version: x.version[acct]}
	price, ok, err := pos.LiquidationPrice(mmr)
	switch {
	case err != nil: // out of range: always looked at (the exact check decides)
		e.bound = math.MaxInt64
		if pos.Size < 0 {
			e.bound = math.MinInt64
		}
	case !ok: // a long whose margin covers its value: no mark liquidates it
		return
	default:
		// Past the liquidation price by slack, equity covers the
		// maintenance margin with its rounding: (p - L) x |size| x
		// (1 - rate) >= 2 units.
		size := max(pos.Size, -pos.Size)
		slack := int64(2)
		if size <= math.MaxInt64/perp.RateUnit {
			slack += 2 * perp.RateUnit / (size * (perp.RateUnit - mmr))
		}
		e.bound = satAdd(price, slack)
		if pos.Size < 0 {
			e.bound = satAdd(price, -slack)
		}
	}
	if pos.Size > 0 {
		heap.Push(&x.longs, e)
	} else {
		heap.Push(&x.shorts, e)
	}
}

// satAdd is a + b, held within int64.
func satAdd(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}

// candidates removes and returns, sorted and without repeats, the accounts
// whose live entry the mark reaches: longs with a bound at or above it,
// shorts at or below. A candidate the caller does not liquidate must be
// updated again to stay indexed.
func (x *liqIndex) candidates(mark int64) []string {
	var out []string
	pop := func(h *boundHeap, reaches func(bound int64) bool) {
		for h.Len() > 0 {
			top := h.entries[0]
			live := x.version[top.account] == top.version
			if live && !reaches(top.bound) {
				return
			}
			heap.Pop(h)
			if live {
				out = append(out, top.account)
			}
		}
	}
	pop(&x.longs, func(b int64) bool { return mark <= b })
	pop(&x.shorts, func(b int64) bool { return mark >= b })
	slices.Sort(out)
	return slices.Compact(out)
}

// rebuild indexes positions afresh at mmr, dropping stale entries.
func (x *liqIndex) rebuild(positions map[string]perp.Position, mmr int64) {
	fresh := newLiqIndex()
	for _, acct := range sortedAccounts(positions) {
		fresh.update(acct, positions[acct], mmr)
	}
	*x = *fresh
}

// stale reports whether the heaps hold many more entries than positions.
func (x *liqIndex) stale() bool {
	return x.longs.Len()+x.shorts.Len() > 2*len(x.version)+64
}

func sortedAccounts(positions map[string]perp.Position) []string {
	out := make([]string, 0, len(positions))
	for acct := range positions {
		out = append(out, acct)
	}
	slices.Sort(out)
	return out
}
