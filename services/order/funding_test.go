package order_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/services/order"
)

// The service publishes a perpetual's funding tick when its funding
// interval ends (BTCUSDT-PERP's: every 8 hours from midnight UTC) while it
// runs, once per interval however often it looks, with the contract's
// clamp and impact notional.
func TestFundingTicksAtIntervalEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var mu sync.Mutex
	now := time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)
	looks := 0 // the loop reads the clock once per look, after its previous look ended
	e.clock = func() time.Time { mu.Lock(); defer mu.Unlock(); looks++; return now }
	e.start(func(c *order.Config) { c.FundingEvery = 5 * time.Millisecond })
	ticks := func() []string {
		var out []string
		for id, cmd := range e.commands() {
			if f := cmd.GetFunding(); f != nil {
				out = append(out, fmt.Sprintf("%s end %s clamp %s notional %s index %q", id,
					f.GetIntervalEnd().AsTime().Format(time.RFC3339), f.GetRateClamp(), f.GetImpactNotional(), f.GetIndexPrice()))
			}
		}
		return out
	}
	// The 08:00 interval ended before the service started: not ticked.
	polltest.True(t, "the funding loop to finish a look", func() bool { mu.Lock(); defer mu.Unlock(); return looks >= 2 })
	if got := ticks(); len(got) != 0 {
		t.Fatalf("ticks %q for an interval that ended before the start", got)
	}
	mu.Lock()
	now = now.Add(8 * time.Hour) // 17:30: the 16:00 interval end passed
	mu.Unlock()
	second := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	want := []string{fmt.Sprintf("funding:BTCUSDT-PERP:%d end 2026-12-03T16:00:00Z clamp 0.0075 notional 10000 index \"\"", second.Unix())}
	polltest.Until(t, "the tick of the interval that ended at 16:00, and no other", func() error {
		got := ticks()
		slices.Sort(got)
		if strings.Join(got, "; ") != strings.Join(want, "; ") {
			return fmt.Errorf("ticks %q", got)
		}
		return nil
	})
}
