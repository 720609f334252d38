package decimal_test

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/tradex-mesh/tradex/internal/decimal"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		scale int32
		want  int64
		err   error
	}{
		{"50000", 2, 5000000, nil},
		{"50000.5", 2, 5000050, nil},
		{"50000.50", 2, 5000050, nil},
		{"0.001", 3, 1, nil},
		{"0.001", 8, 100000, nil},
		{"-1.5", 1, -15, nil},
		{"-0", 2, 0, nil},
		{"0", 0, 0, nil},
		{"7", 0, 7, nil},
		{"9223372036854775807", 0, math.MaxInt64, nil},
		{"-9223372036854775808", 0, math.MinInt64, nil},
		{"9.223372036854775807", 18, math.MaxInt64, nil},
		{"-9.223372036854775808", 18, math.MinInt64, nil},
		{"0.000000000000000001", 18, 1, nil},

		{"0.001", 2, 0, decimal.ErrPrecision},
		{"1.500", 2, 0, decimal.ErrPrecision}, // contract strings carry at most scale digits
		{"1.5", 0, 0, decimal.ErrPrecision},

		{"9223372036854775808", 0, 0, decimal.ErrRange},
		{"-9223372036854775809", 0, 0, decimal.ErrRange},
		{"92233720368547758.08", 2, 0, decimal.ErrRange},
		{"10", 18, 0, decimal.ErrRange},
		{"99999999999999999999999999", 0, 0, decimal.ErrRange},

		{"", 2, 0, decimal.ErrSyntax},
		{"-", 2, 0, decimal.ErrSyntax},
		{"+1", 2, 0, decimal.ErrSyntax},
		{".5", 2, 0, decimal.ErrSyntax},
		{"5.", 2, 0, decimal.ErrSyntax},
		{"05", 2, 0, decimal.ErrSyntax},
		{"1e2", 2, 0, decimal.ErrSyntax},
		{"1E2", 2, 0, decimal.ErrSyntax},
		{" 1", 2, 0, decimal.ErrSyntax},
		{"1 ", 2, 0, decimal.ErrSyntax},
		{"1,5", 2, 0, decimal.ErrSyntax},
		{"1_000", 2, 0, decimal.ErrSyntax},
		{"abc", 2, 0, decimal.ErrSyntax},
		{"1.2.3", 2, 0, decimal.ErrSyntax},
		{"--1", 2, 0, decimal.ErrSyntax},
		{"NaN", 2, 0, decimal.ErrSyntax},
		{"Inf", 2, 0, decimal.ErrSyntax},
		{"0x10", 2, 0, decimal.ErrSyntax},
		{"١", 2, 0, decimal.ErrSyntax}, // a non-ASCII digit

		{"1", -1, 0, decimal.ErrScale},
		{"1", 19, 0, decimal.ErrScale},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := decimal.Parse(tt.in, tt.scale)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("Parse(%q, %d) error = %v, want %v", tt.in, tt.scale, err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q, %d) = %d, want %d", tt.in, tt.scale, got, tt.want)
			}
			if err != nil && tt.in != "" && !strings.Contains(err.Error(), tt.in) && !errors.Is(tt.err, decimal.ErrScale) {
				t.Errorf("error %q does not name the input %q", err, tt.in)
			}
		})
	}
}

func TestParsePrecisionErrorSaysSo(t *testing.T) {
	t.Parallel()
	_, err := decimal.Parse("0.001", 2)
	if err == nil || !strings.Contains(err.Error(), "more fractional digits than the scale") || !strings.Contains(err.Error(), "scale 2") {
		t.Fatalf("error %v: want it to say the digits exceed scale 2", err)
	}
}

