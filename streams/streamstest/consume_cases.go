package streamstest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
)

// seen records what handlers processed, safely across goroutines.
type seen struct {
	mu    sync.Mutex
	order map[string][]int // key -> values in processing order
	count map[string]int   // value -> times processed successfully
}

func newSeen() *seen { return &seen{order: map[string][]int{}, count: map[string]int{}} }

func (s *seen) add(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, _ := strconv.Atoi(strings.TrimPrefix(value, key+"-"))
	s.order[key] = append(s.order[key], n)
	s.count[value]++
}

func (s *seen) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.count {
		n += c
	}
	return n
}

// waitTotal waits until n messages were processed, for at most timeout.
func (s *seen) waitTotal(t *testing.T, n int, what string, timeout time.Duration) {
	t.Helper()
	polltest.Until(t, what, func() error {
		if got := s.total(); got < n {
			return fmt.Errorf("%d of %d", got, n)
		}
		return nil
	}, polltest.WithTimeout(timeout))
}

// exactlyOnce fails unless each of want was processed exactly once.
func (s *seen) exactlyOnce(t *testing.T, want []string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range want {
		if s.count[v] != 1 {
			t.Errorf("%s processed %d times, want exactly once", v, s.count[v])
		}
	}
	if len(s.count) != len(want) {
		t.Errorf("%d distinct messages processed, want %d", len(s.count), len(want))
	}
}

// publishKeys publishes perKey messages "<key>-<i>" for each key, interleaved.
func (s *suite) publishKeys(t *testing.T, keys []string, perKey int) []string {
	t.Helper()
	var all []string
	for i := range perKey {
		for _, k := range keys {
			v := fmt.Sprintf("%s-%d", k, i)
			s.publish(t, k, v, streams.WithMsgID(v))
			all = append(all, v)
		}
	}
	return all
}

func testOrderPerKey(t *testing.T, s *suite) {
	keys := []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"}
	all := s.publishKeys(t, keys, 40)
	got := newSeen()
	var mu sync.Mutex
	failedOnce := map[string]bool{}
	s.consume(t, s.env.JetStream, streams.ConsumerConfig{Name: "ordered", Concurrency: 3, MaxDeliver: 5},
		func(_ context.Context, m *streams.Message[*wrapperspb.StringValue]) error {
			v := m.Payload.GetValue()
			mu.Lock()
			first := !failedOnce[v]
			failedOnce[v] = true
			mu.Unlock()
			if first && strings.HasSuffix(v, "7") { // every tenth fails once: retried in place, in order
				return errors.New("transient")
			}
			got.add(m.Key, v)
			return nil
		})
	got.waitTotal(t, len(all), "all processed", s.within(30*time.Second))
	got.exactlyOnce(t, all)
	for _, k := range keys {
		order := got.order[k]
		for i := range order {
			if order[i] != i {
				t.Errorf("key %s processed out of order: %v", k, order)
				break
			}
		}
	}
	polltest.Until(t, "consumer settled", s.consumerSettled(t, "ordered"), polltest.WithTimeout(s.within(10*time.Second)))
}

func testRedeliveryAfterError(t *testing.T, s *suite) {
	for _, ordering := range []streams.Ordering{streams.PerKey, streams.Unordered} {
		name := fmt.Sprintf("retry-%d", ordering)
		v := name + "-msg"
		s.publish(t, name, v)
		var mu sync.Mutex
		var deliveries []int
		done := make(chan struct{})
		s.consume(t, s.env.JetStream, streams.ConsumerConfig{Name: name, Keys: []string{name}, Ordering: ordering, MaxDeliver: 5},
			func(_ context.Context, m *streams.Message[*wrapperspb.StringValue]) error {
				mu.Lock()
				defer mu.Unlock()
				deliveries = append(deliveries, m.Delivery)
				if len(deliveries) < 3 {
					return errors.New("not yet")
				}
				close(done)
				return nil
			})
		select {
		case <-done:
		case <-time.After(s.within(20 * time.Second)):
			t.Fatalf("ordering %d: message not processed after errors within 20s", ordering)
		}
		polltest.Until(t, "consumer settled", s.consumerSettled(t, name), polltest.WithTimeout(s.within(10*time.Second)))
		mu.Lock()
		if fmt.Sprint(deliveries) != "[1 2 3]" {
			t.Errorf("ordering %d: deliveries %v, want [1 2 3]", ordering, deliveries)
		}
		mu.Unlock()
	}
}

