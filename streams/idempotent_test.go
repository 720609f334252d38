package streams_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
)

// idemEffects counts a handler's side effects per event id.
type idemEffects struct {
	mu     sync.Mutex
	counts map[string]int
}

func (e *idemEffects) apply(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.counts == nil {
		e.counts = map[string]int{}
	}
	e.counts[id]++
}

func (e *idemEffects) count(id string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counts[id]
}

func (e *idemEffects) snapshot() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int, len(e.counts))
	for k, v := range e.counts {
		out[k] = v
	}
	return out
}

// idemHandler applies one effect per call, keyed by the payload's event id.
func idemHandler(e *idemEffects) streams.Handler[*enginev1.EngineEvent] {
	return func(_ context.Context, m *streams.Message[*enginev1.EngineEvent]) error {
		e.apply(m.Payload.GetEventId())
		return nil
	}
}

// idemMessage hand-builds a delivery of event ceID carried with msgID.
func idemMessage(ceID, msgID string) *streams.Message[*enginev1.EngineEvent] {
	return &streams.Message[*enginev1.EngineEvent]{
		Topic: streams.TopicEngineEvent, Key: "BTCUSDT", Subject: streams.TopicEngineEvent + ".BTCUSDT",
		Payload: &enginev1.EngineEvent{EventId: ceID, InstrumentId: "BTCUSDT"},
		Header:  nats.Header{streams.HeaderCEID: {ceID}, streams.HeaderMsgID: {msgID}},
		ID:      msgID, Delivery: 1,
	}
}

// idemRendezvous lets a handler wait until something happened to its event.
type idemRendezvous struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

func (r *idemRendezvous) wait(id string) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.get(id)
}

