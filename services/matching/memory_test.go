package matching

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
)

// TestRetriedSubmitAfterTheDuplicateWindow: a submit stored again once the
// stream's duplicate window has passed (shortened here to 100 ms (its minimum)) is
// rejected as a duplicate, not executed twice, and the engine still knows
// it after a restart from its snapshot.
func TestRetriedSubmitAfterTheDuplicateWindow(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	js := s.JetStream()
	st, err := js.Stream(t.Context(), streams.StreamName(streams.TopicOrderCommand))
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.Duplicates = 100 * time.Millisecond
	if _, err := js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	mcfg := testConfig()
	mcfg.SnapshotInterval = 1
	r := start(t, s, mcfg)
	const inst = "BTCUSDT"
	cmd := submit(inst, "o1", "alice", buy, limit, gtc, "50000", "1")
	// o1 rests, then is cancelled: off the book, only the engine's memory
	// can tell a retry of it from a new order.
	seqs := send(t, js, cmd, cancelCmd(inst, "c1", "o1", "alice"))
	waitInput(t, js, inst, seqs[1])

	// retry stores the same submit with the same message id again, once the
	// stream no longer takes it for a duplicate, and returns its sequence.
	retry := func() uint64 {
		t.Helper()
		data, err := proto.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		subj, _ := streams.Subject(streams.TopicOrderCommand, inst)
		var seq uint64
		polltest.True(t, "the submit stored again past the duplicate window", func() bool {
			m := nats.NewMsg(subj)
			m.Data = data
			ack, err := js.PublishMsg(t.Context(), m, jetstream.WithMsgID(cmd.GetCommandId()))
			if err != nil {
				t.Fatal(err)
			}
			seq = ack.Sequence
			return !ack.Duplicate
		})
		return seq
	}
	check := func(seq uint64) {
		t.Helper()
		evs := waitInput(t, js, inst, seq)
		last := evs[len(evs)-1]
		if rej := last.GetRejected(); rej.GetReason() != commonv1.RejectReason_REJECT_REASON_DUPLICATE_ORDER || rej.GetOrderId() != "o1" {
			t.Errorf("the retried submit at %d made %v, want a DUPLICATE_ORDER rejection", seq, last)
		}
		accepted := 0
		for _, e := range evs {
			if e.GetAccepted().GetOrderId() == "o1" {
				accepted++
			}
		}
		if accepted != 1 {
			t.Errorf("o1 accepted %d times, want once", accepted)
		}
	}
	check(retry())

	// After a restart from the snapshot (one after every command), the
	// engine still remembers the id.
	r.stop(t)
	start(t, s, mcfg)
	check(retry())
}

// TestCommandMemoryForgetsPastTheHorizon: ids older than the horizon (in
// the commands' own stream time) are forgotten; the memory round-trips
// through a snapshot.
func TestCommandMemoryForgetsPastTheHorizon(t *testing.T) {
	t.Parallel()
	m := commandMemory{horizon: time.Hour}
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	if m.seen("a", t0) || m.seen("b", t0.Add(30*time.Minute)) {
		t.Fatal("a new id reported seen")
	}
	if !m.seen("a", t0.Add(59*time.Minute)) {
		t.Error("a forgotten within the horizon")
	}
	var back commandMemory
	if rest, err := back.readBinary(m.appendBinary(nil)); err != nil || len(rest) != 0 || len(back.log) != 2 {
		t.Fatalf("round trip: %v, %d left, %d ids", err, len(rest), len(back.log))
	}
	back.horizon = time.Hour
	if back.seen("a", t0.Add(61*time.Minute)) {
		t.Error("a remembered past the horizon")
	}
	if !back.seen("b", t0.Add(61*time.Minute)) {
		t.Error("b forgotten within the horizon")
	}
}
