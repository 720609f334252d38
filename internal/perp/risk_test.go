package perp_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/tradex-mesh/tradex/internal/perp"
)

const mmr = 5_000 // a maintenance margin rate of 0.5%

func TestLiquidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		pos        perp.Position
		liq, bankr int64
	}{
		// (100000 - 10000) / (2 x 0.995) = 45226.13..., up; bankrupt at 90000 / 2
		{"a 10x long", perp.Position{Size: qty(2), Value: amt(100_000), Margin: amt(10_000)}, px(45_226.2), px(45_000)},
		// (-100000 - 10000) / (-2 x 1.005) = 54726.36..., down; bankrupt at 110000 / 2
		{"a 10x short", perp.Position{Size: qty(-2), Value: amt(-100_000), Margin: amt(10_000)}, px(54_726.3), px(55_000)},
		{"a 100x long", perp.Position{Size: qty(1), Value: amt(50_000), Margin: amt(500)}, px(49_748.8), px(49_500)},
		{"an odd short", perp.Position{Size: -7, Value: -3_333, Margin: 101}, 488, 490}, // 3434 / 7.035, down; 3434 / 7, down
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			liq, ok, err := tc.pos.LiquidationPrice(mmr)
			if err != nil || !ok || liq != tc.liq {
				t.Fatalf("LiquidationPrice = %d, %t, %v; want %d", liq, ok, err, tc.liq)
			}
			bankr, ok, err := tc.pos.BankruptcyPrice()
			if err != nil || !ok || bankr != tc.bankr {
				t.Fatalf("BankruptcyPrice = %d, %t, %v; want %d", bankr, ok, err, tc.bankr)
			}
			// The liquidation price is the last safe tick: one tick further
			// toward a loss is liquidatable.
			worse := liq - 1
			if tc.pos.Size < 0 {
				worse = liq + 1
			}
			for _, c := range []struct {
				mark int64
				want bool
			}{{liq, false}, {worse, true}, {bankr, true}} {
				got, err := tc.pos.Liquidatable(c.mark, mmr)
				if err != nil || got != c.want {
					t.Errorf("Liquidatable at %d = %t, %v; want %t", c.mark, got, err, c.want)
				}
			}
			if eq, err := tc.pos.Equity(bankr); err != nil || (tc.pos.Size > 0 && eq > 0) || (tc.pos.Size < 0 && eq < 0) {
				t.Errorf("equity at the bankruptcy price: %d, %v", eq, err)
			}
		})
	}
	flat := perp.Position{Margin: amt(5)}
	if got, err := flat.Liquidatable(1, mmr); got || err != nil {
		t.Errorf("a flat position liquidatable: %t, %v", got, err)
	}
	if _, ok, _ := flat.LiquidationPrice(mmr); ok {
		t.Error("a flat position has a liquidation price")
	}
	covered := perp.Position{Size: qty(1), Value: amt(50_000), Margin: amt(50_000)} // 1x: no price liquidates it
	if p, ok, err := covered.LiquidationPrice(mmr); ok || err != nil {
		t.Errorf("a fully margined long: liquidation price %d, %t, %v", p, ok, err)
	}
	if _, _, err := covered.LiquidationPrice(perp.RateUnit); !errors.Is(err, perp.ErrInvalid) {
		t.Errorf("a 100%% maintenance rate on a long: %v, want ErrInvalid", err)
	}
}

