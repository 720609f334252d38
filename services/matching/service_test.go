package matching

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
)

// newServer starts an embedded JetStream with the catalog's streams.
func newServer(t testing.TB) *embeddedtest.Server {
	t.Helper()
	s := embeddedtest.New(t, embeddedtest.WithSync(embedded.SyncPeriodic))
	if err := streams.EnsureStreams(t.Context(), s.JetStream(), streams.DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
	return s
}

// running is a service instance started by a test.
type running struct {
	svc    *Service
	cancel context.CancelFunc
	done   chan error
	conn   *nats.Conn
}

// start runs a service with cfg on its own connection to s.
func start(t testing.TB, s *embeddedtest.Server, cfg Config) *running {
	t.Helper()
	nc, err := s.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	client := streams.NewClient(js, streams.DefaultCatalog())
	svc, err := New(cfg, Deps{
		Streams:   client,
		Publisher: client.Publisher(streams.WithSource("tradex/matching")),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{svc: svc, cancel: cancel, done: make(chan error, 1), conn: nc}
	go func() { r.done <- svc.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	select {
	case <-svc.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("matching not ready")
	}
	return r
}

// stop cancels the instance and waits for Run to return.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
		r.done <- nil // a second stop returns at once
	case <-time.After(30 * time.Second):
		t.Fatal("matching did not stop")
	}
}

// testConfig is Default with short timeouts.
func testConfig() Config {
	cfg := Default()
	cfg.AckWait = 2 * time.Second
	cfg.ShutdownTimeout = 2 * time.Second
	return cfg
}

// send publishes commands to engine.order.v1 and returns their stream sequences.
func send(t testing.TB, js jetstream.JetStream, cmds ...*enginev1.OrderCommand) []uint64 {
	t.Helper()
	pub := streams.NewPublisher(js, streams.DefaultCatalog(), streams.WithSource("test/order"))
	seqs := make([]uint64, len(cmds))
	for i, c := range cmds {
		seq, err := pub.Publish(t.Context(), streams.TopicOrderCommand, c.GetInstrumentId(), c, streams.WithMsgID(c.GetCommandId()))
		if err != nil {
			t.Fatal(err)
		}
		seqs[i] = seq
	}
	return seqs
}

// stored reads every event of inst on engine.event.v1, with its Nats-Msg-Id.
func stored(t testing.TB, js jetstream.JetStream, inst string) ([]*enginev1.EngineEvent, []string) {
	t.Helper()
	stream, err := js.Stream(t.Context(), streams.StreamName(streams.TopicEngineEvent))
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := streams.Subject(streams.TopicEngineEvent, inst)
	var evs []*enginev1.EngineEvent
	var ids []string
	for seq := uint64(1); ; {
		m, err := stream.GetMsg(t.Context(), seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return evs, ids
		}
		if err != nil {
			t.Fatal(err)
		}
		ev := &enginev1.EngineEvent{}
		if err := proto.Unmarshal(m.Data, ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
		ids = append(ids, m.Header.Get(streams.HeaderMsgID))
		seq = m.Sequence + 1
	}
}

// waitInput polls until the last event of inst comes from input sequence seq.
func waitInput(t testing.TB, js jetstream.JetStream, inst string, seq uint64) []*enginev1.EngineEvent {
	t.Helper()
	var evs []*enginev1.EngineEvent
	polltest.Until(t, fmt.Sprintf("%s: event of input %d", inst, seq), func() error {
		evs, _ = stored(t, js, inst)
		if n := len(evs); n > 0 && evs[n-1].GetInputSequence() >= seq {
			return nil
		}
		return fmt.Errorf("have %d events", len(evs))
	}, polltest.WithTimeout(time.Minute))
	return evs
}

func submit(inst, id, account string, side commonv1.Side, typ commonv1.OrderType, tif commonv1.TimeInForce, price, qty string) *enginev1.OrderCommand {
	return &enginev1.OrderCommand{
		CommandId: id, InstrumentId: inst,
		Command: &enginev1.OrderCommand_Submit{Submit: &enginev1.SubmitOrder{
			OrderId: id, AccountId: account, Side: side, Type: typ, TimeInForce: tif,
			Price: price, Quantity: qty, PriceScale: 2, QuantityScale: 5,
		}},
	}
}

func cancelCmd(inst, id, orderID, account string) *enginev1.OrderCommand {
	return &enginev1.OrderCommand{
		CommandId: "cancel:" + id, InstrumentId: inst,
		Command: &enginev1.OrderCommand_Cancel{Cancel: &enginev1.CancelOrder{
			OrderId: orderID, AccountId: account, Reason: commonv1.CancelReason_CANCEL_REASON_USER_REQUESTED,
		}},
	}
}

const (
	buy    = commonv1.Side_SIDE_BUY
	sell   = commonv1.Side_SIDE_SELL
	limit  = commonv1.OrderType_ORDER_TYPE_LIMIT
	market = commonv1.OrderType_ORDER_TYPE_MARKET
	gtc    = commonv1.TimeInForce_TIME_IN_FORCE_GTC
	ioc    = commonv1.TimeInForce_TIME_IN_FORCE_IOC
)

func TestMatchesCommands(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	start(t, s, testConfig())
	const inst = "BTCUSDT"
	seqs := send(t, s.JetStream(),
		submit(inst, "o1", "alice", sell, limit, gtc, "50000.5", "1"),
		submit(inst, "o2", "bob", buy, limit, gtc, "50001", "0.4"),
		cancelCmd(inst, "c1", "o1", "alice"),
		cancelCmd(inst, "c2", "o1", "alice"),
		submit(inst, "o3", "bob", buy, limit, gtc, "1.001", "1"),
		submit(inst, "o4", "bob", buy, market, ioc, "", "0.1"),
	)
	evs := waitInput(t, s.JetStream(), inst, seqs[len(seqs)-1])
	_, ids := stored(t, s.JetStream(), inst)

	type want struct {
		input uint64
		index uint32
		check func(e *enginev1.EngineEvent) string
	}
	wants := []want{
		{seqs[0], 0, func(e *enginev1.EngineEvent) string {
			a := e.GetAccepted()
			return line(a.GetOrderId(), a.GetPrice(), a.GetQuantity(), changes(e))
		}},
		{seqs[1], 0, func(e *enginev1.EngineEvent) string {
			return line(e.GetAccepted().GetOrderId(), changes(e))
		}},
		{seqs[1], 1, func(e *enginev1.EngineEvent) string {
			tr := e.GetTrade()
			return line(tr.GetTradeId() == e.GetEventId(), tr.GetPrice(), tr.GetQuantity(), tr.GetQuoteQuantity(),
				tr.GetTakerOrderId(), tr.GetTakerRemainingQuantity(), tr.GetMakerOrderId(), tr.GetMakerSide(),
				tr.GetMakerRemainingQuantity(), changes(e))
		}},
		{seqs[2], 0, func(e *enginev1.EngineEvent) string {
			c := e.GetCancelled()
			return line(c.GetOrderId(), c.GetRemainingQuantity(), c.GetReason(), changes(e))
		}},
		{seqs[3], 0, func(e *enginev1.EngineEvent) string { return line(e.GetCancelRejected().GetReason()) }},
		{seqs[4], 0, func(e *enginev1.EngineEvent) string {
			return line(e.GetRejected().GetOrderId(), e.GetRejected().GetReason())
		}},
		{seqs[5], 0, func(e *enginev1.EngineEvent) string { return line(e.GetAccepted().GetPrice() == "") }},
		{seqs[5], 1, func(e *enginev1.EngineEvent) string {
			c := e.GetCancelled()
			return line(c.GetRemainingQuantity(), c.GetReason())
		}},
	}
	results := []string{
		"o1 50000.50 1.00000 [SIDE_SELL 50000.50 1.00000]",
		"o2 []",
		"true 50000.50 0.40000 20000.2000000 o2 0.00000 o1 SIDE_SELL 0.60000 [SIDE_SELL 50000.50 0.60000]",
		"o1 0.60000 CANCEL_REASON_USER_REQUESTED [SIDE_SELL 50000.50 0.00000]",
		"REJECT_REASON_ORDER_NOT_FOUND",
		"o3 REJECT_REASON_INVALID_ORDER",
		"true",
		"0.10000 CANCEL_REASON_MARKET_NO_LIQUIDITY",
	}
	if len(evs) != len(wants) {
		t.Fatalf("got %d events, want %d: %v", len(evs), len(wants), evs)
	}
	for i, w := range wants {
		e := evs[i]
		wantID := fmt.Sprintf("%s:%d:%d", inst, w.input, w.index)
		if e.GetEventId() != wantID || ids[i] != wantID || e.GetInputSequence() != w.input ||
			e.GetInputIndex() != w.index || e.GetSequence() != uint64(i+1) || e.GetInstrumentId() != inst {
			t.Errorf("event %d: id %s msg id %s input %d/%d sequence %d; want %s, sequence %d",
				i, e.GetEventId(), ids[i], e.GetInputSequence(), e.GetInputIndex(), e.GetSequence(), wantID, i+1)
		}
		if e.GetEngineTime() == nil {
			t.Errorf("event %d: no engine_time", i)
		}
		if got := w.check(e); got != results[i] {
			t.Errorf("event %d: got %q, want %q", i, got, results[i])
		}
	}
}

// changes renders an event's book changes.
func changes(e *enginev1.EngineEvent) []string {
	var out []string
	for _, c := range e.GetBookChanges() {
		out = append(out, fmt.Sprint(c.GetSide(), " ", c.GetPrice(), " ", c.GetQuantity()))
	}
	return out
}

// line is fmt.Sprintln without the newline: operands always separated by spaces.
func line(a ...any) string { return strings.TrimSuffix(fmt.Sprintln(a...), "\n") }