func (r *idemRendezvous) release(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := r.get(id)
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func (r *idemRendezvous) get(id string) chan struct{} {
	if r.ch[id] == nil {
		r.ch[id] = make(chan struct{})
	}
	return r.ch[id]
}

func idemStore(t *testing.T, js jetstream.JetStream, opts ...streams.IdempotencyOption) *streams.IdempotencyStore {
	t.Helper()
	s, err := streams.NewIdempotencyStore(t.Context(), js, opts...)
	if err != nil {
		t.Fatalf("NewIdempotencyStore: %v", err)
	}
	return s
}

// idemRecord reads the record of id in scope: its state, or "" when there is none.
func idemRecord(t *testing.T, js jetstream.JetStream, scope, id string) string {
	t.Helper()
	kv, err := js.KeyValue(t.Context(), streams.DefaultIdempotencyBucket)
	if err != nil {
		t.Fatalf("open bucket: %v", err)
	}
	e, err := kv.Get(t.Context(), streams.IdempotencyKey(scope, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ""
	}
	if err != nil {
		t.Fatalf("get record: %v", err)
	}
	var r struct{ State string }
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		t.Fatalf("record %q: %v", e.Value(), err)
	}
	return r.State
}

func TestIdempotentDuplicateRunsOnce(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	var effects idemEffects
	h := streams.Idempotent(idemStore(t, s.JetStream()), "wallet-settlement", idemHandler(&effects))

	// The same event twice under different message ids (a producer retry
	// outside the duplicate window), then a plain redelivery.
	for _, m := range []*streams.Message[*enginev1.EngineEvent]{
		idemMessage("BTCUSDT:7:0", "msg-1"), idemMessage("BTCUSDT:7:0", "msg-2"), idemMessage("BTCUSDT:7:0", "msg-1"),
	} {
		if err := h(t.Context(), m); err != nil {
			t.Fatalf("delivery %s: %v", m.ID, err)
		}
	}
	if got := effects.count("BTCUSDT:7:0"); got != 1 {
		t.Errorf("effect applied %d times, want 1", got)
	}
	if got := idemRecord(t, s.JetStream(), "wallet-settlement", "BTCUSDT:7:0"); got != "done" {
		t.Errorf("record state %q, want done", got)
	}
}

func TestIdempotentScopesAreIndependent(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	store := idemStore(t, s.JetStream())
	var effects idemEffects
	for _, scope := range []string{"wallet-settlement", "order-status", "wallet-settlement"} {
		if err := streams.Idempotent(store, scope, idemHandler(&effects))(t.Context(), idemMessage("e1", "m1")); err != nil {
			t.Fatalf("scope %s: %v", scope, err)
		}
	}
	if got := effects.count("e1"); got != 2 {
		t.Errorf("effect applied %d times across two scopes, want 2", got)
	}
}

func TestIdempotentFallsBackToMessageID(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	var effects idemEffects
	h := streams.Idempotent(idemStore(t, s.JetStream()), "c", idemHandler(&effects))
	m := idemMessage("e1", "m1")
	m.Header = nil // no ce-id: the message id identifies the event
	for range 2 {
		if err := h(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	if got := effects.count("e1"); got != 1 {
		t.Errorf("effect applied %d times, want 1", got)
	}
	if got := idemRecord(t, s.JetStream(), "c", "m1"); got != "done" {
		t.Errorf("record keyed on the message id is %q, want done", got)
	}

	m.ID = ""
	if err := h(t.Context(), m); !errors.Is(err, streams.ErrNoEventID) {
		t.Errorf("message without ids: err = %v, want ErrNoEventID", err)
	}
}

func TestIdempotentFailedHandlerLeavesNoRecord(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	var effects idemEffects
	failures := 1
	boom := errors.New("ledger unavailable")
	h := streams.Idempotent(idemStore(t, s.JetStream()), "c", func(ctx context.Context, m *streams.Message[*enginev1.EngineEvent]) error {
		if failures > 0 {
			failures--
			return boom // fails before its effect
		}
		return idemHandler(&effects)(ctx, m)
	})
	m := idemMessage("e1", "m1")
	if err := h(t.Context(), m); !errors.Is(err, boom) {
		t.Fatalf("first delivery: err = %v, want the handler's error", err)
	}
	if got := idemRecord(t, s.JetStream(), "c", "e1"); got != "" {
		t.Fatalf("record after a failure is %q, want none", got)
	}
	for range 2 { // the redelivery runs, the one after it is skipped
		m.Delivery++
		if err := h(t.Context(), m); err != nil {
			t.Fatalf("delivery %d: %v", m.Delivery, err)
		}
	}
	if got := effects.count("e1"); got != 1 {
		t.Errorf("effect applied %d times, want 1", got)
	}
}

func TestIdempotentConcurrentDuplicateIsInFlight(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	store := idemStore(t, s.JetStream())
	var effects idemEffects
	started, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- store.Do(t.Context(), "c", "e1", func(context.Context) error {
			close(started)
			<-release
			effects.apply("e1")
			return nil
		})
	}()
	<-started
	if err := store.Do(t.Context(), "c", "e1", func(context.Context) error { effects.apply("e1"); return nil }); !errors.Is(err, streams.ErrInFlight) {
		t.Errorf("duplicate while the first runs: err = %v, want ErrInFlight", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first: %v", err)
	}
	if err := store.Do(t.Context(), "c", "e1", func(context.Context) error { effects.apply("e1"); return nil }); err != nil {
		t.Errorf("duplicate after the first finished: %v", err)
	}
	if got := effects.count("e1"); got != 1 {
		t.Errorf("effect applied %d times, want 1", got)
	}
}

func TestIdempotentClaimExpiresAfterCrash(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	store := idemStore(t, s.JetStream(), streams.WithClaimTTL(time.Second), streams.WithIdempotencyTTL(time.Minute))
	var effects idemEffects
	// The first instance claims the event and "dies": its handler never
	// returns while the claim ages out.
	stuck, unstick := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- store.Do(t.Context(), "c", "e1", func(context.Context) error {
			close(stuck)
			<-unstick
			return nil
		})
	}()
	<-stuck
	// A retry elsewhere is refused until the claim expires, then runs.
	polltest.True(t, "the claim to expire", func() bool {
		err := store.Do(t.Context(), "c", "e1", func(context.Context) error { effects.apply("e1"); return nil })
		if err != nil && !errors.Is(err, streams.ErrInFlight) {
			t.Fatalf("retry: %v", err)
		}
		return err == nil
	}, polltest.WithTimeout(15*time.Second))
	if got := effects.count("e1"); got != 1 {
		t.Errorf("effect applied %d times after the claim expired, want 1", got)
	}
	close(unstick) // the late handler finishes: it must not fail or reopen the event
	if err := <-first; err != nil {
		t.Errorf("late handler: %v", err)
	}
	if err := store.Do(t.Context(), "c", "e1", func(context.Context) error { effects.apply("e1"); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := effects.count("e1"); got != 1 {
		t.Errorf("effect applied %d times, want 1", got)
	}
	if got := idemRecord(t, s.JetStream(), "c", "e1"); got != "done" {
		t.Errorf("record state %q, want done", got)
	}
}

func TestIdempotentSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var effects idemEffects
	m := idemMessage("e1", "m1")

	s1 := embeddedtest.New(t, embeddedtest.WithStoreDir(dir))
	h1 := streams.Idempotent(idemStore(t, s1.JetStream()), "c", idemHandler(&effects))
	if err := h1(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), embeddedtest.CleanupTimeout)
	defer cancel()
	if err := s1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// A new server on the same store and a new store over the same bucket.
	s2 := embeddedtest.New(t, embeddedtest.WithStoreDir(dir))
	h2 := streams.Idempotent(idemStore(t, s2.JetStream()), "c", idemHandler(&effects))
	if err := h2(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if got := effects.count("e1"); got != 1 {
		t.Errorf("effect applied %d times across a restart, want 1", got)
	}
}

func TestIdempotentCompetingConsumers(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	js := s.JetStream()
	catalog := streams.DefaultCatalog()
	if err := streams.EnsureStreams(t.Context(), js, catalog); err != nil {
		t.Fatal(err)
	}
	// Each event's first copy to win the claim holds it until its other
	// copy has been turned away with ErrInFlight, so every event is
	// contended; with more workers than events nothing starves.
	const events = 10
	var effects, turnedAway idemEffects
	rv := idemRendezvous{ch: map[string]chan struct{}{}}
	inner := func(ctx context.Context, m *streams.Message[*enginev1.EngineEvent]) error {
		select {
		case <-rv.wait(m.Payload.GetEventId()):
		case <-ctx.Done():
			return ctx.Err()
		}
		effects.apply(m.Payload.GetEventId())
		return nil
	}
	cfg := streams.ConsumerConfig{
		Name: "wallet-settlement", Ordering: streams.Unordered, Concurrency: 2 * events, MaxDeliver: 50,
		BackoffBase: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
	}
	for instance := range 2 {
		nc, err := s.Connect()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		ijs, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		store := idemStore(t, ijs, streams.WithIdempotencyOwner(fmt.Sprintf("instance-%d", instance)))
		h := streams.Idempotent(store, cfg.Name, inner)
		c, err := streams.Consume(t.Context(), streams.NewClient(ijs, catalog), streams.TopicEngineEvent, cfg,
			func(ctx context.Context, m *streams.Message[*enginev1.EngineEvent]) error {
				err := h(ctx, m)
				if errors.Is(err, streams.ErrInFlight) {
					turnedAway.apply(m.Payload.GetEventId())
					rv.release(m.Payload.GetEventId())
				}
				return err
			})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
			defer cancel()
			if err := c.Stop(ctx); err != nil {
				t.Error(err)
			}
		})
	}

	// Every event is stored twice, under two keys and two message ids but
	// one ce-id, so the copies can reach both instances at the same time.
	for i := range events {
		id := fmt.Sprintf("BTCUSDT:%d:0", i)
		data, err := proto.Marshal(&enginev1.EngineEvent{EventId: id, InstrumentId: "BTCUSDT"})
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"BTCUSDT", "ETHUSDT"} {
			msg := &nats.Msg{Subject: streams.TopicEngineEvent + "." + key, Data: data, Header: nats.Header{}}
			msg.Header.Set(streams.HeaderMsgID, id+"/"+key)
			msg.Header.Set(streams.HeaderCEID, id)
			msg.Header.Set(streams.HeaderCEType, "tradex.engine.v1.EngineEvent")
			if _, err := js.PublishMsgAsync(msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-t.Context().Done():
		t.Fatal(t.Context().Err())
	}

	stream, err := js.Stream(t.Context(), streams.StreamName(streams.TopicEngineEvent))
	if err != nil {
		t.Fatal(err)
	}
	polltest.True(t, "every message to be acknowledged", func() bool {
		info, err := js.Consumer(t.Context(), stream.CachedInfo().Config.Name, cfg.Name)
		if err != nil {
			t.Fatal(err)
		}
		ci := info.CachedInfo()
		return ci.AckFloor.Stream == 2*events && ci.NumAckPending == 0 && ci.NumPending == 0
	})
	got := effects.snapshot()
	if len(got) != events {
		t.Errorf("%d events had an effect, want %d", len(got), events)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s: effect applied %d times, want 1", id, n)
		}
		if turnedAway.count(id) == 0 {
			t.Errorf("event %s: no copy was turned away, want each contended", id)
		}
	}
	dlq, err := js.Stream(t.Context(), streams.StreamName(streams.DLQTopic(streams.TopicEngineEvent)))
	if err != nil {
		t.Fatal(err)
	}
	if n := dlq.CachedInfo().State.Msgs; n != 0 {
		t.Errorf("%d messages dead-lettered, want none", n)
	}
}

func TestNewIdempotencyStoreRejectsBadOptions(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	tests := map[string][]streams.IdempotencyOption{
		"replicas 0":             {streams.WithIdempotencyReplicas(0)},
		"claim TTL under 1s":     {streams.WithClaimTTL(500 * time.Millisecond)},
		"claim TTL not whole":    {streams.WithClaimTTL(1500 * time.Millisecond)},
		"done TTL below claim's": {streams.WithClaimTTL(time.Minute), streams.WithIdempotencyTTL(30 * time.Second)},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := streams.NewIdempotencyStore(t.Context(), s.JetStream(), opts...); !errors.Is(err, streams.ErrInvalidConfig) {
				t.Errorf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	store := idemStore(t, s.JetStream(), streams.WithIdempotencyBucket("idem_keys"))
	valid := regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)
	ids := []string{
		"ord-123", "BTCUSDT:7:0", "dlq:ENGINE_EVENT_V1:5:wallet-settlement", "with space", "ünïcode",
		"a.b.c", "=starts-with-equals", strings.Repeat("x", 64), strings.Repeat("x", 65), "",
	}
	seen := map[string]string{}
	for _, id := range ids {
		key := streams.IdempotencyKey("wallet-settlement", id)
		if !valid.MatchString(key) || strings.Count(key, ".") != 1 {
			t.Errorf("key of %q is %q: not two valid KV key tokens", id, key)
		}
		if other, dup := seen[key]; dup {
			t.Errorf("ids %q and %q share key %q", id, other, key)
		}
		seen[key] = id
		ran := false
		if err := store.Do(t.Context(), "wallet-settlement", id, func(context.Context) error { ran = true; return nil }); err != nil || !ran {
			t.Errorf("Do(%q): ran %v, err %v", id, ran, err)
		}
	}
	if got := streams.IdempotencyKey("wallet-settlement", "ord-123"); got != "wallet-settlement.ord-123" {
		t.Errorf("a plain id is encoded as %q, want it readable", got)
	}
}
