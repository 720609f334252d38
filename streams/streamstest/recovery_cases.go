package streamstest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
)

// testRedrive dead-letters a message, fixes the handler, redrives it back
// to the topic and checks the consumer then processes the original event.
func testRedrive(t *testing.T, s *suite) {
	s.publish(t, "BTCUSDT", "needs-fix", streams.WithMsgID("evt-redrive"))
	var fixed atomic.Bool
	got := make(chan *streams.Message[*wrapperspb.StringValue], 1)
	// AckWait short, as in testDeadLetter: a nak lost to a busy cluster
	// comes back in seconds, not after the default's half minute.
	s.consume(t, s.env.JetStream, streams.ConsumerConfig{Name: "redriven", MaxDeliver: 2, Ordering: streams.Unordered, AckWait: 2 * time.Second},
		func(_ context.Context, m *streams.Message[*wrapperspb.StringValue]) error {
			if !fixed.Load() {
				return errors.New("bug in handler")
			}
			got <- m
			return nil
		})
	dlq := streams.NewDLQ(s.env.JetStream, s.catalog)
	polltest.Until(t, "dead-lettered", func() error {
		letters, err := dlq.List(t.Context(), s.topic, streams.DLQFilter{})
		if err == nil && len(letters) != 1 {
			err = fmt.Errorf("%d dead letters", len(letters))
		}
		return err
	}, polltest.WithTimeout(s.within(dlqWait)))
	fixed.Store(true) // the handler is fixed and redeployed
	n, err := dlq.Redrive(t.Context(), s.topic, streams.DLQFilter{})
	if err != nil || n != 1 {
		t.Fatalf("Redrive = %d, %v; want 1 message", n, err)
	}
	select {
	case m := <-got:
		if m.Payload.GetValue() != "needs-fix" || m.Key != "BTCUSDT" || m.Header.Get(streams.HeaderCEID) != "evt-redrive" {
			t.Errorf("redriven message = %q key %q ce-id %q, want the original", m.Payload.GetValue(), m.Key, m.Header.Get(streams.HeaderCEID))
		}
	case <-time.After(s.within(20 * time.Second)):
		t.Fatal("redriven message not processed within 20s")
	}
	if letters, err := dlq.List(t.Context(), s.topic, streams.DLQFilter{}); err != nil || len(letters) != 0 {
		t.Errorf("after redrive the DLQ holds %d letters (err %v), want none", len(letters), err)
	}
}

// testIdempotentHandler delivers the same event three times (two stored
// copies with distinct message ids, one of them failing once) to two
// competing instances: the effect happens once.
func testIdempotentHandler(t *testing.T, s *suite) {
	store, err := streams.NewIdempotencyStore(t.Context(), s.env.JetStream,
		streams.WithIdempotencyBucket("conf_idem_"+streams.StreamName(s.topic)), streams.WithIdempotencyReplicas(s.env.Replicas))
	if err != nil {
		t.Fatal(err)
	}
	const events = 10
	for i := range events {
		for copyNo := range 2 { // the same event stored twice, e.g. by a producer that lost its ack after the window
			data, err := proto.Marshal(wrapperspb.String(fmt.Sprintf("evt-%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			msg := &nats.Msg{Subject: s.topic + ".k", Data: data, Header: nats.Header{}}
			msg.Header.Set(streams.HeaderMsgID, fmt.Sprintf("evt-%d-copy-%d", i, copyNo))
			msg.Header.Set(streams.HeaderCEID, fmt.Sprintf("evt-%d", i))
			msg.Header.Set(streams.HeaderCEType, "google.protobuf.StringValue")
			if _, err := s.env.JetStream.PublishMsg(t.Context(), msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	var mu sync.Mutex
	effects := map[string]int{}
	failed := map[string]bool{}
	h := streams.Idempotent(store, "conf-idem", func(_ context.Context, m *streams.Message[*wrapperspb.StringValue]) error {
		mu.Lock()
		defer mu.Unlock()
		v := m.Payload.GetValue()
		if !failed[v] { // first attempt fails: redelivered
			failed[v] = true
			return errors.New("transient")
		}
		effects[v]++
		return nil
	})
	cfg := streams.ConsumerConfig{Name: "conf-idem", Concurrency: 2, MaxDeliver: 10, Ordering: streams.Unordered,
		BackoffBase: time.Millisecond, BackoffMax: 50 * time.Millisecond}
	for range 2 {
		_, js := s.env.Connect(t)
		s.consume(t, js, cfg, h)
	}
	polltest.Until(t, "every copy acknowledged", s.consumerSettled(t, "conf-idem"), polltest.WithTimeout(s.within(30*time.Second)))
	mu.Lock()
	defer mu.Unlock()
	for i := range events {
		if v := fmt.Sprintf("evt-%d", i); effects[v] != 1 {
			t.Errorf("%s applied %d times, want once", v, effects[v])
		}
	}
}
