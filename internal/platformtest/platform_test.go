package platformtest_test

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/services/matching"
	"github.com/tradex-mesh/tradex/services/metadata"
	"github.com/tradex-mesh/tradex/services/order"
	"github.com/tradex-mesh/tradex/services/wallet"
)

const (
	scenarioSeed     = 20261201
	scenarioActions  = 5000
	scenarioAccounts = 10
)

// The services never lose the broker in these tests (only service
// processes die), so the broker does not need to fsync every write.
func newPlatform(t *testing.T, more ...platformtest.Option) *platformtest.Platform {
	return platformtest.New(t, append([]platformtest.Option{
		platformtest.WithSync(embedded.SyncPeriodic),
		platformtest.WithWalletConfig(func(c *wallet.Config) {
			c.SnapshotEvery = 500 // restarts rebuild from a snapshot and the journal after it
			c.AckWait = 2 * time.Second
		}),
		platformtest.WithOrderConfig(func(c *order.Config) { c.AckWait = 2 * time.Second }),
		platformtest.WithMatchingConfig(func(c *matching.Config) {
			c.SnapshotInterval = 300
			c.AckWait = 2 * time.Second
		}),
		platformtest.WithMetadataConfig(func(c *metadata.Config) { // trades pay fees
			for i := range c.Seed {
				c.Seed[i].MakerFeeRate, c.Seed[i].TakerFeeRate = "0.0002", "0.0005"
			}
		}),
	}, more...)...)
}

// Ten accounts race each other with funds that run out: whatever the
// interleaving, no balance goes negative, funds are conserved, no hold
// outlives its order, the book never crosses, and the order service, the
// engine and the wallet agree on every order.
func TestScenarioKeepsInvariants(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	out := newOutcome()
	if err := drive(t.Context(), p, out, scenario(scenarioSeed, scenarioActions, scenarioAccounts), scenarioAccounts, tightFunds, perAccount); err != nil {
		t.Fatal(err)
	}
	p.WaitSettled(t)
	state := check(t, p, out)
	if len(out.unfunded) == 0 || len(state.trades["BTCUSDT"]) == 0 || len(state.trades["ETHUSDT"]) == 0 {
		t.Errorf("scenario too tame: %d orders refused for funds, %d + %d trades",
			len(out.unfunded), len(state.trades["BTCUSDT"]), len(state.trades["ETHUSDT"]))
	}
	t.Logf("%d orders placed, %d refused for funds, %d BTCUSDT and %d ETHUSDT trades",
		len(out.placed), len(out.unfunded), len(state.trades["BTCUSDT"]), len(state.trades["ETHUSDT"]))
}

// The matching engine, the wallet and the order service are killed
// (connection cut mid-flight), alone and together, and restarted from the
// streams at seeded points of the scenario; the run ends in exactly the
// state of an uninterrupted run of the same scenario.
func TestCrashesEndInTheUninterruptedState(t *testing.T) {
	t.Parallel()
	acts := scenario(scenarioSeed, scenarioActions, scenarioAccounts)

	ref := newPlatform(t)
	refOut := newOutcome()
	if err := drive(t.Context(), ref, refOut, acts, scenarioAccounts, ampleFunds, perMarket); err != nil {
		t.Fatal(err)
	}
	ref.WaitSettled(t)
	want := check(t, ref, refOut)

	p := newPlatform(t)
	out := newOutcome()
	driven := make(chan error, 1)
	go func() { driven <- drive(t.Context(), p, out, acts, scenarioAccounts, ampleFunds, perMarket) }()

	rng := rand.New(rand.NewPCG(scenarioSeed, 7)) //nolint:gosec // seeded crash points, reproducible
	// Who dies at each point, in turn.
	victims := []struct{ wallet, orders, matching bool }{
		{wallet: true}, {matching: true}, {wallet: true, matching: true},
		{orders: true}, {orders: true, matching: true}, {wallet: true, orders: true, matching: true},
	}
	points := make([]int64, 2*len(victims))
	for i := range points {
		points[i] = rng.Int64N(scenarioActions * 9 / 10)
	}
	slices.Sort(points)
	until := waitDrive(t, driven)
	for i, at := range points {
		until(func() bool { return out.done.Load() >= at })
		v := victims[i%len(victims)]
		if v.wallet {
			p.KillWallet()
		}
		if v.orders {
			p.KillOrders()
		}
		if v.matching {
			p.KillMatching()
		}
		retries := out.retries.Load()
		progress := out.done.Load()
		if v.wallet || v.orders { // down until the clients noticed
			until(func() bool { return out.retries.Load() >= retries+20 })
		} else { // commands pile up meanwhile
			until(func() bool { return out.done.Load() >= progress+int64(50+rng.IntN(200)) })
		}
		if v.wallet {
			p.StartWallet()
		}
		if v.orders {
			p.StartOrders()
		}
		if v.matching {
			p.StartMatching()
		}
	}
	until(func() bool { return false })
	p.WaitSettled(t)
	got := check(t, p, out)
	compare(t, want, got)
	t.Logf("%d crashes; %d retried calls; %d orders placed, %d refused, %d + %d trades", len(points), out.retries.Load(),
		len(out.placed), len(out.unfunded), len(got.trades["BTCUSDT"]), len(got.trades["ETHUSDT"]))
}

// waitDrive returns until: it waits for cond or the end of the drive that
// reports to driven (failing the test on its error), whichever comes
// first; once the drive ended it returns at once.
func waitDrive(t *testing.T, driven <-chan error) func(cond func() bool) {
	finished := false
	return func(cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Minute) // a hang guard: -race on a busy machine is slow
		for !finished && !cond() {
			select {
			case err := <-driven:
				if err != nil {
					t.Fatal(err)
				}
				finished = true
			case <-time.After(5 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatal("crash point not reached in 5 minutes")
			}
		}
	}
}

// compare reports every difference between two final states.
func compare(t *testing.T, want, got finalState) {
	t.Helper()
	diff := func(what string, w, g map[string]string) {
		for _, k := range slices.Sorted(maps.Keys(w)) {
			if w[k] != g[k] {
				t.Errorf("%s %s: %q, uninterrupted run %q", what, k, g[k], w[k])
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				t.Errorf("%s %s: %q, not in the uninterrupted run", what, k, g[k])
			}
		}
	}
	diff("order", want.orders, got.orders)
	diff("balance", want.balances, got.balances)
	diffList := func(what string, w, g map[string][]string) {
		for _, inst := range slices.Sorted(maps.Keys(w)) {
			if g := g[inst]; !slices.Equal(w[inst], g) {
				at := firstDiff(w[inst], g)
				t.Errorf("%s: %d %s, uninterrupted run %d; first difference at %d:\n this run:\n  %s\n uninterrupted run:\n  %s",
					inst, len(g), what, len(w[inst]), at, strings.Join(around(g, at), "\n  "), strings.Join(around(w[inst], at), "\n  "))
			}
		}
	}
	// perMarket drives each instrument's commands in one order, so they
	// are the same in both runs: a difference there is the order
	// service's, one only in the trades the engine's.
	diffList("commands", want.commands, got.commands)
	diffList("trades (taker maker price quantity)", want.trades, got.trades)
}

// around is the part of trades near index at, to show a difference in.
func around(trades []string, at int) []string {
	return trades[max(0, at-3):min(len(trades), at+4)]
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