func testRedeliveryAfterDeath(t *testing.T, s *suite) {
	s.publish(t, "k", "survivor")
	nc, js := s.env.Connect(t)
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	cfg := streams.ConsumerConfig{Name: "mortal", AckWait: time.Second}
	if _, err := streams.Consume(t.Context(), streams.NewClient(js, s.catalog), s.topic, cfg,
		func(context.Context, *streams.Message[*wrapperspb.StringValue]) error {
			close(started)
			<-release // never acks: the process "dies" first
			return nil
		}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(s.within(10 * time.Second)):
		t.Fatal("first consumer got nothing within 10s")
	}
	nc.Close() // the consumer's process dies without acking

	_, js2 := s.env.Connect(t)
	got := make(chan *streams.Message[*wrapperspb.StringValue], 1)
	s.consume(t, js2, cfg, func(_ context.Context, m *streams.Message[*wrapperspb.StringValue]) error {
		got <- m
		return nil
	})
	select {
	case m := <-got:
		if m.Payload.GetValue() != "survivor" || m.Delivery < 2 {
			t.Errorf("redelivered %q with delivery %d, want survivor with delivery >= 2", m.Payload.GetValue(), m.Delivery)
		}
	case <-time.After(s.within(20 * time.Second)):
		t.Fatal("message not redelivered to a new instance within 20s")
	}
}

// ledger is a handler's applied state, shared by the instances of a test as
// a database would be: it skips what is at or before the last message
// applied.
type ledger struct {
	mu      sync.Mutex
	applied uint64
	values  []string
}

func (l *ledger) apply(m *streams.Message[*wrapperspb.StringValue]) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m.Sequence <= l.applied {
		return // applied before
	}
	l.applied = m.Sequence
	l.values = append(l.values, m.Payload.GetValue())
}

func (l *ledger) resume(context.Context, string) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.applied, nil
}

// An instance dies holding fetched, unacknowledged messages of a key; the
// next instance, whose handler skips what is at or before its last applied
// message, still applies every message once and in order: Resume catches
// the key up from the stream before later messages overtake the ones the
// broker redelivers only after AckWait.
func testResumeAfterDeath(t *testing.T, s *suite) {
	first := s.publishKeys(t, []string{"k"}, 10)
	l := &ledger{}
	cfg := streams.ConsumerConfig{Name: "resumer", AckWait: time.Minute, Resume: l.resume}
	nc, js := s.env.Connect(t)
	stuck := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	if _, err := streams.Consume(t.Context(), streams.NewClient(js, s.catalog), s.topic, cfg,
		func(_ context.Context, m *streams.Message[*wrapperspb.StringValue]) error {
			if m.Payload.GetValue() == "k-3" {
				close(stuck)
				<-release // the process dies here, k-3 and what it fetched after it unacknowledged
				return errors.New("dead")
			}
			l.apply(m)
			return nil
		}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stuck:
	case <-time.After(s.within(10 * time.Second)):
		t.Fatal("first instance did not reach k-3 within 10s")
	}
	nc.Close()

	_, js2 := s.env.Connect(t)
	s.consume(t, js2, cfg, func(_ context.Context, m *streams.Message[*wrapperspb.StringValue]) error {
		l.apply(m)
		return nil
	})
	var later []string
	for i := 10; i < 15; i++ {
		v := fmt.Sprintf("k-%d", i)
		s.publish(t, "k", v, streams.WithMsgID(v))
		later = append(later, v)
	}
	want := append(first, later...)
	polltest.Until(t, "every message applied", func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.values) < len(want) {
			return fmt.Errorf("applied %v", l.values)
		}
		return nil
	}, polltest.WithTimeout(s.within(20*time.Second)))
	l.mu.Lock()
	defer l.mu.Unlock()
	if strings.Join(l.values, ",") != strings.Join(want, ",") {
		t.Errorf("applied %v, want %v in order", l.values, want)
	}
}

// dlqWait bounds the waits for a dead letter: on a busy 3-node cluster a
// dead-letter write can time out, and the message then comes back after
// BackoffMax (10 s) for the next try; give it three.
const dlqWait = 45 * time.Second

