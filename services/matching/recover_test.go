package matching

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
)

var crashInstruments = []string{"BTCUSDT", "ETHUSDT"}

// commands is a seeded stream of submits (limit GTC and IOC, market, a few invalid) and
// cancels over a narrow price range, so that orders trade and rest.
func commands(seed uint64, n int) []*enginev1.OrderCommand {
	rng := rand.New(rand.NewPCG(seed, seed+1)) //nolint:gosec // a seeded, reproducible test input
	var out []*enginev1.OrderCommand
	var ids []string
	for i := range n {
		if i%40 == 39 { // ETHUSDT is a perpetual: funding ticks now and then
			out = append(out, &enginev1.OrderCommand{CommandId: fmt.Sprintf("funding:ETHUSDT:%d", i), InstrumentId: "ETHUSDT",
				Command: &enginev1.OrderCommand_Funding{Funding: &enginev1.FundingTick{
					IntervalEnd: timestamppb.New(time.Unix(int64(i)*3600, 0)),
					IndexPrice:  fmt.Sprintf("10%d.%02d", rng.IntN(3), rng.IntN(100)), RateClamp: "0.0075", ImpactNotional: "100"}}})
		}
		inst := crashInstruments[rng.IntN(len(crashInstruments))]
		id := fmt.Sprintf("%s-o%d", inst, i)
		account := fmt.Sprintf("acc%d", rng.IntN(4))
		side := buy
		if rng.IntN(2) == 0 {
			side = sell
		}
		price := fmt.Sprintf("%d.%02d", 100+rng.IntN(3), rng.IntN(100))
		qty := fmt.Sprintf("%d.%d", 1+rng.IntN(5), rng.IntN(10))
		switch r := rng.IntN(20); {
		case r < 4 && len(ids) > 0:
			target := ids[rng.IntN(len(ids))]
			out = append(out, cancelCmd(inst, id, target, account))
			continue
		case r < 6:
			out = append(out, submit(inst, id, account, side, limit, ioc, price, qty))
		case r < 7:
			out = append(out, submit(inst, id, account, side, market, ioc, "", qty))
		case r < 8:
			out = append(out, submit(inst, id, account, side, limit, gtc, price+"001", qty))
		default:
			out = append(out, submit(inst, id, account, side, limit, gtc, price, qty))
		}
		sub := out[len(out)-1].GetSubmit()
		if i%3 == 0 { // some orders pay fees: their rates must survive a restart while they rest
			sub.MakerFeeRate, sub.TakerFeeRate = "0.0002", "0.0005"
		}
		if inst == "ETHUSDT" { // a perpetual: positions and margins must survive a restart too
			sub.Leverage, sub.Margin, sub.ReduceOnly = 10, fmt.Sprintf("%d.5", 1+rng.IntN(30)), rng.IntN(6) == 0
			sub.MaintenanceMarginRate = "0.01" // thin margins on a moving market: liquidations too
		}
		ids = append(ids, id)
	}
	return out
}

// lastInputs is the stream sequence of the last command of each instrument.
func lastInputs(cmds []*enginev1.OrderCommand, seqs []uint64) map[string]uint64 {
	last := map[string]uint64{}
	for i, c := range cmds {
		last[c.GetInstrumentId()] = seqs[i]
	}
	return last
}

func TestCrashRestartEqualsUninterruptedRun(t *testing.T) {
	t.Parallel()
	cmds := commands(42, 400)
	cfg := testConfig()
	cfg.SnapshotInterval = 7
	cfg.BatchCommands = 4

	ref := newServer(t)
	refSeqs := send(t, ref.JetStream(), cmds...)
	start(t, ref, cfg)
	refLast := lastInputs(cmds, refSeqs)

	crash := newServer(t)
	seqs := send(t, crash.JetStream(), cmds...)
	rng := rand.New(rand.NewPCG(7, 8)) //nolint:gosec // seeded crash points, reproducible
	for round := range 5 {
		r := start(t, crash, cfg)
		target := countEvents(t, crash.JetStream()) + 1 + rng.IntN(150)
		polltest.True(t, fmt.Sprintf("round %d: %d events or all", round, target), func() bool {
			return countEvents(t, crash.JetStream()) >= target || complete(t, crash.JetStream(), lastInputs(cmds, seqs))
		}, polltest.WithTimeout(time.Minute))
		if round%2 == 0 {
			r.conn.Close() // the process dies: nothing is drained or acknowledged
		}
		r.stop(t)
	}
	start(t, crash, cfg)

	sameEvents(t, ref.JetStream(), refLast, crash.JetStream(), lastInputs(cmds, seqs))
}

