package streamstest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tradex-mesh/tradex/streams"
)

func testEnsureIdempotent(t *testing.T, s *suite) {
	before := s.stream(t, s.topic).CachedInfo().Created
	for range 2 {
		if err := streams.EnsureStreams(t.Context(), s.env.JetStream, s.catalog, streams.WithReplicas(s.env.Replicas)); err != nil {
			t.Fatalf("EnsureStreams again: %v", err)
		}
	}
	info := s.stream(t, s.topic).CachedInfo()
	if !info.Created.Equal(before) {
		t.Error("EnsureStreams re-created an existing stream")
	}
	cfg := info.Config
	if cfg.Storage != jetstream.FileStorage || !cfg.DenyDelete || !cfg.DenyPurge || cfg.Duplicates == 0 || cfg.Replicas != s.env.Replicas {
		t.Errorf("financial stream config = storage %s, deny delete %v, deny purge %v, duplicates %s, replicas %d",
			cfg.Storage, cfg.DenyDelete, cfg.DenyPurge, cfg.Duplicates, cfg.Replicas)
	}
	if _, err := s.env.JetStream.Stream(t.Context(), streams.StreamName(streams.DLQTopic(s.topic))); err != nil {
		t.Errorf("dead-letter stream missing: %v", err)
	}
	// A setting EnsureStreams owns, changed by hand, is put back.
	cfg.Duplicates = 10 * time.Second
	if _, err := s.env.JetStream.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if err := streams.EnsureStreams(t.Context(), s.env.JetStream, s.catalog, streams.WithReplicas(s.env.Replicas)); err != nil {
		t.Fatal(err)
	}
	if got := s.stream(t, s.topic).CachedInfo().Config.Duplicates; got != 2*time.Minute {
		t.Errorf("duplicate window after EnsureStreams = %s, want it restored to 2m", got)
	}
}

func testProfileConflict(t *testing.T, s *suite) {
	topic := strings.Replace(s.topic, ".v1", "conflict.v1", 1)
	catalog, err := streams.NewCatalog(streams.Topic{Name: topic, Payload: &wrapperspb.StringValue{}, Profile: streams.Financial})
	if err != nil {
		t.Fatal(err)
	}
	// Someone created the stream by hand with a max age: it would discard
	// financial records.
	if _, err := s.env.JetStream.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: streams.StreamName(topic), Subjects: []string{topic + ".>"}, MaxAge: time.Hour,
		Storage: jetstream.FileStorage, Replicas: s.env.Replicas,
	}); err != nil {
		t.Fatal(err)
	}
	err = streams.EnsureStreams(t.Context(), s.env.JetStream, catalog, streams.WithReplicas(s.env.Replicas))
	if !errors.Is(err, streams.ErrStreamConflict) {
		t.Fatalf("EnsureStreams over a contradicting stream: err = %v, want ErrStreamConflict", err)
	}
	if info := s.stream(t, topic).CachedInfo(); info.Config.MaxAge != time.Hour {
		t.Errorf("the conflicting stream was changed: max age %s", info.Config.MaxAge)
	}
}

func testWrongType(t *testing.T, s *suite) {
	_, err := s.publisher.Publish(t.Context(), s.topic, "k", wrapperspb.Int64(1))
	if !errors.Is(err, streams.ErrWrongType) {
		t.Errorf("publish Int64Value to a StringValue topic: err = %v, want ErrWrongType", err)
	}
	_, err = s.publisher.Publish(t.Context(), "conf.nowhere.v1", "k", wrapperspb.String("x"))
	if !errors.Is(err, streams.ErrUnknownTopic) {
		t.Errorf("publish to an unknown topic: err = %v, want ErrUnknownTopic", err)
	}
	_, err = s.publisher.Publish(t.Context(), s.topic, "a.b", wrapperspb.String("x"))
	if !errors.Is(err, streams.ErrInvalidKey) {
		t.Errorf("publish with key a.b: err = %v, want ErrInvalidKey", err)
	}
	_, err = streams.Consume(t.Context(), streams.NewClient(s.env.JetStream, s.catalog), s.other, streams.ConsumerConfig{Name: "wrong-type"},
		func(_ context.Context, _ *streams.Message[*wrapperspb.StringValue]) error { return nil })
	if !errors.Is(err, streams.ErrWrongType) {
		t.Errorf("consume Int64Value topic with a StringValue handler: err = %v, want ErrWrongType", err)
	}
	if n := s.stream(t, s.topic).CachedInfo().State.Msgs; n != 0 {
		t.Errorf("%d messages stored by rejected publishes", n)
	}
}

func testDuplicatePublish(t *testing.T, s *suite) {
	first := s.publish(t, "k", "once", streams.WithMsgID("order-1"))
	second := s.publish(t, "k", "once", streams.WithMsgID("order-1"))
	if first != second {
		t.Errorf("duplicate publish got sequence %d, want the first's %d", second, first)
	}
	s.publish(t, "k", "other", streams.WithMsgID("order-2"))
	info, err := s.stream(t, s.topic).Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("stream holds %d messages after 2 distinct ids (one twice), want 2", info.State.Msgs)
	}
	// A writer whose id names a position learns that the id is taken.
	_, err = s.publisher.Publish(t.Context(), s.topic, "k", wrapperspb.String("another write"),
		streams.WithMsgID("order-1"), streams.WithDuplicateAsConflict())
	if !errors.Is(err, streams.ErrConcurrency) {
		t.Errorf("duplicate with WithDuplicateAsConflict: %v, want ErrConcurrency", err)
	}
}

