package matching

import (
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
