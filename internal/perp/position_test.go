package perp_test

import (
	"errors"
	"math"
	"testing"

	"github.com/tradex-mesh/tradex/internal/perp"
)

// The units of BTCUSDT-PERP: prices at scale 1, quantities at scale 3, so
// amounts at scale 4. px(50000) is 50000.0, qty(1.5) is 1.500 and
// amt(75000) is 75000.0000.
func px(v float64) int64  { return int64(v * 10) }
func qty(v float64) int64 { return int64(v * 1000) }
func amt(v float64) int64 { return int64(v * 10_000) }

func TestTrade(t *testing.T) {
	t.Parallel()
	long := perp.Position{Size: qty(2), Value: amt(100_000), Margin: amt(10_000)}    // 2 @ 50000, 10x
	short := perp.Position{Size: qty(-2), Value: amt(-100_000), Margin: amt(10_000)} // -2 @ 50000, 10x
	for _, tc := range []struct {
		name         string
		from         perp.Position
		quantity, px int64
		margin       int64
		want         perp.Position
		change       perp.Change
	}{
		{
			name: "open long", from: perp.Position{}, quantity: qty(2), px: px(50_000), margin: amt(10_000),
			want:   long,
			change: perp.Change{Opened: qty(2)},
		},
		{
			name: "open short", from: perp.Position{}, quantity: qty(-2), px: px(50_000), margin: amt(10_000),
			want:   short,
			change: perp.Change{Opened: qty(2)},
		},
		{
			name: "add to a long at another price", from: long, quantity: qty(1), px: px(53_000), margin: amt(5_300),
			want:   perp.Position{Size: qty(3), Value: amt(153_000), Margin: amt(15_300)},
			change: perp.Change{Opened: qty(1)},
		},
		{
			name: "reduce a long at a profit", from: long, quantity: qty(-0.5), px: px(52_000), margin: 0,
			// releases a quarter of the value (25000) and of the margin (2500); sold for 26000
			want:   perp.Position{Size: qty(1.5), Value: amt(75_000), Margin: amt(7_500)},
			change: perp.Change{Closed: qty(0.5), Realized: amt(1_000), Released: amt(2_500), Payout: amt(3_500)},
		},
		{
			name: "reduce a long at a loss within its released margin", from: long, quantity: qty(-1), px: px(48_000),
			want:   perp.Position{Size: qty(1), Value: amt(50_000), Margin: amt(5_000)},
			change: perp.Change{Closed: qty(1), Realized: amt(-2_000), Released: amt(5_000), Payout: amt(3_000)},
		},
		{
			name: "reduce a long at a loss past its released margin: the rest of the margin pays", from: long, quantity: qty(-1), px: px(44_000),
			// loss 6000, released 5000: 1000 more from the margin left
			want:   perp.Position{Size: qty(1), Value: amt(50_000), Margin: amt(4_000)},
			change: perp.Change{Closed: qty(1), Realized: amt(-6_000), Released: amt(5_000)},
		},
		{
			name: "close a long past its bankruptcy price: a shortfall", from: long, quantity: qty(-2), px: px(44_000),
			// loss 12000 against a margin of 10000
			want:   perp.Position{},
			change: perp.Change{Closed: qty(2), Realized: amt(-12_000), Released: amt(10_000), Shortfall: amt(2_000)},
		},
		{
			name: "close a short at a profit", from: short, quantity: qty(2), px: px(45_000),
			want:   perp.Position{},
			change: perp.Change{Closed: qty(2), Realized: amt(10_000), Released: amt(10_000), Payout: amt(20_000)},
		},
		{
			name: "reduce a short at a loss", from: short, quantity: qty(1), px: px(51_000),
			want:   perp.Position{Size: qty(-1), Value: amt(-50_000), Margin: amt(5_000)},
			change: perp.Change{Closed: qty(1), Realized: amt(-1_000), Released: amt(5_000), Payout: amt(4_000)},
		},
		{
			name: "flip a long to a short", from: long, quantity: qty(-3), px: px(51_000), margin: amt(5_100),
			// closes 2 (+2000 on 100000, releases 10000), opens 1 short @ 51000 with its own margin
			want:   perp.Position{Size: qty(-1), Value: amt(-51_000), Margin: amt(5_100)},
			change: perp.Change{Closed: qty(2), Opened: qty(1), Realized: amt(2_000), Released: amt(10_000), Payout: amt(12_000)},
		},
		{
			name: "flip a short to a long", from: short, quantity: qty(2.5), px: px(49_000), margin: amt(2_450),
			want:   perp.Position{Size: qty(0.5), Value: amt(24_500), Margin: amt(2_450)},
			change: perp.Change{Closed: qty(2), Opened: qty(0.5), Realized: amt(2_000), Released: amt(10_000), Payout: amt(12_000)},
		},
		{
			name: "margin brought for a fill that only closes is paid out", from: long, quantity: qty(-2), px: px(50_000), margin: amt(1),
			want:   perp.Position{},
			change: perp.Change{Closed: qty(2), Released: amt(10_000), Payout: amt(10_000) + amt(1)},
		},
		{
			name: "a reduction rounds the released value toward zero; the rest stays",
			from: perp.Position{Size: 3, Value: 10, Margin: 7}, quantity: -1, px: 4,
			// releases 10/3 -> 3 of the value and 7/3 -> 2 of the margin: 4 - 3 = 1 realized
			want:   perp.Position{Size: 2, Value: 7, Margin: 5},
			change: perp.Change{Closed: 1, Realized: 1, Released: 2, Payout: 3},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, change, err := tc.from.Trade(tc.quantity, tc.px, tc.margin)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || change != tc.change {
				t.Fatalf("Trade(%d @ %d, margin %d) from %+v:\n got %+v %+v\nwant %+v %+v", tc.quantity, tc.px, tc.margin, tc.from, got, change, tc.want, tc.change)
			}
			// The position's own books balance: what left it (payout,
			// margin lost to the shortfall) is its margin and realized PnL.
			before := tc.from.Margin + tc.margin + change.Realized + change.Shortfall
			if after := got.Margin + change.Payout; after != before {
				t.Fatalf("margin + brought + realized + shortfall = %d, margin + payout after = %d", before, after)
			}
		})
	}
}