// sameEvents waits for both servers' events to reach their last inputs and checks
// that they are equal but for engine_time (the servers' stream times differ), gapless,
// with their ids as message ids, and with engine_time the command's stream time.
func sameEvents(t testing.TB, ref jetstream.JetStream, refLast map[string]uint64, js jetstream.JetStream, last map[string]uint64) {
	t.Helper()
	for _, inst := range crashInstruments {
		want := waitInput(t, ref, inst, refLast[inst])
		got := waitInput(t, js, inst, last[inst])
		_, ids := stored(t, js, inst)
		checkEngineTimes(t, js, got)
		if len(got) != len(want) {
			t.Fatalf("%s: got %d events, want %d", inst, len(got), len(want))
		}
		for i := range got {
			if got[i].GetSequence() != uint64(i+1) || ids[i] != got[i].GetEventId() {
				t.Fatalf("%s: event %d has sequence %d, msg id %s", inst, i, got[i].GetSequence(), ids[i])
			}
			g, w := proto.CloneOf(got[i]), proto.CloneOf(want[i])
			g.EngineTime, w.EngineTime = nil, nil
			if !proto.Equal(g, w) {
				t.Fatalf("%s: event %d differs:\n got %v\nwant %v", inst, i, g, w)
			}
		}
		t.Logf("%s: %d events equal", inst, len(got))
	}
}

func TestSecondWriterIsFenced(t *testing.T) {
	t.Parallel()
	cmds := commands(9, 150)
	cfg := testConfig()
	cfg.SnapshotInterval = 10
	cfg.ConsumerName = "matching-a"

	ref := newServer(t)
	refSeqs := send(t, ref.JetStream(), cmds...)
	start(t, ref, cfg)

	s := newServer(t)
	seqs := send(t, s.JetStream(), cmds...)
	start(t, s, cfg)
	second := cfg
	second.ConsumerName = "matching-b" // a misconfigured second writer of every instrument
	start(t, s, second)
	sameEvents(t, ref.JetStream(), lastInputs(cmds, refSeqs), s.JetStream(), lastInputs(cmds, seqs))
}

// countEvents is how many messages engine.event.v1 holds.
func countEvents(t testing.TB, js jetstream.JetStream) int {
	t.Helper()
	stream, err := js.Stream(t.Context(), streams.StreamName(streams.TopicEngineEvent))
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Msgs) //nolint:gosec // a test's count
}

// complete reports whether every instrument's last command has its events stored.
func complete(t testing.TB, js jetstream.JetStream, last map[string]uint64) bool {
	t.Helper()
	for inst, seq := range last {
		evs, _ := stored(t, js, inst)
		if len(evs) == 0 || evs[len(evs)-1].GetInputSequence() < seq {
			return false
		}
	}
	return true
}

// checkEngineTimes checks that every event's engine_time is its command's stream time.
func checkEngineTimes(t testing.TB, js jetstream.JetStream, evs []*enginev1.EngineEvent) {
	t.Helper()
	stream, err := js.Stream(t.Context(), streams.StreamName(streams.TopicOrderCommand))
	if err != nil {
		t.Fatal(err)
	}
	times := map[uint64]time.Time{}
	for _, e := range evs {
		ts, ok := times[e.GetInputSequence()]
		if !ok {
			m, err := stream.GetMsg(t.Context(), e.GetInputSequence())
			if err != nil {
				t.Fatal(err)
			}
			ts = m.Time
			times[e.GetInputSequence()] = ts
		}
		if !e.GetEngineTime().AsTime().Equal(ts) {
			t.Fatalf("event %s: engine_time %v, command stored at %v", e.GetEventId(), e.GetEngineTime().AsTime(), ts)
		}
	}
}