func testDeadLetter(t *testing.T, s *suite) {
	ctx := streams.WithCorrelationID(t.Context(), "corr-dlq")
	seq, err := s.publisher.Publish(ctx, s.topic, "BTCUSDT", wrapperspb.String("poison"), streams.WithMsgID("poison-1"))
	if err != nil {
		t.Fatal(err)
	}
	var calls sync.WaitGroup
	calls.Add(3)
	// AckWait short: a nak lost to a busy cluster (a route dropped under
	// load) comes back in seconds, not after the default's half minute.
	s.consume(t, s.env.JetStream, streams.ConsumerConfig{Name: "settlement", MaxDeliver: 3, Ordering: streams.Unordered, AckWait: 2 * time.Second},
		func(context.Context, *streams.Message[*wrapperspb.StringValue]) error {
			calls.Done()
			return errors.New("boom: account frozen")
		})
	dlq := s.stream(t, streams.DLQTopic(s.topic))
	var dead *jetstream.RawStreamMsg
	polltest.Until(t, "dead letter written", func() error {
		m, err := dlq.GetLastMsgForSubject(t.Context(), streams.DLQTopic(s.topic)+".BTCUSDT")
		dead = m
		return err
	}, polltest.WithTimeout(s.within(dlqWait)))
	calls.Wait() // exactly MaxDeliver attempts (a fourth would panic the WaitGroup)
	if string(dead.Data) == "" {
		t.Error("dead letter has no payload")
	}
	want := map[string]string{
		streams.HeaderDLQHandler: "settlement", streams.HeaderDLQDeliveries: "3",
		streams.HeaderDLQSubject: s.topic + ".BTCUSDT", streams.HeaderDLQSequence: strconv.FormatUint(seq, 10),
		streams.HeaderDLQStream: streams.StreamName(s.topic), streams.HeaderDLQOriginalMsgID: "poison-1",
		streams.HeaderCEID: "poison-1", streams.HeaderCorrelationID: "corr-dlq", streams.HeaderCEType: "google.protobuf.StringValue",
	}
	for k, v := range want {
		if got := dead.Header.Get(k); got != v {
			t.Errorf("dead letter header %s = %q, want %q", k, got, v)
		}
	}
	if r := dead.Header.Get(streams.HeaderDLQReason); !strings.Contains(r, "boom: account frozen") {
		t.Errorf("dead letter reason %q does not carry the handler's error", r)
	}
	if _, err := time.Parse(time.RFC3339Nano, dead.Header.Get(streams.HeaderDLQTime)); err != nil {
		t.Errorf("dead letter time: %v", err)
	}
	// Terminated on the original stream: nothing pending, nothing unacked.
	polltest.Until(t, "original terminated", s.consumerSettled(t, "settlement"), polltest.WithTimeout(s.within(10*time.Second)))
}

