package metadata_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/services/metadata"
	"github.com/tradex-mesh/tradex/streams"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 15 * time.Second

// epoch is the fake clock's start.
var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a settable clock for Deps.Clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer collects a service's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is one embedded JetStream with the topic streams provisioned.
type env struct {
	srv *embeddedtest.Server
	js  jetstream.JetStream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := embeddedtest.New(t)
	if err := streams.EnsureStreams(t.Context(), s.JetStream(), streams.DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
	return &env{srv: s, js: s.JetStream()}
}

// running is a started service with a Connect client over real HTTP.
type running struct {
	svc    *metadata.Service
	client metadatav1connect.MetadataServiceClient
	clock  *clock
	logs   *logBuffer
	http   *httptest.Server
	stop   func() // cancels Run and waits for it
}

// serviceOption changes how start builds a service.
type serviceOption func(*metadata.Config, *metadata.Deps)

// start builds a service on e, runs it until the test ends (or stop) and
// waits until it is ready.
func (e *env) start(t *testing.T, opts ...serviceOption) *running {
	t.Helper()
	r := &running{clock: &clock{now: epoch}, logs: &logBuffer{}}
	cfg := metadata.Default()
	client := streams.NewClient(e.js, streams.DefaultCatalog())
	deps := metadata.Deps{
		Logger:    slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Streams:   client,
		Publisher: client.Publisher(streams.WithSource("tradex/metadata")),
		Clock:     r.clock.Now,
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	svc, err := metadata.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	r.svc = svc
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(r.stop)
	select {
	case <-svc.Ready():
	case err := <-done:
		t.Fatalf("Run ended before ready: %v", err)
	case <-time.After(waitTimeout):
		t.Fatalf("service not ready after %s; logs:\n%s", waitTimeout, r.logs)
	}

	mux := http.NewServeMux()
	mux.Handle(svc.Handler())
	r.http = httptest.NewUnstartedServer(mux)
	r.http.EnableHTTP2 = true
	r.http.StartTLS()
	t.Cleanup(r.http.Close)
	r.client = metadatav1connect.NewMetadataServiceClient(r.http.Client(), r.http.URL)
	return r
}

// grpcClient is a gRPC (HTTP/2) client of the same server.
func (r *running) grpcClient() metadatav1connect.MetadataServiceClient {
	return metadatav1connect.NewMetadataServiceClient(r.http.Client(), r.http.URL, connect.WithGRPC())
}

// events collects the messages of one topic from its start.
type events[T proto.Message] struct {
	mu   sync.Mutex
	msgs []*streams.Message[T]
}

// collect starts a consumer of topic that records every message.
func collect[T proto.Message](t *testing.T, js jetstream.JetStream, topic string) *events[T] {
	t.Helper()
	ev := &events[T]{}
	c, err := streams.Consume(t.Context(), streams.NewClient(js, streams.DefaultCatalog()), topic,
		streams.ConsumerConfig{Name: "test-" + nuid.Next()},
		func(_ context.Context, m *streams.Message[T]) error {
			ev.mu.Lock()
			defer ev.mu.Unlock()
			ev.msgs = append(ev.msgs, m)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), waitTimeout)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return ev
}

// wait returns the first n messages once they arrived.
func (ev *events[T]) wait(t *testing.T, n int) []*streams.Message[T] {
	t.Helper()
	var got []*streams.Message[T]
	polltest.Until(t, fmt.Sprintf("%d events", n), func() error {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		if len(ev.msgs) < n {
			return fmt.Errorf("%d so far", len(ev.msgs))
		}
		got = append([]*streams.Message[T](nil), ev.msgs[:n]...)
		return nil
	})
	return got
}

// streamMsgs is how many messages the stream of topic stores.
func streamMsgs(t *testing.T, js jetstream.JetStream, topic string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), streams.StreamName(topic))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// wantCode fails unless err is a Connect error with code.
func wantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != code {
		t.Fatalf("error %v: want code %v", err, code)
	}
}

// codeErr is the Connect error err, failing the test unless it has code.
func codeErr(t *testing.T, err error, code connect.Code) *connect.Error {
	t.Helper()
	wantCode(t, err, code)
	var ce *connect.Error
	errors.As(err, &ce)
	return ce
}

// wantInvalid fails unless err is InvalidArgument naming field.
func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	ce := codeErr(t, err, connect.CodeInvalidArgument)
	if !strings.HasPrefix(ce.Message(), field+": ") {
		t.Fatalf("message %q does not start with %q", ce.Message(), field+": ")
	}
}