func TestFunding(t *testing.T) {
	t.Parallel()
	long := perp.Position{Size: qty(2), Value: amt(100_000)}
	short := perp.Position{Size: qty(-2), Value: amt(-100_000)}
	for _, tc := range []struct {
		name       string
		pos        perp.Position
		mark, rate int64
		want       int64
	}{
		{"a long pays a positive rate", long, px(50_000), 100, amt(10)},
		{"a short receives it", short, px(50_000), 100, amt(-10)},
		{"a long receives a negative rate", long, px(50_000), -250, amt(-25)},
		{"a short pays it", short, px(50_000), -250, amt(25)},
		{"a payment rounds up", perp.Position{Size: 3}, 1, 1, 1},
		{"a receipt rounds down", perp.Position{Size: -3}, 1, 1, 0},
		{"a flat position pays nothing", perp.Position{}, px(50_000), 100, 0},
	} {
		got, err := tc.pos.Funding(tc.mark, tc.rate)
		if err != nil || got != tc.want {
			t.Errorf("%s: Funding = %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name                  string
		bid, ask, index, clmp int64
		want                  int64
	}{
		{"a premium", px(50_010), px(50_030), px(50_000), 750, 400}, // (50020 - 50000) / 50000
		{"a premium clamped", px(50_010), px(50_030), px(50_000), 300, 300},
		{"a discount", px(49_970), px(49_990), px(50_000), 750, -400},
		{"a discount clamped", px(49_950), px(49_970), px(50_000), 100, -100},
		{"none", px(49_990), px(50_010), px(50_000), 750, 0},
		{"rounded toward zero", 100, 101, 100, 1_000_000, 5_000}, // 0.5% exactly: (201 - 200) / 200
		{"a small discount rounds toward zero", 3, 3, 4, 1_000_000, -250_000},
	} {
		got, err := perp.FundingRate(tc.bid, tc.ask, tc.index, tc.clmp)
		if err != nil || got != tc.want {
			t.Errorf("%s: FundingRate = %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
	if _, err := perp.FundingRate(1, 1, 0, 1); !errors.Is(err, perp.ErrInvalid) {
		t.Errorf("index 0: %v", err)
	}
}

func TestImpactPrice(t *testing.T) {
	t.Parallel()
	asks := []perp.Level{{Price: px(50_000), Quantity: qty(0.1)}, {Price: px(50_010), Quantity: qty(1)}}
	for _, tc := range []struct {
		name     string
		notional int64
		want     int64
		ok       bool
	}{
		{"within the best level", amt(2_000), px(50_000), true},
		{"into the second level, its part rounded up to a lot", amt(10_000), px(50_005), true},
		{"more than the book holds", amt(1_000_000), 0, false},
	} {
		got, ok, err := perp.ImpactPrice(asks, tc.notional)
		if err != nil || ok != tc.ok || got != tc.want {
			t.Errorf("%s: ImpactPrice = %d, %t, %v; want %d, %t", tc.name, got, ok, err, tc.want, tc.ok)
		}
	}
	if _, _, err := perp.ImpactPrice(asks, 0); !errors.Is(err, perp.ErrInvalid) {
		t.Errorf("notional 0: %v", err)
	}
}

func TestMark(t *testing.T) {
	t.Parallel()
	var m perp.Mark
	if _, ok := m.Price(); ok {
		t.Fatal("a new mark has a price")
	}
	steps := []struct {
		name           string
		bid, ask, last int64
		want           int64
	}{
		{"nothing to go on", 0, 0, 0, 0},
		{"the first median is the mark", 1000, 1100, 2000, 1100},
		{"one print far away does not move the median", 1000, 1100, 9000, 1100},
		{"nor does one quote", 1, 1100, 1100, 1100},
		{"a moved market moves it a quarter of the way, rounded toward it", 2000, 2100, 2050, 1100 + 238},
		{"and on", 2000, 2100, 2050, 1338 + 178},
		{"both sides and no trade: the mid", 2000, 2101, 0, 1516 + 134},
		{"it arrives", 2050, 2050, 2050, 1650 + 100},
		{"a lone far ask on an empty side: the last trade counts", 0, 9000, 2050, 1750 + 75},
		{"a lone far bid likewise", 1, 0, 2050, 1825 + 57},
	}
	for _, s := range steps {
		got, _ := m.Update(s.bid, s.ask, s.last)
		if got != s.want {
			t.Fatalf("%s: mark %d, want %d", s.name, got, s.want)
		}
	}
	for range 40 {
		m.Update(0, 0, 2050)
	}
	if got, ok := m.Price(); !ok || got != 2050 {
		t.Fatalf("mark after a steady market: %d, %t; want 2050", got, ok)
	}
}

// TestTradesConserveFunds runs seeded random trades between accounts, each
// side bringing 10x initial margin for what it opens: after every trade
// every position is consistent (entry value of its size's sign, zero when
// flat, margin never negative) and the accounts' cash and margins plus the
// insurance fund, less the entry values of the open positions, is what it
// was, to the unit.
func TestTradesConserveFunds(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(20261203, 15)) //nolint:gosec // a seeded, reproducible test
	const accounts = 6
	var (
		pos       [accounts]perp.Position
		cash      [accounts]int64
		insurance int64
	)
	total := func() int64 {
		sum := insurance
		for i := range accounts {
			sum += cash[i] + pos[i].Margin - pos[i].Value
		}
		return sum
	}
	side := func(i int, quantity, price int64) {
		t.Helper()
		_, opening := pos[i].Split(quantity)
		n, err := perp.Notional(price, opening)
		if err != nil {
			t.Fatal(err)
		}
		margin, err := perp.InitialMargin(n, 10)
		if err != nil {
			t.Fatal(err)
		}
		cash[i] -= margin
		next, change, err := pos[i].Trade(quantity, price, margin)
		if err != nil {
			t.Fatal(err)
		}
		pos[i] = next
		cash[i] += change.Payout
		insurance -= change.Shortfall
	}
	want := total()
	price := px(50_000)
	for n := range 20_000 {
		price = max(px(1_000), price+int64(rng.IntN(2_001))-1_000) // a random walk of up to 100.0 a trade
		buyer, seller := rng.IntN(accounts), rng.IntN(accounts-1)
		if seller >= buyer {
			seller++
		}
		q := 1 + rng.Int64N(qty(3))
		side(buyer, q, price)
		side(seller, -q, price)
		var sizes int64
		for i, p := range pos {
			sizes += p.Size
			if p.Margin < 0 || (p.Size == 0) != (p.Value == 0) || (p.Size > 0) != (p.Value > 0) {
				t.Fatalf("trade %d: account %d's position is inconsistent: %+v", n, i, p)
			}
		}
		if sizes != 0 {
			t.Fatalf("trade %d: sizes add up to %d", n, sizes)
		}
		if got := total(); got != want {
			t.Fatalf("trade %d: cash + margins + insurance - entry values = %d, was %d", n, got, want)
		}
	}
}