func testPermanentAndPanic(t *testing.T, s *suite) {
	s.publish(t, "perm", "perm-1")
	s.publish(t, "panic", "panic-1")
	var mu sync.Mutex
	calls := map[string]int{}
	s.consume(t, s.env.JetStream, streams.ConsumerConfig{Name: "fragile", MaxDeliver: 5, Concurrency: 2},
		func(_ context.Context, m *streams.Message[*wrapperspb.StringValue]) error {
			mu.Lock()
			calls[m.Key]++
			mu.Unlock()
			if m.Key == "perm" {
				return streams.Permanent(errors.New("malformed order"))
			}
			panic("handler bug") //nolint:forbidigo // the suite checks that a handler panic is recovered
		})
	dlq := s.stream(t, streams.DLQTopic(s.topic))
	polltest.Until(t, "both dead-lettered", func() error {
		for _, k := range []string{"perm", "panic"} {
			if _, err := dlq.GetLastMsgForSubject(t.Context(), streams.DLQTopic(s.topic)+"."+k); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		return nil
	}, polltest.WithTimeout(s.within(dlqWait)))
	mu.Lock()
	defer mu.Unlock()
	if calls["perm"] != 1 {
		t.Errorf("permanent error retried: %d calls, want 1", calls["perm"])
	}
	if calls["panic"] != 5 {
		t.Errorf("panicking handler called %d times, want MaxDeliver (5): a panic is an error", calls["panic"])
	}
	m, _ := dlq.GetLastMsgForSubject(t.Context(), streams.DLQTopic(s.topic)+".panic")
	if r := m.Header.Get(streams.HeaderDLQReason); !strings.Contains(r, "handler bug") {
		t.Errorf("panic reason %q does not carry the panic value", r)
	}
}

func testCompetingConsumers(t *testing.T, s *suite) {
	all := s.publishKeys(t, []string{"a", "b", "c", "d", "e"}, 40)
	got := newSeen()
	h := func(_ context.Context, m *streams.Message[*wrapperspb.StringValue]) error {
		got.add(m.Key, m.Payload.GetValue())
		return nil
	}
	cfg := streams.ConsumerConfig{Name: "workers", Concurrency: 2, MaxAckPending: 16}
	for range 3 {
		_, js := s.env.Connect(t)
		s.consume(t, js, cfg, h)
	}
	got.waitTotal(t, len(all), "all processed", s.within(30*time.Second))
	polltest.Until(t, "consumer settled", s.consumerSettled(t, "workers"), polltest.WithTimeout(s.within(10*time.Second)))
	got.exactlyOnce(t, all)
}

func testDrain(t *testing.T, s *suite) {
	all := s.publishKeys(t, []string{"a", "b", "c", "d"}, 25)
	got := newSeen()
	started := make(chan struct{}, len(all))
	release := make(chan struct{})
	_, js := s.env.Connect(t)
	cfg := streams.ConsumerConfig{Name: "drainer", Concurrency: 4, MaxAckPending: 50, Ordering: streams.Unordered}
	c, err := streams.Consume(t.Context(), streams.NewClient(js, s.catalog), s.topic, cfg,
		func(_ context.Context, m *streams.Message[*wrapperspb.StringValue]) error {
			started <- struct{}{}
			<-release // in flight when Stop begins
			got.add(m.Key, m.Payload.GetValue())
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 { // every worker busy, more fetched and queued behind them
		select {
		case <-started:
		case <-time.After(s.within(10 * time.Second)):
			t.Fatal("handlers did not start within 10s")
		}
	}
	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop(t.Context()) }()
	close(release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(s.within(20 * time.Second)):
		t.Fatal("Stop did not return within 20s")
	}
	inFlight := got.total()
	if inFlight < 4 {
		t.Errorf("%d messages finished at Stop, want at least the 4 in flight", inFlight)
	}
	// A new instance takes over what the first handed back.
	s.consume(t, s.env.JetStream, cfg, func(_ context.Context, m *streams.Message[*wrapperspb.StringValue]) error {
		got.add(m.Key, m.Payload.GetValue())
		return nil
	})
	got.waitTotal(t, len(all), "the rest processed", s.within(30*time.Second))
	polltest.Until(t, "consumer settled", s.consumerSettled(t, "drainer"), polltest.WithTimeout(s.within(10*time.Second)))
	got.exactlyOnce(t, all)
}

func testStartPositions(t *testing.T, s *suite) {
	s.publish(t, "k", "old-1")
	second := s.publish(t, "k", "old-2")
	polltest.Until(t, "clock moves past the old messages", func() error {
		if time.Since(s.stream(t, s.topic).CachedInfo().State.LastTime) < 2*time.Millisecond {
			return errors.New("same instant")
		}
		return nil
	}, polltest.WithTimeout(s.within(5*time.Second)))
	mark := time.Now()
	first := func(name string, start streams.Start) chan string {
		ch := make(chan string, 16)
		s.consume(t, s.env.JetStream, streams.ConsumerConfig{Name: name, Start: start},
			func(_ context.Context, m *streams.Message[*wrapperspb.StringValue]) error {
				ch <- m.Payload.GetValue()
				return nil
			})
		return ch
	}
	all := first("from-all", streams.StartAll())
	bySeq := first("from-seq", streams.StartAtSequence(second))
	fresh := first("from-new", streams.StartNew())
	s.publish(t, "k", "new-1")
	byTime := first("from-time", streams.StartAtTime(mark))
	for name, tc := range map[string]struct {
		ch   chan string
		want string
	}{
		"StartAll": {all, "old-1"}, "StartAtSequence": {bySeq, "old-2"}, "StartNew": {fresh, "new-1"}, "StartAtTime": {byTime, "new-1"},
	} {
		select {
		case got := <-tc.ch:
			if got != tc.want {
				t.Errorf("%s: first message %q, want %q", name, got, tc.want)
			}
		case <-time.After(s.within(10 * time.Second)):
			t.Errorf("%s: no message within 10s", name)
		}
	}
}