func TestSeedCreatesDemoInstruments(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	created := collect[*metadatav1.InstrumentCreated](t, e.js, streams.TopicInstrumentCreated)
	r := e.start(t)

	res, err := r.client.ListInstruments(t.Context(), &metadatav1.ListInstrumentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range res.GetInstruments() {
		got = append(got, fmt.Sprintf("%s %s %s/%s tick=%s lot=%s min=%s notional=%s scales=%d/%d %s rev=%d",
			in.GetSymbol(), in.GetKind(), in.GetBaseAsset(), in.GetQuoteAsset(), in.GetTickSize(), in.GetLotSize(),
			in.GetMinQuantity(), in.GetMinNotional(), in.GetPriceScale(), in.GetQuantityScale(), in.GetStatus(), in.GetRevision()))
	}
	want := []string{
		"BTCUSDT INSTRUMENT_KIND_SPOT BTC/USDT tick=0.01 lot=0.00001 min=0.00001 notional=5 scales=2/5 INSTRUMENT_STATUS_TRADING rev=1",
		"BTCUSDT-PERP INSTRUMENT_KIND_PERPETUAL BTC/USDT tick=0.1 lot=0.001 min=0.001 notional=5 scales=1/3 INSTRUMENT_STATUS_TRADING rev=1",
		"ETHUSDT INSTRUMENT_KIND_SPOT ETH/USDT tick=0.01 lot=0.0001 min=0.0001 notional=5 scales=2/4 INSTRUMENT_STATUS_TRADING rev=1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("instruments:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	msgs := created.wait(t, 3)
	byID := map[string]*metadatav1.InstrumentCreated{}
	for _, m := range msgs {
		byID[m.ID] = m.Payload
		if m.Key != m.Payload.GetInstrument().GetSymbol() {
			t.Errorf("event %s has key %s", m.ID, m.Key)
		}
		if m.Header.Get(streams.HeaderCESource) != "tradex/metadata" {
			t.Errorf("event %s ce-source %q", m.ID, m.Header.Get(streams.HeaderCESource))
		}
	}
	for _, in := range res.GetInstruments() {
		ev, ok := byID["instrument:"+in.GetSymbol()+":1"]
		if !ok {
			t.Fatalf("no created event with id instrument:%s:1 among %v", in.GetSymbol(), byID)
		}
		if !proto.Equal(ev.GetInstrument(), in) || ev.GetActor() != "metadata" {
			t.Errorf("created event %v, want instrument %v by metadata", ev, in)
		}
		if !in.GetCreatedAt().AsTime().Equal(epoch) {
			t.Errorf("%s created at %v, want the clock's %v", in.GetSymbol(), in.GetCreatedAt().AsTime(), epoch)
		}
	}
}

func TestSeedIsIdempotentAcrossRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := e.start(t)
	if _, err := first.client.HaltInstrument(t.Context(), &metadatav1.HaltInstrumentRequest{Symbol: "ETHUSDT", Reason: "maintenance"}); err != nil {
		t.Fatal(err)
	}
	first.stop()
	createdBefore := streamMsgs(t, e.js, streams.TopicInstrumentCreated)
	updatedBefore := streamMsgs(t, e.js, streams.TopicInstrumentUpdated)
	if createdBefore != 3 || updatedBefore != 1 {
		t.Fatalf("after the first start: %d created and %d updated events, want 3 and 1", createdBefore, updatedBefore)
	}

	// A restart, and a second instance beside it: the seed finds every
	// instrument and neither creates nor publishes anything.
	second := e.start(t)
	third := e.start(t)
	for _, r := range []*running{second, third} {
		res, err := r.client.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: "ETHUSDT"})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetInstrument().GetRevision() != 2 || res.GetInstrument().GetStatusReason() != "maintenance" {
			t.Fatalf("ETHUSDT after restart: %v; the seed must not change an existing instrument", res.GetInstrument())
		}
	}
	if got := streamMsgs(t, e.js, streams.TopicInstrumentCreated); got != createdBefore {
		t.Fatalf("created events after restart: %d, want %d", got, createdBefore)
	}
	if got := streamMsgs(t, e.js, streams.TopicInstrumentUpdated); got != updatedBefore {
		t.Fatalf("updated events after restart: %d, want %d", got, updatedBefore)
	}
	if strings.Contains(second.logs.String(), "instrument seeded") {
		t.Fatalf("second start seeded something:\n%s", second.logs)
	}
}

func TestInProcessHandlerReturnsConnectErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.start(t)
	h := r.svc.InProcess()
	res, err := h.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: "BTCUSDT"})
	if err != nil || res.GetInstrument().GetSymbol() != "BTCUSDT" {
		t.Fatalf("GetInstrument = %v, %v", res, err)
	}
	_, err = h.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: "NOPE"})
	wantCode(t, err, connect.CodeNotFound)
}

func TestInternalErrorsAreGenericAndLoggedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.start(t)
	kv, err := e.js.KeyValue(t.Context(), "tradex_instruments")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "BROKEN", []byte("\xff\xff not a proto")); err != nil {
		t.Fatal(err)
	}
	_, err = r.client.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: "BROKEN"})
	ce := codeErr(t, err, connect.CodeInternal)
	if ce.Message() != "internal error" {
		t.Fatalf("client sees %q, want the generic message", ce.Message())
	}
	logs := r.logs.String()
	if n := strings.Count(logs, `msg="internal error"`); n != 1 || !strings.Contains(logs, "decode instrument BROKEN") {
		t.Fatalf("want the detail logged once, got %d lines:\n%s", n, logs)
	}
}

func TestUnavailableWhenTheBrokerIsGone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	nc, err := e.srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	r := e.start(t, func(_ *metadata.Config, d *metadata.Deps) {
		d.Streams = streams.NewClient(js, streams.DefaultCatalog())
		d.Publisher = d.Streams.Publisher()
	})
	nc.Close()
	_, err = r.client.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: "BTCUSDT"})
	ce := codeErr(t, err, connect.CodeUnavailable)
	if strings.Contains(ce.Message(), "nats") {
		t.Fatalf("message %q leaks the broker's error", ce.Message())
	}
	_, err = r.client.SetConfig(t.Context(), &metadatav1.SetConfigRequest{Key: "a", Value: "1"})
	wantCode(t, err, connect.CodeUnavailable)
}

func TestNewChecksDeps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	client := streams.NewClient(e.js, streams.DefaultCatalog())
	pub := client.Publisher()
	if _, err := metadata.New(metadata.Default(), metadata.Deps{Publisher: pub}); err == nil {
		t.Fatal("New without Streams succeeded")
	}
	if _, err := metadata.New(metadata.Default(), metadata.Deps{Streams: client}); err == nil {
		t.Fatal("New without Publisher succeeded")
	}
	bad := metadata.Default()
	bad.Actor = ""
	if _, err := metadata.New(bad, metadata.Deps{Streams: client, Publisher: pub}); err == nil {
		t.Fatal("New with an invalid config succeeded")
	}
	for _, bucket := range []string{"no_such_bucket", streams.StoreWalletSnapshots} {
		cfg := metadata.Default()
		cfg.ConfigBucket = bucket
		if _, err := metadata.New(cfg, metadata.Deps{Streams: client, Publisher: pub}); err == nil || !strings.Contains(err.Error(), bucket) {
			t.Fatalf("New with config bucket %s (not a KV store of the catalog) = %v, want an error naming it", bucket, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*metadata.Config)
		want   string
	}{
		{"default", func(*metadata.Config) {}, ""},
		{"no seed", func(c *metadata.Config) { c.Seed = nil }, ""},
		{"no bucket", func(c *metadata.Config) { c.ConfigBucket = "" }, "bucket names are required"},
		{"same bucket", func(c *metadata.Config) { c.ConfigBucket = c.InstrumentsBucket }, "share bucket"},
		{"actor", func(c *metadata.Config) { c.Actor = "" }, "actor is required"},
		{"publish timeout", func(c *metadata.Config) { c.PublishTimeout = 0 }, "publish timeout"},
		{"repair interval", func(c *metadata.Config) { c.RepairInterval = -time.Second }, "repair interval"},
		{"max value", func(c *metadata.Config) { c.MaxConfigValueBytes = 0 }, "max config value bytes"},
		{"bad seed", func(c *metadata.Config) { c.Seed[0].TickSize = "0.001" }, "seed BTCUSDT: tick_size"},
		{"seed twice", func(c *metadata.Config) { c.Seed = append(c.Seed, c.Seed[0]) }, "seed BTCUSDT listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := metadata.Default()
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