func TestTradeRefusesNonsense(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ q, p, m int64 }{{0, 10, 0}, {1, 0, 0}, {1, -1, 0}, {1, 10, -1}} {
		if _, _, err := (perp.Position{}).Trade(tc.q, tc.p, tc.m); !errors.Is(err, perp.ErrInvalid) {
			t.Errorf("Trade(%d, %d, %d): %v, want ErrInvalid", tc.q, tc.p, tc.m, err)
		}
	}
	if _, _, err := (perp.Position{}).Trade(1<<40, 1<<40, 0); !errors.Is(err, perp.ErrOverflow) {
		t.Errorf("an overflowing notional: %v, want ErrOverflow", err)
	}
}

func TestReduces(t *testing.T) {
	t.Parallel()
	long := perp.Position{Size: qty(2), Value: amt(100_000)}
	for _, tc := range []struct {
		name     string
		pos      perp.Position
		quantity int64
		want     bool
	}{
		{"a sell of part of a long", long, qty(-1), true},
		{"a sell of all of a long", long, qty(-2), true},
		{"a sell of more than a long would open a short", long, qty(-2.001), false},
		{"a buy adds to a long", long, qty(1), false},
		{"anything opens a flat position", perp.Position{}, qty(-1), false},
		{"a buy of part of a short", perp.Position{Size: qty(-1), Value: amt(-50_000)}, qty(0.5), true},
	} {
		if got := tc.pos.Reduces(tc.quantity); got != tc.want {
			t.Errorf("%s: Reduces(%d) = %t", tc.name, tc.quantity, got)
		}
	}
}

