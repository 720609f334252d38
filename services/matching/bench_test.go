package matching

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
)

// BenchmarkMatching publishes 2000 seeded commands on two instruments to a server
// fsyncing every write, then measures how long the engine takes to publish all their
// events, in commands per second.
func BenchmarkMatching(b *testing.B) {
	for _, sync := range []embedded.SyncPolicy{embedded.SyncAlways, embedded.SyncPeriodic} {
		b.Run("sync="+sync.String(), func(b *testing.B) {
			const n = 2000
			cmds := commands(1, n)
			for b.Loop() {
				s := embeddedtest.New(b, embeddedtest.WithSync(sync))
				if err := streams.EnsureStreams(b.Context(), s.JetStream(), streams.DefaultCatalog()); err != nil {
					b.Fatal(err)
				}
				seqs := send(b, s.JetStream(), cmds...)
				last := lastInputs(cmds, seqs)
				began := time.Now()
				r := start(b, s, testConfig())
				polltest.True(b, "caught up", func() bool { return caughtUp(b, s.JetStream(), last) }, polltest.WithTimeout(time.Minute))
				b.ReportMetric(float64(n)/time.Since(began).Seconds(), "cmds/s")
				r.stop(b)
			}
		})
	}
}

// caughtUp reports whether the last event of every instrument comes from its last
// command.
func caughtUp(b testing.TB, js jetstream.JetStream, last map[string]uint64) bool {
	b.Helper()
	stream, err := js.Stream(b.Context(), streams.StreamName(streams.TopicEngineEvent))
	if err != nil {
		b.Fatal(err)
	}
	for inst, seq := range last {
		subj, _ := streams.Subject(streams.TopicEngineEvent, inst)
		m, err := stream.GetLastMsgForSubject(b.Context(), subj)
		if err != nil {
			return false
		}
		ev := &enginev1.EngineEvent{}
		if err := proto.Unmarshal(m.Data, ev); err != nil {
			b.Fatal(err)
		}
		if ev.GetInputSequence() < seq {
			return false
		}
	}
	return true
}

// BenchmarkApply measures the engine's in-memory work per command (no
// I/O): the same seeded stream of limit and IOC orders from a number of
// accounts, as spot orders and as a perpetual's (each fill moving a
// position, the mark and the liquidation check after every command), in
// ns per command. The perpetual's cost over spot's is the risk engine's.
func BenchmarkApply(b *testing.B) {
	for _, accounts := range []int{10, 1000} {
		for _, kind := range []string{"spot", "perpetual"} {
			b.Run(fmt.Sprintf("%s/accounts=%d", kind, accounts), func(b *testing.B) {
				const n = 20_000
				cmds := applyCommands(n, accounts, kind == "perpetual")
				for b.Loop() {
					st := newInstrument("BTCUSDT-PERP")
					for i, c := range cmds {
						st.apply(input{sequence: uint64(i + 1), cmd: c})
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/cmd")
			})
		}
	}
}

// applyCommands is a seeded stream of n orders from accounts accounts
// around a price: two in three rest (GTC), one in three crosses (IOC).
func applyCommands(n, accounts int, perpetual bool) []*enginev1.OrderCommand {
	rng := rand.New(rand.NewPCG(7, 8)) //nolint:gosec // a seeded, reproducible input
	out := make([]*enginev1.OrderCommand, n)
	for i := range out {
		side, tif := buy, gtc
		if rng.IntN(2) == 0 {
			side = sell
		}
		if rng.IntN(3) == 0 {
			tif = ioc
		}
		c := submit("BTCUSDT-PERP", fmt.Sprint("o", i), fmt.Sprint("acct", rng.IntN(accounts)), side, limit, tif,
			fmt.Sprintf("%d.%02d", 100+rng.IntN(3), rng.IntN(100)), fmt.Sprintf("%d.%d", 1+rng.IntN(5), rng.IntN(10)))
		if perpetual {
			s := c.GetSubmit()
			s.Leverage, s.Margin, s.MaintenanceMarginRate = 10, "60", "0.005" // ample: a market in range liquidates no one
		}
		out[i] = c
	}
	return out
}
