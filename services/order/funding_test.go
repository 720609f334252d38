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

// fundingClock is a test clock for the funding loop: set moves it, and
// start starts an order service that looks every 5 ms and returns once
// the loop has finished a look at the clock's time (it reads the clock
// once per look, after its previous look ended).
type fundingClock struct {
	e     *env
	mu    sync.Mutex
	now   time.Time
	looks int
}

func newFundingClock(e *env, now time.Time) *fundingClock {
	c := &fundingClock{e: e, now: now}
	e.clock = func() time.Time { c.mu.Lock(); defer c.mu.Unlock(); c.looks++; return c.now }
	return c
}

func (c *fundingClock) set(now time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = now }

func (c *fundingClock) start(t *testing.T) *instance {
	t.Helper()
	c.mu.Lock()
	before := c.looks
	c.mu.Unlock()
	in := c.e.start(func(cfg *order.Config) { cfg.FundingEvery = 5 * time.Millisecond })
	polltest.True(t, "the funding loop to finish a look", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.looks >= before+2 })
	return in
}

// The service publishes a perpetual's funding tick when its funding
// interval ends (BTCUSDT-PERP's: every 8 hours from midnight UTC) while it
// runs, once per interval however often it looks, with the contract's
// clamp and impact notional.
func TestFundingTicksAtIntervalEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clock := newFundingClock(e, time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC))
	clock.start(t)
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
	if got := ticks(); len(got) != 0 {
		t.Fatalf("ticks %q for an interval that ended before the start", got)
	}
	clock.set(time.Date(2026, 12, 3, 17, 30, 0, 0, time.UTC)) // the 16:00 interval end passed
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

// An instance started after interval ends that no instance ticked (a
// restart across an end) ticks them, oldest first, at most the last three;
// one that ticked before restarts without ticking that end again.
func TestFundingCatchesUpAfterARestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clock := newFundingClock(e, time.Date(2026, 12, 3, 15, 59, 0, 0, time.UTC))
	ends := func() []string {
		var out []string
		for _, cmd := range e.commands() {
			if f := cmd.GetFunding(); f != nil {
				out = append(out, f.GetIntervalEnd().AsTime().Format("Jan 2 15:04"))
			}
		}
		slices.Sort(out)
		return out
	}
	waitEnds := func(what string, want ...string) {
		t.Helper()
		slices.Sort(want)
		polltest.Until(t, what, func() error {
			if got := ends(); !slices.Equal(got, want) {
				return fmt.Errorf("ticked ends %q, want %q", got, want)
			}
			return nil
		})
	}

	first := clock.start(t)
	clock.set(time.Date(2026, 12, 3, 16, 0, 1, 0, time.UTC))
	waitEnds("the 16:00 tick", "Dec 3 16:00")
	first.stop()

	// Down from 16:00 on Dec 3 to 09:30 on Dec 5: five ends passed
	// (Dec 4 00:00, 08:00, 16:00, Dec 5 00:00, 08:00); the last three
	// are ticked.
	clock.set(time.Date(2026, 12, 5, 9, 30, 0, 0, time.UTC))
	second := clock.start(t)
	waitEnds("the last three missed ends", "Dec 3 16:00", "Dec 4 16:00", "Dec 5 00:00", "Dec 5 08:00")
	second.stop()

	// Restarted before the next end: nothing more.
	third := clock.start(t)
	clock.set(time.Date(2026, 12, 5, 16, 0, 1, 0, time.UTC))
	waitEnds("the next end only", "Dec 3 16:00", "Dec 4 16:00", "Dec 5 00:00", "Dec 5 08:00", "Dec 5 16:00")
	third.stop()
}
