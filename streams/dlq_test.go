package streams_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// dlqTopic is the topic every DLQ test dead-letters.
const dlqTopic = streams.TopicEngineEvent

// dlqFixture is a fresh broker with the default catalog's streams.
type dlqFixture struct {
	js  jetstream.JetStream
	cat *streams.Catalog
	pub *streams.Publisher
	dlq *streams.DLQ
}

func newDLQFixture(t *testing.T, opts ...embeddedtest.Option) *dlqFixture {
	t.Helper()
	js := embeddedtest.New(t, opts...).JetStream()
	cat := streams.DefaultCatalog()
	if err := streams.EnsureStreams(t.Context(), js, cat); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	return &dlqFixture{js: js, cat: cat, pub: streams.NewPublisher(js, cat), dlq: streams.NewDLQ(js, cat)}
}

// publish writes an engine event with id (its Nats-Msg-Id and ce-id) under
// key and returns its stream sequence.
func (f *dlqFixture) publish(t *testing.T, key, id string) uint64 {
	t.Helper()
	seq, err := f.pub.Publish(t.Context(), dlqTopic, key, &enginev1.EngineEvent{EventId: id, InstrumentId: key}, streams.WithMsgID(id))
	if err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
	return seq
}

// consume runs a consumer of dlqTopic that gives up quickly.
func (f *dlqFixture) consume(t *testing.T, name string, h streams.Handler[*enginev1.EngineEvent]) {
	t.Helper()
	c, err := streams.Consume(t.Context(), streams.NewClient(f.js, f.cat), dlqTopic, streams.ConsumerConfig{
		Name: name, MaxDeliver: 2, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond,
	}, h)
	if err != nil {
		t.Fatalf("consume %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
}

// msgs is how many messages the stream of topic holds.
func (f *dlqFixture) msgs(t *testing.T, topic string) uint64 {
	t.Helper()
	s, err := f.js.Stream(t.Context(), streams.StreamName(topic))
	if err != nil {
		t.Fatalf("stream of %s: %v", topic, err)
	}
	return s.CachedInfo().State.Msgs
}

// waitDLQ waits until the DLQ of dlqTopic holds n dead letters.
func (f *dlqFixture) waitDLQ(t *testing.T, n uint64) {
	t.Helper()
	dlqEventually(t, "dead letters", func() error {
		if got := f.msgs(t, streams.DLQTopic(dlqTopic)); got != n {
			return fmt.Errorf("%d dead letters, want %d", got, n)
		}
		return nil
	})
}

// dlqEventually polls cond until it returns nil, failing after 20s.
func dlqEventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// fourDeadLetters publishes e1 (BTCUSDT), e2 (ETHUSDT), e3 (BTCUSDT);
// wallet-settlement fails all of them ("account frozen", twice each) and
// order-status fails e2 at once ("unknown order", permanent).
func fourDeadLetters(t *testing.T, f *dlqFixture) map[string]uint64 {
	t.Helper()
	seqs := map[string]uint64{"e1": f.publish(t, "BTCUSDT", "e1"), "e2": f.publish(t, "ETHUSDT", "e2"), "e3": f.publish(t, "BTCUSDT", "e3")}
	f.consume(t, "wallet-settlement", func(context.Context, *streams.Message[*enginev1.EngineEvent]) error {
		return errors.New("account frozen")
	})
	f.consume(t, "order-status", func(_ context.Context, m *streams.Message[*enginev1.EngineEvent]) error {
		if m.Key == "ETHUSDT" {
			return streams.Permanent(errors.New("unknown order"))
		}
		return nil
	})
	f.waitDLQ(t, 4)
	return seqs
}

// ids lists "<event id>/<handler>" of dead letters, sorted.
func ids(dls []streams.DLQMessage) []string {
	out := make([]string, 0, len(dls))
	for _, dl := range dls {
		out = append(out, dl.OriginalMsgID+"/"+dl.Handler)
	}
	slices.Sort(out)
	return out
}

func TestDLQListReadsDeadLetters(t *testing.T) {
	t.Parallel()
	f := newDLQFixture(t)
	seqs := fourDeadLetters(t, f)

	all, err := f.dlq.List(t.Context(), dlqTopic, streams.DLQFilter{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if got, want := ids(all), []string{"e1/wallet-settlement", "e2/order-status", "e2/wallet-settlement", "e3/wallet-settlement"}; !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	if !slices.IsSortedFunc(all, func(a, b streams.DLQMessage) int { return cmp.Compare(a.Sequence, b.Sequence) }) {
		t.Error("List is not in sequence order")
	}
	for _, dl := range all {
		id := dl.OriginalMsgID
		var ev enginev1.EngineEvent
		if err := proto.Unmarshal(dl.Data, &ev); err != nil || ev.GetEventId() != id {
			t.Errorf("%s: payload %v (%v), want the original event", id, &ev, err)
		}
		wantDeliveries, wantReason := 2, "account frozen"
		if dl.Handler == "order-status" {
			wantDeliveries, wantReason = 1, "unknown order"
		}
		if dl.Topic != dlqTopic || dl.Subject != dlqTopic+"."+dl.Key || dl.Key != ev.GetInstrumentId() ||
			dl.OriginalSequence != seqs[id] || dl.Deliveries != wantDeliveries || !strings.Contains(dl.Reason, wantReason) ||
			dl.Time.IsZero() || time.Since(dl.Time) > time.Minute || dl.Header.Get(streams.HeaderCEID) != id {
			t.Errorf("%s: got %+v", id, dl)
		}
		if dl.Header.Get("Nats-Sequence") != "" || dl.Header.Get("Nats-Num-Pending") != "" {
			t.Errorf("%s: direct-get headers leak into Header: %v", id, dl.Header)
		}
	}

	// The DLQ topic name is accepted too.
	again, err := f.dlq.List(t.Context(), streams.DLQTopic(dlqTopic), streams.DLQFilter{})
	if err != nil || len(again) != 4 {
		t.Errorf("List(%s) = %d, %v; want 4", streams.DLQTopic(dlqTopic), len(again), err)
	}
}

func TestDLQListFilters(t *testing.T) {
	t.Parallel()
	f := newDLQFixture(t)
	fourDeadLetters(t, f)
	all, err := f.dlq.List(t.Context(), dlqTopic, streams.DLQFilter{})
	if err != nil || len(all) != 4 {
		t.Fatalf("List = %d, %v", len(all), err)
	}
	where := func(keep func(streams.DLQMessage) bool) []string {
		var out []streams.DLQMessage
		for _, dl := range all {
			if keep(dl) {
				out = append(out, dl)
			}
		}
		return ids(out)
	}
	cases := []struct {
		name   string
		filter streams.DLQFilter
		want   []string
	}{
		{"key", streams.DLQFilter{Key: "BTCUSDT"}, []string{"e1/wallet-settlement", "e3/wallet-settlement"}},
		{"handler", streams.DLQFilter{Handler: "order-status"}, []string{"e2/order-status"}},
		{"reason ignores case", streams.DLQFilter{ReasonContains: "FROZEN"}, []string{"e1/wallet-settlement", "e2/wallet-settlement", "e3/wallet-settlement"}},
		{"key and handler", streams.DLQFilter{Key: "ETHUSDT", Handler: "wallet-settlement"}, []string{"e2/wallet-settlement"}},
		{"limit takes the oldest", streams.DLQFilter{Limit: 2}, ids(all[:2])},
		{"sequence", streams.DLQFilter{Sequence: all[2].Sequence}, ids(all[2:3])},
		{"since", streams.DLQFilter{Since: all[2].Time}, where(func(dl streams.DLQMessage) bool { return !dl.Time.Before(all[2].Time) })},
		{"until", streams.DLQFilter{Until: all[1].Time}, where(func(dl streams.DLQMessage) bool { return dl.Time.Before(all[1].Time) })},
		{"since in the future", streams.DLQFilter{Since: time.Now().Add(time.Hour)}, nil},
		{"no match", streams.DLQFilter{Handler: "nobody"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := f.dlq.List(t.Context(), dlqTopic, c.filter)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if !slices.Equal(ids(got), c.want) {
				t.Errorf("List(%+v) = %v, want %v", c.filter, ids(got), c.want)
			}
		})
	}

	t.Run("invalid", func(t *testing.T) {
		t.Parallel()
		if _, err := f.dlq.List(t.Context(), dlqTopic, streams.DLQFilter{Key: "BTC.USDT"}); !errors.Is(err, streams.ErrInvalidKey) {
			t.Errorf("key BTC.USDT: %v, want ErrInvalidKey", err)
		}
		if _, err := f.dlq.List(t.Context(), dlqTopic, streams.DLQFilter{Limit: -1}); !errors.Is(err, streams.ErrInvalidConfig) {
			t.Errorf("limit -1: %v, want ErrInvalidConfig", err)
		}
		now := time.Now()
		if _, err := f.dlq.List(t.Context(), dlqTopic, streams.DLQFilter{Since: now, Until: now}); !errors.Is(err, streams.ErrInvalidConfig) {
			t.Errorf("until = since: %v, want ErrInvalidConfig", err)
		}
	})
}

func TestDLQGet(t *testing.T) {
	t.Parallel()
	f := newDLQFixture(t)
	fourDeadLetters(t, f)
	all, err := f.dlq.List(t.Context(), dlqTopic, streams.DLQFilter{})
	if err != nil || len(all) != 4 {
		t.Fatalf("List = %d, %v", len(all), err)
	}
	for _, want := range all {
		got, err := f.dlq.Get(t.Context(), dlqTopic, want.Sequence)
		if err != nil {
			t.Fatalf("Get(%d): %v", want.Sequence, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Get(%d) = %+v, List had %+v", want.Sequence, got, want)
		}
	}
	if _, err := f.dlq.Get(t.Context(), dlqTopic, 999); !errors.Is(err, streams.ErrNoDeadLetter) {
		t.Errorf("Get(999): %v, want ErrNoDeadLetter", err)
	}
}

// redriveFixture dead-letters e1 and e2 through wallet-settlement, whose
// handler fails while fail is set and otherwise records what it got.
type redriveFixture struct {
	*dlqFixture
	seqs map[string]uint64
	fail atomic.Bool
	mu   sync.Mutex
	got  []*streams.Message[*enginev1.EngineEvent]
}

func newRedriveFixture(t *testing.T) *redriveFixture {
	t.Helper()
	r := &redriveFixture{dlqFixture: newDLQFixture(t)}
	r.fail.Store(true)
	r.seqs = map[string]uint64{"e1": r.publish(t, "BTCUSDT", "e1"), "e2": r.publish(t, "ETHUSDT", "e2")}
	r.consume(t, "wallet-settlement", func(_ context.Context, m *streams.Message[*enginev1.EngineEvent]) error {
		if r.fail.Load() {
			return errors.New("account frozen")
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, m)
		return nil
	})
	r.waitDLQ(t, 2)
	return r
}

// received waits until the handler has succeeded n times and returns the
// messages by event id.
func (r *redriveFixture) received(t *testing.T, n int) map[string]*streams.Message[*enginev1.EngineEvent] {
	t.Helper()
	dlqEventually(t, "redriven messages handled", func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.got) < n {
			return fmt.Errorf("%d handled, want %d", len(r.got), n)
		}
		return nil
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]*streams.Message[*enginev1.EngineEvent]{}
	for _, m := range r.got {
		out[m.Payload.GetEventId()] = m
	}
	return out
}

func TestDLQRedrive(t *testing.T) {
	t.Parallel()
	r := newRedriveFixture(t)
	before, err := r.dlq.List(t.Context(), dlqTopic, streams.DLQFilter{})
	if err != nil {
		t.Fatal(err)
	}
	r.fail.Store(false)

	n, err := r.dlq.Redrive(t.Context(), dlqTopic, streams.DLQFilter{})
	if err != nil || n != 2 {
		t.Fatalf("Redrive = %d, %v; want 2", n, err)
	}
	got := r.received(t, 2)
	for _, dl := range before {
		id := dl.OriginalMsgID
		m := got[id]
		if m == nil {
			t.Fatalf("%s not redriven; got %v", id, got)
		}
		if m.Header.Get(streams.HeaderCEID) != id || m.Key != dl.Key || m.Payload.GetInstrumentId() != dl.Key {
			t.Errorf("%s: redriven as ce-id %q key %q payload %v", id, m.Header.Get(streams.HeaderCEID), m.Key, m.Payload)
		}
		if want := id + ":redrive:" + strconv.FormatUint(r.seqs[id], 10); m.ID != want {
			t.Errorf("%s: Nats-Msg-Id %q, want %q", id, m.ID, want)
		}
		if want := streams.StreamName(streams.DLQTopic(dlqTopic)) + ":" + strconv.FormatUint(dl.Sequence, 10); m.Header.Get(streams.HeaderRedrivenFrom) != want {
			t.Errorf("%s: %s = %q, want %q", id, streams.HeaderRedrivenFrom, m.Header.Get(streams.HeaderRedrivenFrom), want)
		}
		for k := range m.Header {
			if strings.HasPrefix(k, "X-Dlq-") {
				t.Errorf("%s: redriven with dead-letter header %s", id, k)
			}
		}
	}
	if left, err := r.dlq.List(t.Context(), dlqTopic, streams.DLQFilter{}); err != nil || len(left) != 0 {
		t.Errorf("DLQ after redrive: %d, %v; want empty", len(left), err)
	}
}

func TestDLQRedriveWithFilterAndKeep(t *testing.T) {
	t.Parallel()
	r := newRedriveFixture(t)
	r.fail.Store(false)

	n, err := r.dlq.Redrive(t.Context(), dlqTopic, streams.DLQFilter{Key: "ETHUSDT"}, streams.WithRedriveKeep())
	if err != nil || n != 1 {
		t.Fatalf("Redrive = %d, %v; want 1", n, err)
	}
	if got := r.received(t, 1); got["e2"] == nil {
		t.Errorf("handled %v, want e2", got)
	}
	if left, err := r.dlq.List(t.Context(), dlqTopic, streams.DLQFilter{}); err != nil || len(left) != 2 {
		t.Errorf("DLQ after redrive with keep: %d, %v; want both kept", len(left), err)
	}
}

func TestDLQRedriveTwiceStoresOnce(t *testing.T) {
	t.Parallel()
	r := newRedriveFixture(t)
	r.fail.Store(false)
	// A redrive that keeps the dead letters is what a crash between
	// republish and delete leaves behind.
	if n, err := r.dlq.Redrive(t.Context(), dlqTopic, streams.DLQFilter{}, streams.WithRedriveKeep()); err != nil || n != 2 {
		t.Fatalf("first Redrive = %d, %v; want 2", n, err)
	}
	if got := r.msgs(t, dlqTopic); got != 4 {
		t.Fatalf("topic holds %d messages after the first redrive, want 4", got)
	}
	if n, err := r.dlq.Redrive(t.Context(), dlqTopic, streams.DLQFilter{}); err != nil || n != 2 {
		t.Fatalf("second Redrive = %d, %v; want 2", n, err)
	}
	if got := r.msgs(t, dlqTopic); got != 4 {
		t.Errorf("topic holds %d messages after the second redrive, want 4: the duplicate window must drop it", got)
	}
	if got := r.msgs(t, streams.DLQTopic(dlqTopic)); got != 0 {
		t.Errorf("DLQ holds %d after the second redrive, want 0", got)
	}
}

func TestDLQRedriveOncePerMessage(t *testing.T) {
	t.Parallel()
	f := newDLQFixture(t)
	f.publish(t, "BTCUSDT", "e1")
	fail := func(context.Context, *streams.Message[*enginev1.EngineEvent]) error { return errors.New("down") }
	f.consume(t, "wallet-settlement", fail)
	f.consume(t, "order-status", fail)
	f.waitDLQ(t, 2)

	if n, err := f.dlq.Redrive(t.Context(), dlqTopic, streams.DLQFilter{}); err != nil || n != 2 {
		t.Fatalf("Redrive = %d, %v; want 2", n, err)
	}
	if got := f.msgs(t, dlqTopic); got != 2 {
		t.Errorf("topic holds %d messages, want 2: two dead letters of one message are republished once", got)
	}
}

func TestDLQRedriveFailingAgainReturnsOnce(t *testing.T) {
	t.Parallel()
	r := newRedriveFixture(t)
	before, err := r.dlq.List(t.Context(), dlqTopic, streams.DLQFilter{})
	if err != nil {
		t.Fatal(err)
	}
	// The handler still fails: each message comes back, and Redrive ends.
	if n, err := r.dlq.Redrive(t.Context(), dlqTopic, streams.DLQFilter{}); err != nil || n != 2 {
		t.Fatalf("Redrive = %d, %v; want 2", n, err)
	}
	r.waitDLQ(t, 2)
	after, err := r.dlq.List(t.Context(), dlqTopic, streams.DLQFilter{})
	if err != nil || len(after) != 2 {
		t.Fatalf("List = %d, %v", len(after), err)
	}
	for _, dl := range after {
		if dl.Sequence <= before[len(before)-1].Sequence || !strings.HasPrefix(dl.Header.Get(streams.HeaderRedrivenFrom), streams.StreamName(streams.DLQTopic(dlqTopic))+":") {
			t.Errorf("dead letter after a failed redrive: seq %d, %s %q", dl.Sequence, streams.HeaderRedrivenFrom, dl.Header.Get(streams.HeaderRedrivenFrom))
		}
		if ce := dl.Header.Get(streams.HeaderCEID); ce != "e1" && ce != "e2" || !strings.HasPrefix(dl.OriginalMsgID, ce+":redrive:") {
			t.Errorf("ce-id %q, original id %q: want the event id kept and a redrive id", ce, dl.OriginalMsgID)
		}
	}
}

func TestDLQRedriveRateAndDryRun(t *testing.T) {
	t.Parallel()
	r := newRedriveFixture(t)
	r.fail.Store(false)

	n, err := r.dlq.Redrive(t.Context(), dlqTopic, streams.DLQFilter{}, streams.WithRedriveDryRun())
	if err != nil || n != 2 {
		t.Fatalf("dry run = %d, %v; want 2", n, err)
	}
	if topic, dlq := r.msgs(t, dlqTopic), r.msgs(t, streams.DLQTopic(dlqTopic)); topic != 2 || dlq != 2 {
		t.Fatalf("after a dry run the topic holds %d and the DLQ %d, want 2 and 2", topic, dlq)
	}

	if _, err := r.dlq.Redrive(t.Context(), dlqTopic, streams.DLQFilter{}, streams.WithRedriveRate(-1)); !errors.Is(err, streams.ErrInvalidConfig) {
		t.Errorf("rate -1: %v, want ErrInvalidConfig", err)
	}
	if n, err := r.dlq.Redrive(t.Context(), dlqTopic, streams.DLQFilter{}, streams.WithRedriveRate(200)); err != nil || n != 2 {
		t.Fatalf("rate-limited Redrive = %d, %v; want 2", n, err)
	}
	r.received(t, 2)
	if got := r.msgs(t, streams.DLQTopic(dlqTopic)); got != 0 {
		t.Errorf("DLQ holds %d after the redrive, want 0", got)
	}
}

func TestDLQPurge(t *testing.T) {
	t.Parallel()
	f := newDLQFixture(t)
	fourDeadLetters(t, f)
	steps := []struct {
		filter streams.DLQFilter
		purged int
		left   []string
	}{
		{streams.DLQFilter{ReasonContains: "no such reason"}, 0, []string{"e1/wallet-settlement", "e2/order-status", "e2/wallet-settlement", "e3/wallet-settlement"}},
		{streams.DLQFilter{Handler: "order-status"}, 1, []string{"e1/wallet-settlement", "e2/wallet-settlement", "e3/wallet-settlement"}},
		{streams.DLQFilter{Key: "ETHUSDT"}, 1, []string{"e1/wallet-settlement", "e3/wallet-settlement"}}, // one subject purged at once
		{streams.DLQFilter{Key: "BTCUSDT", Limit: 1}, 1, []string{"e3/wallet-settlement"}},
		{streams.DLQFilter{}, 1, nil}, // the whole stream
	}
	for _, s := range steps {
		n, err := f.dlq.Purge(t.Context(), dlqTopic, s.filter)
		if err != nil || n != s.purged {
			t.Fatalf("Purge(%+v) = %d, %v; want %d", s.filter, n, err, s.purged)
		}
		left, err := f.dlq.List(t.Context(), dlqTopic, streams.DLQFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(left), s.left) {
			t.Fatalf("after Purge(%+v): %v, want %v", s.filter, ids(left), s.left)
		}
	}
	// Financial topics deny purge; nothing reached the original stream.
	if got := f.msgs(t, dlqTopic); got != 3 {
		t.Errorf("topic holds %d messages, want the 3 originals", got)
	}
}

func TestDLQListPages(t *testing.T) {
	t.Parallel()
	f := newDLQFixture(t, embeddedtest.WithSync(embedded.SyncPeriodic)) // 600 fsyncs would be most of the test
	// More dead letters than one direct get returns, written as a consumer would.
	const n = 600
	for i := range n {
		m := nats.NewMsg(streams.DLQTopic(dlqTopic) + ".BTCUSDT")
		m.Header.Set(streams.HeaderDLQHandler, []string{"even", "odd"}[i%2])
		m.Header.Set(streams.HeaderDLQSequence, strconv.Itoa(i+1))
		if _, err := f.js.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-f.js.PublishAsyncComplete():
	case <-t.Context().Done():
		t.Fatal(t.Context().Err())
	}
	all, err := f.dlq.List(t.Context(), dlqTopic, streams.DLQFilter{})
	if err != nil || len(all) != n {
		t.Fatalf("List = %d, %v; want %d", len(all), err, n)
	}
	for i, dl := range all {
		if dl.Sequence != uint64(i+1) || dl.OriginalSequence != uint64(i+1) {
			t.Fatalf("dead letter %d: sequence %d, original %d", i, dl.Sequence, dl.OriginalSequence)
		}
	}
	odd, err := f.dlq.List(t.Context(), dlqTopic, streams.DLQFilter{Handler: "odd", Limit: 299})
	if err != nil || len(odd) != 299 || odd[298].Sequence != 598 {
		t.Errorf("odd, limit 299: %d, %v", len(odd), err)
	}
	if n, err := f.dlq.Purge(t.Context(), dlqTopic, streams.DLQFilter{Handler: "even"}); err != nil || n != 300 {
		t.Errorf("Purge even = %d, %v; want 300", n, err)
	}
	if n, err := f.dlq.Redrive(t.Context(), dlqTopic, streams.DLQFilter{}, streams.WithRedriveDryRun()); err != nil || n != 300 {
		t.Errorf("Redrive dry run = %d, %v; want 300", n, err)
	}
}

func TestDLQSummaries(t *testing.T) {
	t.Parallel()
	f := newDLQFixture(t)
	fourDeadLetters(t, f)
	sums, err := f.dlq.Summaries(t.Context())
	if err != nil {
		t.Fatalf("Summaries: %v", err)
	}
	if len(sums) != len(f.cat.Topics()) {
		t.Fatalf("%d summaries, want one per topic (%d)", len(sums), len(f.cat.Topics()))
	}
	for _, s := range sums {
		want := uint64(0)
		if s.Topic == dlqTopic {
			want = 4
		}
		if s.Count != want || (want > 0) == s.Oldest.IsZero() || s.Newest.Before(s.Oldest) {
			t.Errorf("summary %+v, want %d dead letters", s, want)
		}
	}
}

func TestDLQUnknownTopic(t *testing.T) {
	t.Parallel()
	f := newDLQFixture(t)
	ctx := t.Context()
	calls := map[string]func() error{
		"List":    func() error { _, err := f.dlq.List(ctx, "nope.v1", streams.DLQFilter{}); return err },
		"Get":     func() error { _, err := f.dlq.Get(ctx, "nope.v1", 1); return err },
		"Redrive": func() error { _, err := f.dlq.Redrive(ctx, "nope.v1", streams.DLQFilter{}); return err },
		"Purge":   func() error { _, err := f.dlq.Purge(ctx, "nope.v1", streams.DLQFilter{}); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, streams.ErrUnknownTopic) {
			t.Errorf("%s: %v, want ErrUnknownTopic", name, err)
		}
	}
}

func TestDLQRedriveRefusesJournal(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	catalog := streams.DefaultCatalog()
	if err := streams.EnsureStreams(t.Context(), s.JetStream(), catalog); err != nil {
		t.Fatal(err)
	}
	_, err := streams.NewDLQ(s.JetStream(), catalog).Redrive(t.Context(), streams.TopicBalanceChanged, streams.DLQFilter{})
	if !errors.Is(err, streams.ErrInvalidConfig) || !strings.Contains(err.Error(), "journal") {
		t.Fatalf("redrive of the wallet journal: err = %v, want a refusal naming the journal", err)
	}
}
