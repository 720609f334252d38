package matching

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tradex-mesh/tradex/internal/perp"
)

// The liquidation index never misses a position the mark liquidates, at
// any maintenance rate and position size (it may name a few it does not:
// the engine checks those exactly), including after positions changed.
func TestLiqIndexFindsEveryLiquidatablePosition(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4)) //nolint:gosec // seeded, reproducible
	for round := range 300 {
		mmr := 1 + rng.Int64N(perp.RateUnit/2)
		positions := map[string]perp.Position{}
		x := newLiqIndex()
		set := func(acct string, p perp.Position) {
			positions[acct] = p
			x.update(acct, p, mmr)
		}
		randomPosition := func() perp.Position {
			size := 1 + rng.Int64N([]int64{3, 1000, 1_000_000}[rng.IntN(3)])
			price := 1 + rng.Int64N(100_000)
			if rng.IntN(2) == 0 {
				size = -size
			}
			value := size * price
			return perp.Position{Size: size, Value: value, Margin: rng.Int64N(max(value, -value)/2 + 1)}
		}
		for i := range 40 {
			set(fmt.Sprint("a", i), randomPosition())
		}
		for i := range 20 { // changes leave stale entries behind
			set(fmt.Sprint("a", rng.IntN(40)), randomPosition())
			if i%5 == 0 {
				acct := fmt.Sprint("a", rng.IntN(40))
				delete(positions, acct)
				x.update(acct, perp.Position{}, mmr)
			}
		}
		for i := range 40 {
			mark := 1 + rng.Int64N(150_000)
			if i%2 == 0 { // right at some position's liquidation price, give or take a tick
				if price, ok, err := positions[fmt.Sprint("a", rng.IntN(40))].LiquidationPrice(mmr); err == nil && ok {
					mark = max(1, price+rng.Int64N(7)-3)
				}
			}
			var want []string
			for acct, p := range positions {
				if liq, err := p.Liquidatable(mark, mmr); err == nil && liq {
					want = append(want, acct)
				}
			}
			got := x.candidates(mark)
			for _, acct := range want {
				if !slices.Contains(got, acct) {
					t.Fatalf("round %d, mmr %d, mark %d: %s %+v is liquidatable, candidates %v", round, mmr, mark, acct, positions[acct], got)
				}
			}
			for _, acct := range got { // index them again, as the engine does
				x.update(acct, positions[acct], mmr)
			}
		}
	}
}
