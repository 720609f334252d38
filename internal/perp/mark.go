package perp

// markSmoothing is how far one update moves the mark toward the market:
// a quarter of the way.
const markSmoothing = 4

// Mark is a mark price: the median of the best bid, the best ask and the
// last trade price, smoothed over updates. Each update moves the mark a
// quarter of the way to that median (rounded away from the mark, so it
// arrives): one print or one quote far from the others does not move the
// median, and one that does moves the mark a quarter of its distance, so
// that a short-lived push on one side of the book takes several updates to
// show in the mark while a market that has moved is followed within a few.
// The zero Mark has no price.
type Mark struct {
	price int64
}

// MarkAt is a mark at price (0: none yet), as a snapshot restores it.
func MarkAt(price int64) Mark { return Mark{price: max(price, 0)} }

// Price is the mark price; ok is false before the first update with a
// price.
func (m Mark) Price() (price int64, ok bool) { return m.price, m.price > 0 }

// Update folds the book's best bid, best ask and the last trade price (0
// for one that is missing) into the mark and returns it; see target for
// what it moves toward. With no price at all the mark stays.
func (m *Mark) Update(bid, ask, last int64) (price int64, ok bool) {
	target, ok := target(bid, ask, last)
	if !ok {
		return m.Price()
	}
	if m.price == 0 {
		m.price = target
		return m.price, true
	}
	diff := target - m.price
	step := diff / markSmoothing
	if diff%markSmoothing != 0 {
		step += sign(diff)
	}
	m.price += step
	return m.price, true
}

// target is what the mark moves toward: the median of the three prices when
// there are all three; the mid when the book has both sides but nothing
// traded yet; the last trade when one side of the book is empty (a lone
// order far away on the empty side moves nothing); a lone side's best price
// when there is nothing else. ok is false when every price is 0.
func target(bid, ask, last int64) (int64, bool) {
	switch {
	case bid > 0 && ask > 0 && last > 0:
		return max(min(bid, ask), min(max(bid, ask), last)), true
	case bid > 0 && ask > 0:
		return bid/2 + ask/2 + (bid%2+ask%2)/2, true
	case last > 0:
		return last, true
	case bid > 0:
		return bid, true
	case ask > 0:
		return ask, true
	}
	return 0, false
}
