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

// Price is the mark price; ok is false before the first update with a
// price.
func (m Mark) Price() (price int64, ok bool) { return m.price, m.price > 0 }

// Update folds the book's best bid, best ask and the last trade price (0
// for one that is missing) into the mark and returns it. With three prices
// the median counts, with two their mean, with one that one; with none the
// mark stays.
func (m *Mark) Update(bid, ask, last int64) (price int64, ok bool) {
	target, ok := median(bid, ask, last)
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

// median is the median of the positive ones of a, b and c (the mean of
// two, rounded down), ok false when none is.
func median(a, b, c int64) (int64, bool) {
	var vs [3]int64
	n := 0
	for _, v := range [...]int64{a, b, c} {
		if v > 0 {
			vs[n] = v
			n++
		}
	}
	switch n {
	case 1:
		return vs[0], true
	case 2:
		return vs[0]/2 + vs[1]/2 + (vs[0]%2+vs[1]%2)/2, true
	case 3:
		x, y, z := vs[0], vs[1], vs[2]
		return max(min(x, y), min(max(x, y), z)), true
	}
	return 0, false
}