func TestMaxRemovable(t *testing.T) {
	t.Parallel()
	long := perp.Position{Size: qty(2), Value: amt(100_000), Margin: amt(15_000)} // 2 @ 50000
	for _, tc := range []struct {
		name     string
		pos      perp.Position
		mark     int64
		leverage int64
		want     int64
	}{
		{"what 10x does not need at the entry price", long, px(50_000), 10, amt(5_000)},
		{"a profit does not count", long, px(55_000), 10, amt(15_000 - 11_000)},
		{"a loss does", long, px(48_000), 10, amt(15_000 - 9_600 - 4_000)},
		{"nothing when the loss eats it", long, px(45_000), 10, 0},
		{"all of a flat position's", perp.Position{Margin: amt(3)}, px(50_000), 10, amt(3)},
		{"a short at a loss", perp.Position{Size: qty(-2), Value: amt(-100_000), Margin: amt(15_000)}, px(51_000), 20, amt(15_000 - 5_100 - 2_000)},
	} {
		got, err := tc.pos.MaxRemovable(tc.mark, tc.leverage)
		if err != nil || got != tc.want {
			t.Errorf("%s: MaxRemovable = %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
	if _, err := long.MaxRemovable(px(50_000), 0); !errors.Is(err, perp.ErrInvalid) {
		t.Errorf("leverage 0: %v, want ErrInvalid", err)
	}
}

func TestMarginAndFees(t *testing.T) {
	t.Parallel()
	n, err := perp.Notional(px(50_000), qty(-10.5))
	if err != nil || n != amt(-525_000) {
		t.Fatalf("Notional = %d, %v", n, err)
	}
	for _, tc := range []struct {
		name string
		got  func() (int64, error)
		want int64
	}{
		{"initial margin at 10x", func() (int64, error) { return perp.InitialMargin(amt(525_000), 10) }, amt(52_500)},
		{"initial margin of a short's notional", func() (int64, error) { return perp.InitialMargin(amt(-525_000), 10) }, amt(52_500)},
		{"initial margin rounds up", func() (int64, error) { return perp.InitialMargin(10, 3) }, 4},
		{"a 0.05% fee", func() (int64, error) { return perp.Fee(amt(525_000), 500) }, amt(262.5)},
		{"a fee rounds up", func() (int64, error) { return perp.Fee(1, 1) }, 1},
		{"no fee", func() (int64, error) { return perp.Fee(amt(525_000), 0) }, 0},
	} {
		got, err := tc.got()
		if err != nil || got != tc.want {
			t.Errorf("%s: %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
	if _, err := perp.InitialMargin(1, 0); !errors.Is(err, perp.ErrInvalid) {
		t.Errorf("leverage 0: %v", err)
	}
	if _, err := perp.Fee(1, -1); !errors.Is(err, perp.ErrInvalid) {
		t.Errorf("a negative fee rate: %v", err)
	}
}

// Margin added and removed; never below zero, never past int64. A share of
// a margin rounds down, exact past int64 in between.
func TestWithMarginAndShare(t *testing.T) {
	t.Parallel()
	p := perp.Position{Size: 2, Value: 100, Margin: 10}
	for _, tc := range []struct {
		delta, want int64
		err         error
	}{{5, 15, nil}, {-10, 0, nil}, {-11, 10, perp.ErrInvalid}, {math.MaxInt64, 10, perp.ErrOverflow}} {
		got, err := p.WithMargin(tc.delta)
		if !errors.Is(err, tc.err) || got.Margin != tc.want || got.Size != 2 || got.Value != 100 {
			t.Errorf("WithMargin(%d) = %+v, %v; want margin %d, %v", tc.delta, got, err, tc.want, tc.err)
		}
	}
	for _, tc := range []struct {
		total, part, whole, want int64
		err                      error
	}{
		{10, 1, 3, 3, nil}, {10, 3, 3, 10, nil}, {math.MaxInt64, 2, 4, math.MaxInt64 / 2, nil},
		{5, 1, 0, 0, perp.ErrInvalid}, {math.MaxInt64, 4, 2, 0, perp.ErrOverflow},
	} {
		got, err := perp.Share(tc.total, tc.part, tc.whole)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("Share(%d, %d, %d) = %d, %v; want %d, %v", tc.total, tc.part, tc.whole, got, err, tc.want, tc.err)
		}
	}
}
