// Package decimal is TradeX's exact fixed-point arithmetic for prices,
// quantities and amounts.
//
// A value is an int64 count of 10^-scale units: with scale 2, 5000050 is
// 50000.50. The scale (the number of fractional digits) belongs to what is
// measured: an instrument's price_scale or quantity_scale, an asset's
// amount scale. It travels beside the value, never inside it, so the hot
// path does integer arithmetic only and never touches float64.
//
// Text forms:
//
//   - [Parse] reads the decimal strings of the contracts ("50000.5",
//     "0.001", "-1.5"): an optional '-', digits without superfluous leading
//     zeros, and optionally '.' and at least one digit. No '+', no exponent,
//     no spaces. More fractional digits than the scale is an error even when
//     they are zeros: a contract string has at most its scale's digits.
//   - [ParseNumber] reads a JSON number literal (the REST edge accepts
//     "quantity": 10.5): the same grammar plus an exponent ("1e2", "2.5E-3").
//     A JSON number is a value, not text, so it is accepted whenever its
//     value is exact at the scale ("10.50" at scale 1 is 10.5; "10.55" is
//     not).
//   - [Format] writes exactly scale fractional digits ("50000.50"), the
//     form the engine publishes; [FormatTrim] the shortest form ("50000.5"),
//     for values such as tick sizes that people read. [Parse] reads both
//     back to the same value.
//
// Arithmetic ([Mul], [Rescale] and their rounding variants) works on a
// 128-bit intermediate and reports overflow ([ErrRange]) and inexact
// results ([ErrPrecision]) instead of wrapping or truncating silently.
//
// Errors wrap one of the sentinels [ErrSyntax], [ErrPrecision], [ErrRange],
// [ErrNegative] or [ErrScale], with the input in the message; test them with
// errors.Is.
package decimal

import (
	"errors"
	"fmt"
	"strings"
)

// MaxScale is the largest scale: 10^18 is the largest power of ten that fits
// in an int64.
const MaxScale = 18

// Errors returned by this package, told apart with errors.Is.
var (
	// ErrSyntax: the text is not a decimal number (empty, garbage, an
	// exponent where none is allowed, a misplaced sign or point).
	ErrSyntax = errors.New("invalid decimal syntax")
	// ErrPrecision: the value has more fractional digits than the scale
	// (or an arithmetic result would have to be rounded).
	ErrPrecision = errors.New("more fractional digits than the scale")
	// ErrRange: the value does not fit in an int64 at the scale.
	ErrRange = errors.New("decimal out of range")
	// ErrNegative: a negative value where only zero or more is allowed.
	ErrNegative = errors.New("negative decimal")
	// ErrScale: the scale is outside 0..MaxScale.
	ErrScale = errors.New("invalid decimal scale")
)

// pow10 holds 10^0 .. 10^19; 10^19 still fits in a uint64.
var pow10 = [...]uint64{
	1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000,
	1_000_000_000, 10_000_000_000, 100_000_000_000, 1_000_000_000_000,
	10_000_000_000_000, 100_000_000_000_000, 1_000_000_000_000_000,
	10_000_000_000_000_000, 100_000_000_000_000_000, 1_000_000_000_000_000_000,
	10_000_000_000_000_000_000,
}

// checkScale returns an error wrapping ErrScale unless 0 <= scale <= MaxScale.
func checkScale(scale int32) error {
	if scale < 0 || scale > MaxScale {
		return fmt.Errorf("%w: %d (want 0 to %d)", ErrScale, scale, MaxScale)
	}
	return nil
}

// number is a syntactically valid literal split into its parts.
type number struct {
	neg      bool
	intPart  string // digits before the point, at least one
	fracPart string // digits after the point, possibly none
	exp      int64  // exponent, saturated to ±maxExp
	hasExp   bool
}

// maxExp bounds a parsed exponent; anything larger is out of range (or
// zero) for every scale anyway.
const maxExp = 1 << 20