func TestRecoverFromSnapshot(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	cfg := testConfig()
	cfg.SnapshotInterval = 5
	cfg.BatchCommands = 1 // a snapshot every 5 commands exactly
	cmds := make([]*enginev1.OrderCommand, 0, 23)
	for i := range 23 {
		side := buy
		if i%2 == 1 {
			side = sell
		}
		cmds = append(cmds, submit("BTCUSDT", fmt.Sprintf("o%d", i), fmt.Sprintf("acc%d", i%3), side, limit, gtc,
			fmt.Sprintf("100.%02d", i%7), "1.5"))
	}
	seqs := send(t, s.JetStream(), cmds...)
	r := start(t, s, cfg)
	waitInput(t, s.JetStream(), "BTCUSDT", seqs[len(seqs)-1])
	r.stop(t)

	svc := r.svc
	snap, ok, err := svc.snaps.load(t.Context(), "BTCUSDT")
	if err != nil || !ok {
		t.Fatalf("snapshot: %v %v", ok, err)
	}
	if snap.lastInput != seqs[19] {
		t.Fatalf("snapshot at input %d, want %d (the 20th command)", snap.lastInput, seqs[19])
	}

	fromSnap, err := svc.recoverInstrument(t.Context(), "BTCUSDT")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.snaps.kv.Put(t.Context(), "BTCUSDT", []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	fromStart, err := svc.recoverInstrument(t.Context(), "BTCUSDT")
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := stored(t, s.JetStream(), "BTCUSDT")
	last := evs[len(evs)-1]
	for name, st := range map[string]*instrument{"snapshot": fromSnap, "start": fromStart} {
		if st.lastInput != seqs[22] || st.sequence != last.GetSequence() || st.priceScale != 2 || st.quantityScale != 5 {
			t.Errorf("from %s: input %d sequence %d scales %d/%d", name, st.lastInput, st.sequence, st.priceScale, st.quantityScale)
		}
	}
	if fromSnap.mark != fromStart.mark || fromSnap.lastTrade != fromStart.lastTrade || fromSnap.lastTrade == 0 {
		t.Errorf("mark and last trade from the snapshot %v/%d, from the start %v/%d", fromSnap.mark, fromSnap.lastTrade, fromStart.mark, fromStart.lastTrade)
	}
	a, _ := fromSnap.book.Snapshot().MarshalBinary()
	b, _ := fromStart.book.Snapshot().MarshalBinary()
	if !bytes.Equal(a, b) {
		t.Error("books recovered from the snapshot and from the start differ")
	}

	// A new instance continues the output after the recovery.
	start(t, s, cfg)
	more := send(t, s.JetStream(), cancelCmd("BTCUSDT", "x", "o22", "acc1"))
	evs = waitInput(t, s.JetStream(), "BTCUSDT", more[0])
	for i, e := range evs {
		if e.GetSequence() != uint64(i+1) {
			t.Fatalf("event %d has sequence %d", i, e.GetSequence())
		}
	}
	if c := evs[len(evs)-1].GetCancelled(); c.GetOrderId() != "o22" || c.GetReason() != commonv1.CancelReason_CANCEL_REASON_USER_REQUESTED {
		t.Fatalf("last event %v, want o22 cancelled", evs[len(evs)-1])
	}
}

// A command with more events than one atomic batch holds is published in two batches;
// a crash between them leaves a prefix, which the next instance completes.
func TestRecoveryCompletesASplitCommand(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	const makers = 1100
	cmds := make([]*enginev1.OrderCommand, 0, makers+1)
	for i := range makers {
		cmds = append(cmds, submit("BTCUSDT", fmt.Sprintf("m%d", i), "maker", sell, limit, gtc, "100", "0.001"))
	}
	cmds = append(cmds, submit("BTCUSDT", "sweep", "taker", buy, market, ioc, "", "2"))
	seqs := send(t, s.JetStream(), cmds...)

	// What a crashed instance left: every event up to the sweep's first 1000.
	client := streams.NewClient(s.JetStream(), streams.DefaultCatalog())
	svc, err := New(testConfig(), Deps{Streams: client, Publisher: client.Publisher()})
	if err != nil {
		t.Fatal(err)
	}
	st := newInstrument("BTCUSDT")
	var all []*enginev1.EngineEvent
	err = svc.replay(t.Context(), "BTCUSDT", 1, seqs[len(seqs)-1], func(in input) error {
		all = append(all, st.apply(in)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sweep := len(all) - makers - 2 // accepted, 1100 trades, cancelled remainder
	if sweep != makers {
		t.Fatalf("sweep has %d events, want %d", len(all)-makers, makers+2)
	}
	if _, err := svc.events.publish(t.Context(), "BTCUSDT", 0, all[:makers+maxBatch], nil); err != nil {
		t.Fatal(err)
	}

	start(t, s, testConfig())
	send(t, s.JetStream(), cancelCmd("BTCUSDT", "late", "nothing", "taker")) // wakes the instrument up
	evs := waitInput(t, s.JetStream(), "BTCUSDT", seqs[len(seqs)-1]+1)
	if len(evs) != len(all)+1 {
		t.Fatalf("got %d events, want %d", len(evs), len(all)+1)
	}
	for i, e := range evs[:len(all)] {
		if !proto.Equal(e, all[i]) {
			t.Fatalf("event %d: got %v, want %v", i, e, all[i])
		}
	}
	if last := evs[len(evs)-1]; last.GetSequence() != uint64(len(evs)) || last.GetCancelRejected() == nil {
		t.Fatalf("last event %v", last)
	}
}

// flakyReader fails the first reads of each kind as a broker going away would.
type flakyReader struct {
	streamReader
	failLast, failNext atomic.Int32
}

func (r *flakyReader) Last(ctx context.Context, topic, key string) (streams.Stored, error) {
	if r.failLast.Add(-1) >= 0 {
		return streams.Stored{}, fmt.Errorf("read last of %s: %w", key, streams.ErrUnavailable)
	}
	return r.streamReader.Last(ctx, topic, key)
}

func (r *flakyReader) Next(ctx context.Context, topic, key string, from uint64) (streams.Stored, error) {
	if r.failNext.Add(-1) >= 0 {
		return streams.Stored{}, fmt.Errorf("read next of %s: %w", key, streams.ErrUnavailable)
	}
	return r.streamReader.Next(ctx, topic, key, from)
}

// A stream read that fails while an instrument is recovered or its commands are read
// fails the command (so it is not acknowledged and comes back); the next delivery
// recovers the instrument and publishes once.
func TestTransientReadFailsTheCommand(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seqs := send(t, s.JetStream(), submit("BTCUSDT", "o1", "alice", buy, limit, gtc, "100", "1"))
	client := streams.NewClient(s.JetStream(), streams.DefaultCatalog())
	svc, err := New(testConfig(), Deps{Streams: client, Publisher: client.Publisher()})
	if err != nil {
		t.Fatal(err)
	}
	reader := &flakyReader{streamReader: client}
	reader.failLast.Store(1)
	reader.failNext.Store(1)
	svc.reader = reader
	if svc.snaps, err = openSnapshots(t.Context(), client, svc.cfg); err != nil {
		t.Fatal(err)
	}
	first, err := client.Get(t.Context(), streams.TopicOrderCommand, seqs[0])
	if err != nil {
		t.Fatal(err)
	}
	m := &streams.Message[*enginev1.OrderCommand]{Topic: streams.TopicOrderCommand, Key: "BTCUSDT",
		Sequence: seqs[0], Time: first.Time, Payload: submit("BTCUSDT", "o1", "alice", buy, limit, gtc, "100", "1")}
	for i := range 2 { // the recovery's read, then the command read's
		if err := svc.handle(t.Context(), m); !errors.Is(err, streams.ErrUnavailable) {
			t.Fatalf("delivery %d: %v, want ErrUnavailable", i+1, err)
		}
		if evs, _ := stored(t, s.JetStream(), "BTCUSDT"); len(evs) != 0 {
			t.Fatalf("delivery %d published %d events", i+1, len(evs))
		}
	}
	if err := svc.handle(t.Context(), m); err != nil {
		t.Fatalf("delivery 3: %v", err)
	}
	if err := svc.handle(t.Context(), m); err != nil { // a redelivery after a lost ack
		t.Fatalf("delivery 4: %v", err)
	}
	evs, _ := stored(t, s.JetStream(), "BTCUSDT")
	if len(evs) != 1 || evs[0].GetAccepted().GetOrderId() != "o1" || evs[0].GetInputSequence() != seqs[0] {
		t.Fatalf("got %v, want o1 accepted once", evs)
	}
}