func TestParseNonNegative(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		err  error
	}{
		{"1.5", 150, nil},
		{"0", 0, nil},
		{"-0", 0, nil},
		{"-0.01", 0, decimal.ErrNegative},
		{"x", 0, decimal.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := decimal.ParseNonNegative(tt.in, 2)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) || got != tt.want {
				t.Fatalf("ParseNonNegative(%q) = %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestParseNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		scale int32
		want  int64
		err   error
	}{
		{"10.5", 3, 10500, nil},
		{"50000.0", 2, 5000000, nil},
		{"10.50", 1, 105, nil}, // a JSON number is a value: trailing zeros are fine
		{"10.500000000000000000000", 1, 105, nil},
		{"1e2", 0, 100, nil},
		{"1E2", 2, 10000, nil},
		{"1e+2", 0, 100, nil},
		{"2.5E-3", 4, 25, nil},
		{"25e-4", 4, 25, nil},
		{"-1.5e1", 0, -15, nil},
		{"0e999999999999", 2, 0, nil},
		{"0.000e-5", 2, 0, nil},
		{"-0", 2, 0, nil},
		{"9223372036854775807", 0, math.MaxInt64, nil},
		{"-9.223372036854775808e18", 0, math.MinInt64, nil},
		{"9.223372036854775807e0", 18, math.MaxInt64, nil},

		{"10.55", 1, 0, decimal.ErrPrecision},
		{"1e-3", 2, 0, decimal.ErrPrecision},
		{"1e-999999999999", 2, 0, decimal.ErrPrecision},
		{"1.000000001", 2, 0, decimal.ErrPrecision},

		{"1e19", 0, 0, decimal.ErrRange},
		{"1e999999999999", 2, 0, decimal.ErrRange},
		{"9223372036854775808", 0, 0, decimal.ErrRange},
		{"1e17", 2, 0, decimal.ErrRange},

		{"", 2, 0, decimal.ErrSyntax},
		{"1e", 2, 0, decimal.ErrSyntax},
		{"1e+", 2, 0, decimal.ErrSyntax},
		{"e5", 2, 0, decimal.ErrSyntax},
		{"+1", 2, 0, decimal.ErrSyntax},
		{"01", 2, 0, decimal.ErrSyntax},
		{"1.", 2, 0, decimal.ErrSyntax},
		{"1.e5", 2, 0, decimal.ErrSyntax},
		{"\"1\"", 2, 0, decimal.ErrSyntax},
		{"null", 2, 0, decimal.ErrSyntax},

		{"1", 20, 0, decimal.ErrScale},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := decimal.ParseNumber(tt.in, tt.scale)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("ParseNumber(%q, %d) error = %v, want %v", tt.in, tt.scale, err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("ParseNumber(%q, %d) = %d, want %d", tt.in, tt.scale, got, tt.want)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v     int64
		scale int32
		want  string
	}{
		{5000050, 2, "50000.50"},
		{5000000, 2, "50000.00"},
		{1, 3, "0.001"},
		{-5, 3, "-0.005"},
		{-15, 1, "-1.5"},
		{0, 2, "0.00"},
		{0, 0, "0"},
		{7, 0, "7"},
		{7, -2, "700"},
		{0, -2, "0"},
		{123, 3, "0.123"},
		{1234, 3, "1.234"},
		{math.MaxInt64, 0, "9223372036854775807"},
		{math.MinInt64, 0, "-9223372036854775808"},
		{math.MinInt64, 18, "-9.223372036854775808"},
		{1, 18, "0.000000000000000001"},
		{1, 20, "0.00000000000000000001"},
	}
	for _, tt := range tests {
		if got := decimal.Format(tt.v, tt.scale); got != tt.want {
			t.Errorf("Format(%d, %d) = %q, want %q", tt.v, tt.scale, got, tt.want)
		}
	}
}

func TestMul(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		a        int64
		aScale   int32
		b        int64
		bScale   int32
		outScale int32
		mode     decimal.Rounding
		want     int64
		err      error
	}{
		// 50000.00 * 0.00001 = 0.5 at the notional scale 7.
		{"notional", 5000000, 2, 1, 5, 7, decimal.RoundExact, 5000000, nil},
		{"notional to quote scale", 5000000, 2, 10500, 3, 2, decimal.RoundExact, 52500000, nil},
		{"up the scale", 15, 1, 2, 0, 4, decimal.RoundExact, 30000, nil},
		{"negative", -15, 1, 2, 0, 1, decimal.RoundExact, -30, nil},
		{"both negative", -15, 1, -2, 0, 1, decimal.RoundExact, 30, nil},
		{"zero", 0, 18, math.MaxInt64, 0, 18, decimal.RoundExact, 0, nil},
		{"inexact", 15, 1, 15, 1, 1, decimal.RoundExact, 0, decimal.ErrPrecision},
		{"overflow", math.MaxInt64, 0, 2, 0, 0, decimal.RoundExact, 0, decimal.ErrRange},
		{"overflow by scale", 1 << 62, 0, 1, 0, 1, decimal.RoundExact, 0, decimal.ErrRange},
		{"128-bit intermediate", math.MaxInt64, 18, math.MaxInt64, 18, 16, decimal.RoundDown, 850705917302346158, nil},
		{"128-bit overflow", math.MaxInt64, 18, math.MaxInt64, 18, 18, decimal.RoundDown, 0, decimal.ErrRange},
		{"min int64", math.MinInt64, 0, 1, 0, 0, decimal.RoundExact, math.MinInt64, nil},
		{"min int64 negated", math.MinInt64, 0, -1, 0, 0, decimal.RoundExact, 0, decimal.ErrRange},
		{"dividing by 10^36", 1, 18, 1, 18, 0, decimal.RoundUp, 1, nil},
		{"dividing by 10^36 exact", 1, 18, 1, 18, 0, decimal.RoundExact, 0, decimal.ErrPrecision},
		{"bad scale", 1, 19, 1, 0, 0, decimal.RoundExact, 0, decimal.ErrScale},

		// 1.25 * 1 to one digit: a tie; 1.26 above it; 1.24 below.
		{"half-up tie", 125, 2, 1, 0, 1, decimal.RoundHalfUp, 13, nil},
		{"half-up tie negative", -125, 2, 1, 0, 1, decimal.RoundHalfUp, -13, nil},
		{"half-even tie down", 125, 2, 1, 0, 1, decimal.RoundHalfEven, 12, nil},
		{"half-even tie up", 135, 2, 1, 0, 1, decimal.RoundHalfEven, 14, nil},
		{"half-even above", 126, 2, 1, 0, 1, decimal.RoundHalfEven, 13, nil},
		{"half-even below", 124, 2, 1, 0, 1, decimal.RoundHalfEven, 12, nil},
		{"down", 129, 2, 1, 0, 1, decimal.RoundDown, 12, nil},
		{"down negative", -129, 2, 1, 0, 1, decimal.RoundDown, -12, nil},
		{"up", 121, 2, 1, 0, 1, decimal.RoundUp, 13, nil},
		{"up negative", -121, 2, 1, 0, 1, decimal.RoundUp, -13, nil},
		{"floor", 129, 2, 1, 0, 1, decimal.RoundFloor, 12, nil},
		{"floor negative", -121, 2, 1, 0, 1, decimal.RoundFloor, -13, nil},
		{"ceiling", 121, 2, 1, 0, 1, decimal.RoundCeiling, 13, nil},
		{"ceiling negative", -129, 2, 1, 0, 1, decimal.RoundCeiling, -12, nil},
		{"far below half", 500_000_000_000_000_001, 18, 1, 18, 0, decimal.RoundHalfEven, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decimal.MulRound(tt.a, tt.aScale, tt.b, tt.bScale, tt.outScale, tt.mode)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("MulRound error = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("MulRound = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestMulTieAcrossDivisionSteps(t *testing.T) {
	t.Parallel()
	// 0.5 * 10^-18 * ... : a = 5 * 10^17 at scale 18 (0.5), b = 1 at scale
	// 18 (10^-18): product 5*10^17 at scale 36; to scale 18 it is 0.5 units,
	// a true tie; plus one unit more at scale 36 is above the tie.
	tie, err := decimal.MulRound(500_000_000_000_000_000, 18, 1, 18, 18, decimal.RoundHalfEven)
	if err != nil || tie != 0 {
		t.Fatalf("tie to even = %d, %v; want 0", tie, err)
	}
	above, err := decimal.MulRound(500_000_000_000_000_001, 18, 1, 18, 18, decimal.RoundHalfEven)
	if err != nil || above != 1 {
		t.Fatalf("above the tie = %d, %v; want 1", above, err)
	}
	// Across two division steps (10^19 then 10^17): 5*10^35 at scale 36 is
	// exactly 0.5 at scale 0.
	v := int64(500_000_000_000_000_000)
	half, err := decimal.MulRound(v, 18, 1_000_000_000_000_000_000, 18, 0, decimal.RoundHalfUp)
	if err != nil || half != 1 {
		t.Fatalf("half-up of 0.5 = %d, %v; want 1", half, err)
	}
	half, err = decimal.MulRound(v, 18, 1_000_000_000_000_000_000, 18, 0, decimal.RoundHalfEven)
	if err != nil || half != 0 {
		t.Fatalf("half-even of 0.5 = %d, %v; want 0", half, err)
	}
	below, err := decimal.MulRound(v-1, 18, 1_000_000_000_000_000_000, 18, 0, decimal.RoundHalfUp)
	if err != nil || below != 0 {
		t.Fatalf("half-up of 0.4999... = %d, %v; want 0", below, err)
	}
}

func TestRescale(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		v        int64
		from, to int32
		mode     decimal.Rounding
		want     int64
		err      error
	}{
		{"up", 5, 1, 3, decimal.RoundExact, 500, nil},
		{"same", 5, 1, 1, decimal.RoundExact, 5, nil},
		{"down exact", 500, 3, 1, decimal.RoundExact, 5, nil},
		{"down inexact", 501, 3, 1, decimal.RoundExact, 0, decimal.ErrPrecision},
		{"down rounded", 551, 3, 1, decimal.RoundHalfEven, 6, nil},
		{"overflow", math.MaxInt64, 0, 1, decimal.RoundExact, 0, decimal.ErrRange},
		{"min int64 down", math.MinInt64, 18, 0, decimal.RoundDown, -9, nil},
		{"bad scale", 1, 0, 19, decimal.RoundExact, 0, decimal.ErrScale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decimal.RescaleRound(tt.v, tt.from, tt.to, tt.mode)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) || got != tt.want {
				t.Fatalf("RescaleRound(%d, %d, %d) = %d, %v; want %d, %v", tt.v, tt.from, tt.to, got, err, tt.want, tt.err)
			}
		})
	}
	if got, err := decimal.Rescale(5, 1, 2); err != nil || got != 50 {
		t.Fatalf("Rescale(5, 1, 2) = %d, %v; want 50", got, err)
	}
}

func TestIsMultiple(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v, step int64
		want    bool
	}{
		{100, 10, true},
		{105, 10, false},
		{0, 10, true},
		{-20, 10, true},
		{5, 0, false},
		{5, -5, false},
	}
	for _, tt := range tests {
		if got := decimal.IsMultiple(tt.v, tt.step); got != tt.want {
			t.Errorf("IsMultiple(%d, %d) = %v, want %v", tt.v, tt.step, got, tt.want)
		}
	}
}

func TestRoundingString(t *testing.T) {
	t.Parallel()
	if got := decimal.RoundHalfEven.String(); got != "half-even" {
		t.Fatalf("String = %q", got)
	}
	if got := decimal.Rounding(99).String(); got != "Rounding(99)" {
		t.Fatalf("String = %q", got)
	}
}

func FuzzParseFormat(f *testing.F) {
	f.Add(int64(5000050), int32(2))
	f.Add(int64(math.MinInt64), int32(18))
	f.Add(int64(math.MaxInt64), int32(0))
	f.Add(int64(-1), int32(7))
	f.Fuzz(func(t *testing.T, v int64, scale int32) {
		scale = ((scale % (decimal.MaxScale + 1)) + decimal.MaxScale + 1) % (decimal.MaxScale + 1)
		s := decimal.Format(v, scale)
		got, err := decimal.Parse(s, scale)
		if err != nil || got != v {
			t.Fatalf("Parse(Format(%d, %d) = %q) = %d, %v", v, scale, s, got, err)
		}
		if got, err := decimal.ParseNumber(s, scale); err != nil || got != v {
			t.Fatalf("ParseNumber(%q, %d) = %d, %v; want %d", s, scale, got, err, v)
		}
		trim := decimal.FormatTrim(v, scale)
		if got, err := decimal.Parse(trim, scale); err != nil || got != v {
			t.Fatalf("Parse(FormatTrim(%d, %d) = %q) = %d, %v", v, scale, trim, got, err)
		}
		if scale < decimal.MaxScale {
			// One more digit of scale is the same value.
			got, err := decimal.Rescale(v, scale, scale+1)
			if err == nil {
				back, err := decimal.Rescale(got, scale+1, scale)
				if err != nil || back != v {
					t.Fatalf("Rescale round trip of %d at %d: %d, %v", v, scale, back, err)
				}
			}
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"50000.5", "-1.5", "0.001", "1e2", "", "-", "9223372036854775808", "00", "1.", "-0.0"} {
		f.Add(s, int32(3))
	}
	f.Fuzz(func(t *testing.T, s string, scale int32) {
		scale = ((scale % (decimal.MaxScale + 1)) + decimal.MaxScale + 1) % (decimal.MaxScale + 1)
		v, err := decimal.Parse(s, scale)
		if err != nil {
			if !errors.Is(err, decimal.ErrSyntax) && !errors.Is(err, decimal.ErrPrecision) && !errors.Is(err, decimal.ErrRange) {
				t.Fatalf("Parse(%q, %d): error %v wraps no sentinel", s, scale, err)
			}
			return
		}
		// A parsed string means the same value as its canonical form, and
		// ParseNumber agrees with Parse on every string Parse accepts.
		if back, err := decimal.Parse(decimal.Format(v, scale), scale); err != nil || back != v {
			t.Fatalf("Parse(%q) = %d, but its Format reads back as %d, %v", s, v, back, err)
		}
		if n, err := decimal.ParseNumber(s, scale); err != nil || n != v {
			t.Fatalf("ParseNumber(%q) = %d, %v; Parse = %d", s, n, err, v)
		}
	})
}

// FuzzMul checks MulRound against math/big for every rounding mode.
func FuzzMul(f *testing.F) {
	f.Add(int64(5000000), int32(2), int64(10500), int32(3), int32(2), uint8(0))
	f.Add(int64(math.MinInt64), int32(18), int64(-7), int32(18), int32(3), uint8(6))
	f.Add(int64(-125), int32(2), int64(1), int32(0), int32(1), uint8(5))
	f.Fuzz(func(t *testing.T, a int64, as int32, b int64, bs int32, out int32, m uint8) {
		norm := func(s int32) int32 { return ((s % 19) + 19) % 19 }
		as, bs, out = norm(as), norm(bs), norm(out)
		mode := decimal.Rounding(m % 7)
		got, err := decimal.MulRound(a, as, b, bs, out, mode)

		// exact = a*b*10^(out-as-bs) as a rational; round it by mode.
		exact := new(big.Rat).SetFrac(
			new(big.Int).Mul(new(big.Int).Mul(big.NewInt(a), big.NewInt(b)), pow10Big(max(0, int(out)-int(as)-int(bs)))),
			pow10Big(max(0, int(as)+int(bs)-int(out))))
		want, inexact := roundRat(exact, mode)
		switch {
		case mode == decimal.RoundExact && inexact:
			if !errors.Is(err, decimal.ErrPrecision) && (want.IsInt64() || !errors.Is(err, decimal.ErrRange)) {
				t.Fatalf("MulRound(%d,%d,%d,%d,%d,%v) = %d, %v; want ErrPrecision", a, as, b, bs, out, mode, got, err)
			}
		case !want.IsInt64():
			if !errors.Is(err, decimal.ErrRange) {
				t.Fatalf("MulRound(%d,%d,%d,%d,%d,%v) = %d, %v; want ErrRange (%s)", a, as, b, bs, out, mode, got, err, want)
			}
		case err != nil || got != want.Int64():
			t.Fatalf("MulRound(%d,%d,%d,%d,%d,%v) = %d, %v; want %s", a, as, b, bs, out, mode, got, err, want)
		}
	})
}

func pow10Big(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

// roundRat rounds r to an integer by mode and reports whether it was inexact.
func roundRat(r *big.Rat, mode decimal.Rounding) (*big.Int, bool) {
	q, rem := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int)) // truncated toward zero
	if rem.Sign() == 0 {
		return q, false
	}
	neg := r.Sign() < 0
	twice := new(big.Int).Abs(new(big.Int).Mul(rem, big.NewInt(2)))
	half := twice.Cmp(r.Denom()) // -1 below half, 0 tie, 1 above
	var up bool
	switch mode {
	case decimal.RoundDown, decimal.RoundExact:
	case decimal.RoundUp:
		up = true
	case decimal.RoundFloor:
		up = neg
	case decimal.RoundCeiling:
		up = !neg
	case decimal.RoundHalfUp:
		up = half >= 0
	case decimal.RoundHalfEven:
		up = half > 0 || (half == 0 && q.Bit(0) == 1)
	}
	if up {
		if neg {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q, true
}

func TestFormatTrim(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v     int64
		scale int32
		want  string
	}{
		{5000050, 2, "50000.5"},
		{500, 2, "5"},
		{0, 7, "0"},
		{-10, 2, "-0.1"},
		{1, 5, "0.00001"},
		{70, 0, "70"},
		{7, -1, "70"},
	}
	for _, tt := range tests {
		if got := decimal.FormatTrim(tt.v, tt.scale); got != tt.want {
			t.Errorf("FormatTrim(%d, %d) = %q, want %q", tt.v, tt.scale, got, tt.want)
		}
		if tt.scale >= 0 {
			if back, err := decimal.Parse(decimal.FormatTrim(tt.v, tt.scale), tt.scale); err != nil || back != tt.v {
				t.Errorf("Parse(FormatTrim(%d, %d)) = %d, %v", tt.v, tt.scale, back, err)
			}
		}
	}
}