// scan checks s against the JSON number grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and splits it.
func scan(s string) (number, bool) {
	var n number
	i := 0
	if i < len(s) && s[i] == '-' {
		n.neg = true
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	n.intPart = s[start:i]
	if n.intPart == "" || (len(n.intPart) > 1 && n.intPart[0] == '0') {
		return n, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		n.fracPart = s[start:i]
		if n.fracPart == "" {
			return n, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		n.hasExp = true
		expNeg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			expNeg = s[i] == '-'
			i++
		}
		start = i
		for i < len(s) && isDigit(s[i]) {
			if n.exp < maxExp {
				n.exp = n.exp*10 + int64(s[i]-'0')
			}
			i++
		}
		if i == start {
			return n, false
		}
		n.exp = min(n.exp, maxExp)
		if expNeg {
			n.exp = -n.exp
		}
	}
	return n, i == len(s)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// Parse reads a contract decimal string ("50000.5", "-1.5", "0.001") as a
// count of 10^-scale units. It fails with ErrSyntax on anything else
// (including exponents), with ErrPrecision when s has more fractional
// digits than scale, with ErrRange when the value does not fit in an int64
// and with ErrScale when scale is outside 0..MaxScale.
func Parse(s string, scale int32) (int64, error) {
	if err := checkScale(scale); err != nil {
		return 0, err
	}
	n, ok := scan(s)
	if !ok || n.hasExp {
		return 0, syntaxError(s)
	}
	if len(n.fracPart) > int(scale) {
		return 0, fmt.Errorf("decimal %q: %w (%d digits, scale %d)", s, ErrPrecision, len(n.fracPart), scale)
	}
	return n.value(s, scale)
}

// ParseNonNegative is Parse that also fails with ErrNegative when the value
// is below zero ("-0" is zero and accepted).
func ParseNonNegative(s string, scale int32) (int64, error) {
	v, err := Parse(s, scale)
	if err != nil {
		return 0, err
	}
	if v < 0 {
		return 0, fmt.Errorf("decimal %q: %w", s, ErrNegative)
	}
	return v, nil
}

// ParseNumber reads a JSON number literal, exponent allowed ("10.5", "1e2",
// "2.5E-3"), as a count of 10^-scale units. Pass the literal text (a
// json.Number), never a float64. It fails with ErrSyntax unless literal is a
// JSON number, with ErrPrecision unless its value is exact at scale
// (trailing zeros do not count), with ErrRange when it does not fit in an
// int64 and with ErrScale when scale is outside 0..MaxScale.
func ParseNumber(literal string, scale int32) (int64, error) {
	if err := checkScale(scale); err != nil {
		return 0, err
	}
	n, ok := scan(literal)
	if !ok {
		return 0, syntaxError(literal)
	}
	// Fold the exponent into the digits: value = digits * 10^shift at scale.
	digits := trimLeadingZeros(n.intPart + n.fracPart)
	shift := n.exp - int64(len(n.fracPart)) + int64(scale)
	if digits == "" {
		return 0, nil // zero, whatever its exponent
	}
	if shift < 0 {
		cut := -shift
		if cut > int64(len(digits)) {
			return 0, fmt.Errorf("decimal %q: %w (scale %d)", literal, ErrPrecision, scale)
		}
		tail := digits[int64(len(digits))-cut:]
		if trimLeadingZeros(tail) != "" {
			return 0, fmt.Errorf("decimal %q: %w (scale %d)", literal, ErrPrecision, scale)
		}
		digits = digits[:int64(len(digits))-cut]
		shift = 0
	}
	if int64(len(digits))+shift > 19 {
		return 0, rangeError(literal, scale)
	}
	mag, ok := accumulate(0, digits)
	if !ok {
		return 0, rangeError(literal, scale)
	}
	if mag, ok = mulPow10(mag, int(shift)); !ok {
		return 0, rangeError(literal, scale)
	}
	return signed(mag, n.neg, literal, scale)
}

// value turns a literal without exponent into units of 10^-scale.
func (n number) value(s string, scale int32) (int64, error) {
	mag, ok := accumulate(0, n.intPart)
	if ok {
		mag, ok = mulPow10(mag, int(scale))
	}
	if ok && n.fracPart != "" {
		var frac uint64
		frac, _ = accumulate(0, n.fracPart) // at most MaxScale digits: no overflow
		frac, _ = mulPow10(frac, int(scale)-len(n.fracPart))
		mag += frac
		ok = mag >= frac
	}
	if !ok {
		return 0, rangeError(s, scale)
	}
	return signed(mag, n.neg, s, scale)
}

// accumulate appends decimal digits to acc, reporting false on uint64
// overflow.
func accumulate(acc uint64, digits string) (uint64, bool) {
	for i := 0; i < len(digits); i++ {
		d := uint64(digits[i] - '0')
		if acc > (1<<64-1-d)/10 {
			return 0, false
		}
		acc = acc*10 + d
	}
	return acc, true
}

// mulPow10 multiplies v by 10^k (0 <= k), reporting false on overflow.
func mulPow10(v uint64, k int) (uint64, bool) {
	if v == 0 {
		return 0, true
	}
	if k >= len(pow10) {
		return 0, false
	}
	p := pow10[k]
	if v > (1<<64-1)/p {
		return 0, false
	}
	return v * p, true
}

// signed applies the sign to a magnitude, checking the int64 range.
func signed(mag uint64, neg bool, s string, scale int32) (int64, error) {
	v, err := toInt64(mag, neg)
	if err != nil {
		return 0, rangeError(s, scale)
	}
	return v, nil
}

// trimLeadingZeros drops leading '0' digits; "000" becomes "".
func trimLeadingZeros(s string) string {
	i := 0
	for i < len(s) && s[i] == '0' {
		i++
	}
	return s[i:]
}

func syntaxError(s string) error {
	const show = 40
	if len(s) > show {
		return fmt.Errorf("decimal %q...: %w", s[:show], ErrSyntax)
	}
	return fmt.Errorf("decimal %q: %w", s, ErrSyntax)
}

func rangeError(s string, scale int32) error {
	return fmt.Errorf("decimal %q: %w at scale %d", s, ErrRange, scale)
}

// Format writes v, a count of 10^-scale units, with exactly scale
// fractional digits: Format(5000050, 2) is "50000.50", Format(-5, 3) is
// "-0.005", Format(7, 0) is "7". It is exact for every scale: a negative
// scale appends zeros (Format(7, -2) is "700"), but the rest of the package
// only accepts 0..MaxScale.
func Format(v int64, scale int32) string {
	neg, mag := v < 0, abs(v)
	var buf [24]byte // 20 digits, sign: no allocation for the common case
	digits := appendUint(buf[:0], mag)
	sc := int(scale)
	out := make([]byte, 0, len(digits)+max(sc, -sc)+3)
	if neg {
		out = append(out, '-')
	}
	switch {
	case sc <= 0:
		out = append(out, digits...)
		if mag != 0 {
			for range -sc {
				out = append(out, '0')
			}
		}
	case len(digits) <= sc:
		out = append(out, '0', '.')
		for range sc - len(digits) {
			out = append(out, '0')
		}
		out = append(out, digits...)
	default:
		cut := len(digits) - sc
		out = append(out, digits[:cut]...)
		out = append(out, '.')
		out = append(out, digits[cut:]...)
	}
	return string(out)
}

// FormatTrim writes v like Format but without trailing fractional zeros,
// and without the point when none remain: FormatTrim(5000050, 2) is
// "50000.5", FormatTrim(500, 2) is "5". It is the shortest text that Parse
// reads back to v at scale, and equal values at one scale have equal texts.
func FormatTrim(v int64, scale int32) string {
	s := Format(v, scale)
	if scale <= 0 {
		return s
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// appendUint appends the decimal digits of v.
func appendUint(dst []byte, v uint64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(dst, tmp[i:]...)
}

// IsMultiple reports whether v is a whole multiple of step, both at the same
// scale: a price on the tick, a quantity on the lot. A step of zero or less
// is never satisfied.
func IsMultiple(v, step int64) bool {
	return step > 0 && v%step == 0
}
