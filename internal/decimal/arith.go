package decimal

import (
	"fmt"
	"math/bits"
)

// Rounding says what to do with a result that has more digits than its
// output scale.
type Rounding int

const (
	// RoundExact refuses to round: an inexact result is an error wrapping
	// ErrPrecision. It is the mode of Mul and Rescale.
	RoundExact Rounding = iota
	// RoundDown rounds toward zero (truncates).
	RoundDown
	// RoundUp rounds away from zero.
	RoundUp
	// RoundFloor rounds toward negative infinity.
	RoundFloor
	// RoundCeiling rounds toward positive infinity.
	RoundCeiling
	// RoundHalfUp rounds to the nearest, ties away from zero.
	RoundHalfUp
	// RoundHalfEven rounds to the nearest, ties to the even neighbour
	// (banker's rounding).
	RoundHalfEven
)

// String names the mode.
func (r Rounding) String() string {
	switch r {
	case RoundExact:
		return "exact"
	case RoundDown:
		return "down"
	case RoundUp:
		return "up"
	case RoundFloor:
		return "floor"
	case RoundCeiling:
		return "ceiling"
	case RoundHalfUp:
		return "half-up"
	case RoundHalfEven:
		return "half-even"
	default:
		return fmt.Sprintf("Rounding(%d)", int(r))
	}
}

// Mul returns a*b at outScale, where a is at aScale and b at bScale: the
// notional of a price and a quantity is Mul(price, priceScale, qty,
// qtyScale, notionalScale). The product is computed exactly in 128 bits; it
// fails with ErrRange when the result does not fit in an int64 and with
// ErrPrecision when it is not exact at outScale (use MulRound to round).
func Mul(a int64, aScale int32, b int64, bScale int32, outScale int32) (int64, error) {
	return MulRound(a, aScale, b, bScale, outScale, RoundExact)
}

// MulRound is Mul with a rounding mode for results that have more digits
// than outScale.
func MulRound(a int64, aScale int32, b int64, bScale int32, outScale int32, mode Rounding) (int64, error) {
	for _, s := range [...]int32{aScale, bScale, outScale} {
		if err := checkScale(s); err != nil {
			return 0, err
		}
	}
	hi, lo := bits.Mul64(abs(a), abs(b))
	neg := (a < 0) != (b < 0)
	v, err := scale128(hi, lo, neg, int(outScale)-int(aScale)-int(bScale), mode)
	if err != nil {
		return 0, fmt.Errorf("%s * %s at scale %d: %w", Format(a, aScale), Format(b, bScale), outScale, err)
	}
	return v, nil
}

// Rescale converts v from scale from to scale to: Rescale(5, 1, 3) is 500
// (0.5 = 0.500). Going to a smaller scale fails with ErrPrecision unless no
// digit is lost (use RescaleRound to round); a result too large for an int64
// fails with ErrRange.
func Rescale(v int64, from, to int32) (int64, error) {
	return RescaleRound(v, from, to, RoundExact)
}

// RescaleRound is Rescale with a rounding mode for digits that do not fit
// the new scale.
func RescaleRound(v int64, from, to int32, mode Rounding) (int64, error) {
	if err := checkScale(from); err != nil {
		return 0, err
	}
	if err := checkScale(to); err != nil {
		return 0, err
	}
	r, err := scale128(0, abs(v), v < 0, int(to)-int(from), mode)
	if err != nil {
		return 0, fmt.Errorf("rescale %s to scale %d: %w", Format(v, from), to, err)
	}
	return r, nil
}

// abs is |v| as a uint64; right for math.MinInt64 too.
func abs(v int64) uint64 {
	u := uint64(v) //nolint:gosec // G115: two's complement reinterpretation is the point
	if v < 0 {
		return -u
	}
	return u
}

// remainder classifies what a division dropped, relative to half a unit of
// the result: enough to round in any mode.
type remainder int

const (
	remZero  remainder = iota // nothing dropped: exact
	remBelow                  // more than zero, less than half
	remHalf                   // exactly half
	remAbove                  // more than half
)

// scale128 multiplies the magnitude hi:lo by 10^shift (shift may be
// negative: a division), rounds it according to mode and returns it signed.
func scale128(hi, lo uint64, neg bool, shift int, mode Rounding) (int64, error) {
	if shift >= 0 {
		if hi != 0 || shift >= len(pow10) {
			if hi == 0 && lo == 0 {
				return 0, nil
			}
			return 0, ErrRange
		}
		h, l := bits.Mul64(lo, pow10[shift])
		if h != 0 {
			return 0, ErrRange
		}
		return toInt64(l, neg)
	}
	rem := remZero
	for k := -shift; k > 0; {
		step := min(k, len(pow10)-1)
		k -= step
		var r uint64
		hi, lo, r = div128(hi, lo, pow10[step])
		rem = classify(r, pow10[step], rem)
	}
	if hi != 0 {
		return 0, ErrRange
	}
	lo, err := round(lo, neg, rem, mode)
	if err != nil {
		return 0, err
	}
	return toInt64(lo, neg)
}

// div128 divides hi:lo by d, returning the quotient and the remainder.
func div128(hi, lo, d uint64) (qhi, qlo, r uint64) {
	qhi, r = hi/d, hi%d
	qlo, r = bits.Div64(r, lo, d)
	return qhi, qlo, r
}

// classify combines the remainder r of a division by d (a power of ten of
// at least 10) with the class of what earlier, finer divisions dropped.
func classify(r, d uint64, finer remainder) remainder {
	half := d / 2
	switch {
	case r == 0 && finer == remZero:
		return remZero
	case r < half:
		return remBelow
	case r == half && finer == remZero:
		return remHalf
	default:
		return remAbove
	}
}

// round applies mode to the truncated magnitude q of a value whose sign is
// neg and whose dropped part is rem.
func round(q uint64, neg bool, rem remainder, mode Rounding) (uint64, error) {
	if rem == remZero {
		return q, nil
	}
	var up bool
	switch mode {
	case RoundExact:
		return 0, ErrPrecision
	case RoundDown:
		up = false
	case RoundUp:
		up = true
	case RoundFloor:
		up = neg
	case RoundCeiling:
		up = !neg
	case RoundHalfUp:
		up = rem >= remHalf
	case RoundHalfEven:
		up = rem == remAbove || (rem == remHalf && q%2 == 1)
	default:
		return 0, fmt.Errorf("%w: unknown rounding mode %d", ErrPrecision, int(mode))
	}
	if !up {
		return q, nil
	}
	if q == 1<<64-1 {
		return 0, ErrRange
	}
	return q + 1, nil
}

// toInt64 applies the sign to a magnitude, checking the int64 range.
func toInt64(mag uint64, neg bool) (int64, error) {
	const limit = uint64(1) << 63
	switch {
	case neg && mag <= limit:
		return int64(-mag), nil //nolint:gosec // G115: mag <= 2^63, so -mag is the intended two's complement
	case !neg && mag < limit:
		return int64(mag), nil //nolint:gosec // G115: mag < 2^63 was just checked
	default:
		return 0, ErrRange
	}
}
