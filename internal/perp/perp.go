// Package perp is the arithmetic of linear, quote-margined perpetual
// contracts with isolated margin: a position netted per account and
// instrument, the margin it holds, its realized and unrealized PnL, fees,
// funding, the mark price and liquidation. It does no I/O.
//
// Units. Quantities are integers at the instrument's quantity scale,
// prices at its price scale, and every amount (entry value, margin, PnL,
// fee, funding) at the sum of the two, the notional scale: price x
// quantity needs no rounding there. Rates (margin, fee, funding) are
// integers in millionths ([RateUnit]).
//
// Conservation. A position keeps its entry value V (the signed notional of
// the open part: price x quantity summed over the fills that opened it)
// rather than an average entry price, so that nothing is rounded away: a
// reduction releases V x closed / size rounded toward zero and the
// remainder stays in V. With cash taken as every balance plus every margin
// (and the fee and insurance accounts), one trade changes the cash of its
// two sides by exactly their realized PnL, and for every position
// size x mark - V is its unrealized PnL; since the sizes of all positions
// add up to zero, cash - (the sum of V over all positions) never changes
// with trades. When no position is open, cash is deposits minus
// withdrawals to the unit.
package perp

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// RateUnit is one whole in a rate: rates are integers in millionths, so
// 5000 is 0.5%.
const RateUnit = 1_000_000

// Errors returned by this package, told apart with errors.Is.
var (
	// ErrOverflow: an amount does not fit in an int64.
	ErrOverflow = errors.New("amount out of range")
	// ErrInvalid: an argument no contract or position can take (a zero
	// quantity, a negative price or margin, a leverage below 1).
	ErrInvalid = errors.New("invalid argument")
)

// Notional is price x quantity at the notional scale, signed like quantity.
func Notional(price, quantity int64) (int64, error) {
	if price < 0 {
		return 0, fmt.Errorf("%w: price %d", ErrInvalid, price)
	}
	return mulDiv(price, quantity, 1, awayFromZero)
}

// InitialMargin is what a notional needs at leverage: |notional| / leverage,
// rounded up.
func InitialMargin(notional, leverage int64) (int64, error) {
	if leverage < 1 {
		return 0, fmt.Errorf("%w: leverage %d", ErrInvalid, leverage)
	}
	return mulDiv(abs(notional), 1, leverage, awayFromZero)
}

// Fee is |notional| x rate (millionths), rounded up.
func Fee(notional, rate int64) (int64, error) {
	if rate < 0 {
		return 0, fmt.Errorf("%w: fee rate %d", ErrInvalid, rate)
	}
	return mulDiv(abs(notional), rate, RateUnit, awayFromZero)
}

// Share is the part of total that part of whole takes: total x part /
// whole, rounded down (a fill of part of an order's quantity takes that
// share of its margin); whole > 0.
func Share(total, part, whole int64) (int64, error) {
	if whole <= 0 {
		return 0, fmt.Errorf("%w: share of %d", ErrInvalid, whole)
	}
	return mulDiv(total, part, whole, towardZero)
}

// rounding says which way mulDiv rounds a quotient that is not exact.
type rounding int

const (
	towardZero rounding = iota
	awayFromZero
)

// mulDiv is a x b / d with a 128-bit intermediate, rounded as asked; d > 0.
func mulDiv(a, b, d int64, mode rounding) (int64, error) {
	neg := (a < 0) != (b < 0)
	hi, lo := bits.Mul64(uabs(a), uabs(b))
	ud := uint64(d) //nolint:gosec // d > 0 by every caller
	if hi >= ud {
		return 0, fmt.Errorf("%w: %d x %d / %d", ErrOverflow, a, b, d)
	}
	q, r := bits.Div64(hi, lo, ud)
	if r != 0 && mode == awayFromZero {
		q++
	}
	if q > math.MaxInt64 {
		return 0, fmt.Errorf("%w: %d x %d / %d", ErrOverflow, a, b, d)
	}
	if neg {
		return -int64(q), nil
	}
	return int64(q), nil
}

// uabs is |v|, which fits a uint64 even for math.MinInt64.
func uabs(v int64) uint64 {
	if v < 0 {
		return uint64(-(v + 1)) + 1 //nolint:gosec // -(v+1) >= 0
	}
	return uint64(v)
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int64) int64 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// add is a + b, or ErrOverflow.
func add(a, b int64) (int64, error) {
	s := a + b
	if (a > 0 && b > 0 && s < 0) || (a < 0 && b < 0 && s >= 0) {
		return 0, fmt.Errorf("%w: %d + %d", ErrOverflow, a, b)
	}
	return s, nil
}
