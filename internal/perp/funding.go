package perp

import "fmt"

// FundingRate is the rate of one funding interval, in millionths: the
// premium of the impact mid price (the mean of the impact bid and the
// impact ask) over the index, (mid - index) / index, rounded toward zero
// and clamped to [-clamp, clamp]. Above zero, longs pay shorts.
func FundingRate(impactBid, impactAsk, index, clamp int64) (int64, error) {
	if impactBid <= 0 || impactAsk <= 0 || index <= 0 || clamp < 0 {
		return 0, fmt.Errorf("%w: impact bid %d, impact ask %d, index %d, clamp %d", ErrInvalid, impactBid, impactAsk, index, clamp)
	}
	sum, err := add(impactBid, impactAsk)
	if err != nil {
		return 0, err
	}
	// (sum/2 - index) / index = (sum - 2 index) / (2 index)
	diff, err := add(sum, -2*index)
	if err != nil {
		return 0, err
	}
	rate, err := mulDiv(diff, RateUnit, 2*index, towardZero)
	if err != nil {
		return 0, err
	}
	return min(max(rate, -clamp), clamp), nil
}

// Funding is what the position pays for one interval at mark and rate
// (millionths): size x mark x rate. Above zero it pays (a long when the
// rate is positive, a short when it is negative), below zero it receives.
// A payment is rounded up and a receipt down, so that what the payers pay
// covers what the receivers get; the difference goes to the insurance
// fund.
func (p Position) Funding(mark, rate int64) (int64, error) {
	n, err := Notional(mark, p.Size)
	if err != nil {
		return 0, err
	}
	mode := towardZero // a receipt rounds down
	if sign(n) == sign(rate) {
		mode = awayFromZero // a payment up
	}
	return mulDiv(n, rate, RateUnit, mode)
}

// Level is a price level of one side of a book.
type Level struct {
	Price, Quantity int64
}

// ImpactPrice is the average price of taking notional (an amount) from
// levels, best first: the last level taken in part, by the quantity its
// price needs to reach notional rounded up. ok is false when the levels
// hold less than notional.
func ImpactPrice(levels []Level, notional int64) (price int64, ok bool, err error) {
	if notional <= 0 {
		return 0, false, fmt.Errorf("%w: impact notional %d", ErrInvalid, notional)
	}
	var quantity, taken int64
	for _, l := range levels {
		if l.Price <= 0 || l.Quantity <= 0 {
			return 0, false, fmt.Errorf("%w: level %d x %d", ErrInvalid, l.Price, l.Quantity)
		}
		need, err := mulDiv(notional-taken, 1, l.Price, awayFromZero)
		if err != nil {
			return 0, false, err
		}
		q := min(l.Quantity, need)
		n, err := Notional(l.Price, q)
		if err != nil {
			return 0, false, err
		}
		if taken, err = add(taken, n); err != nil {
			return 0, false, err
		}
		quantity += q
		if taken >= notional {
			price, err := mulDiv(taken, 1, quantity, towardZero)
			return price, err == nil, err
		}
	}
	return 0, false, nil
}