func testHeadersAndContext(t *testing.T, s *suite) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:  trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(streams.WithCorrelationID(t.Context(), "corr-7"), sc)
	seq, err := s.publisher.Publish(ctx, s.topic, "BTCUSDT", wrapperspb.String("v"), streams.WithMsgID("evt-1"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.stream(t, s.topic).GetMsg(t.Context(), seq)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		streams.HeaderMsgID: "evt-1", streams.HeaderCEID: "evt-1", streams.HeaderCEType: "google.protobuf.StringValue",
		streams.HeaderCESource: "streamstest", streams.HeaderCESpecVersion: "1.0",
		streams.HeaderContentType: streams.ContentTypeProtobuf, streams.HeaderCorrelationID: "corr-7",
		streams.HeaderTraceParent: "00-0102030405060708090a0b0c0d0e0f10-0102030405060708-01",
	}
	for k, v := range want {
		if got := raw.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, raw.Header.Get(streams.HeaderCETime)); err != nil {
		t.Errorf("ce-time %q is not RFC 3339: %v", raw.Header.Get(streams.HeaderCETime), err)
	}

	// The handler's context continues the trace and the correlation.
	got := make(chan context.Context, 1)
	s.consume(t, s.env.JetStream, streams.ConsumerConfig{Name: "ctx-check"},
		func(ctx context.Context, m *streams.Message[*wrapperspb.StringValue]) error {
			if m.Key != "BTCUSDT" || m.ID != "evt-1" || m.Sequence != seq || m.Payload.GetValue() != "v" {
				t.Errorf("message = key %q id %q seq %d payload %q", m.Key, m.ID, m.Sequence, m.Payload.GetValue())
			}
			got <- ctx
			return nil
		})
	select {
	case hctx := <-got:
		if streams.CorrelationID(hctx) != "corr-7" {
			t.Errorf("handler correlation id = %q, want corr-7", streams.CorrelationID(hctx))
		}
		if tid := trace.SpanContextFromContext(hctx).TraceID(); tid != sc.TraceID() {
			t.Errorf("handler trace id = %s, want %s", tid, sc.TraceID())
		}
	case <-time.After(s.within(10 * time.Second)):
		t.Fatal("handler not called within 10s")
	}
}

func testExpectedLastSubjectSequence(t *testing.T, s *suite) {
	first, err := s.publisher.Publish(t.Context(), s.topic, "acct1", wrapperspb.String("a"), streams.WithExpectedLastSubjectSequence(0))
	if err != nil {
		t.Fatalf("first write to an empty subject: %v", err)
	}
	s.publish(t, "acct2", "unrelated") // other keys do not matter
	if _, err := s.publisher.Publish(t.Context(), s.topic, "acct1", wrapperspb.String("b"), streams.WithExpectedLastSubjectSequence(first)); err != nil {
		t.Fatalf("write expecting the last sequence: %v", err)
	}
	_, err = s.publisher.Publish(t.Context(), s.topic, "acct1", wrapperspb.String("stale"), streams.WithExpectedLastSubjectSequence(first))
	if !errors.Is(err, streams.ErrConcurrency) {
		t.Errorf("write with a stale expected sequence: err = %v, want ErrConcurrency", err)
	}
}

func testAtomicBatch(t *testing.T, s *suite) {
	records := func(values ...string) []streams.Record {
		var out []streams.Record
		for i, v := range values {
			out = append(out, streams.Record{Topic: s.topic, Key: "k" + strconv.Itoa(i%2), Msg: wrapperspb.String(v)})
		}
		return out
	}
	first, last, err := s.publisher.PublishAtomic(t.Context(), records("a", "b", "c"))
	if err != nil {
		t.Fatalf("atomic batch: %v", err)
	}
	if last-first != 2 {
		t.Errorf("atomic batch of 3 stored at %d..%d", first, last)
	}
	// A batch whose last record fails its expectation stores nothing.
	bad := records("d", "e")
	bad[1].Opts = []streams.PublishOption{streams.WithExpectedLastSubjectSequence(1)} // k1's last is not 1
	if _, _, err := s.publisher.PublishAtomic(t.Context(), bad); err == nil {
		t.Fatal("atomic batch with a failing expectation was accepted")
	}
	info, err := s.stream(t, s.topic).Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Errorf("stream holds %d messages after a good batch of 3 and a rejected one, want 3", info.State.Msgs)
	}
	if _, _, err := s.publisher.PublishAtomic(t.Context(), []streams.Record{
		{Topic: s.topic, Key: "k", Msg: wrapperspb.String("x")}, {Topic: s.other, Key: "k", Msg: wrapperspb.Int64(1)},
	}); !errors.Is(err, streams.ErrInvalidConfig) {
		t.Errorf("atomic batch over two topics: err = %v, want ErrInvalidConfig", err)
	}
}
