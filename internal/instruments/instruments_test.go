package instruments_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	"github.com/tradex-mesh/tradex/internal/instruments"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/services/metadata"
	"github.com/tradex-mesh/tradex/streams"
)

const waitTimeout = 15 * time.Second

// newMesh starts a broker with the catalog's streams and returns a client
// of it.
func newMesh(t *testing.T) *streams.Client {
	t.Helper()
	s := embeddedtest.New(t)
	if err := streams.EnsureStreams(t.Context(), s.JetStream(), streams.DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
	return streams.NewClient(s.JetStream(), streams.DefaultCatalog())
}

// counting counts the calls to a client.
type counting struct {
	instruments.Client
	gets, lists atomic.Int64
}

func (c *counting) GetInstrument(ctx context.Context, req *metadatav1.GetInstrumentRequest) (*metadatav1.GetInstrumentResponse, error) {
	c.gets.Add(1)
	return c.Client.GetInstrument(ctx, req)
}

func (c *counting) ListInstruments(ctx context.Context, req *metadatav1.ListInstrumentsRequest) (*metadatav1.ListInstrumentsResponse, error) {
	c.lists.Add(1)
	return c.Client.ListInstruments(ctx, req)
}

// startMetadata runs the metadata service and returns a Connect client of it
// over real HTTP.
func startMetadata(t *testing.T, mesh *streams.Client) metadatav1connect.MetadataServiceClient {
	t.Helper()
	svc, err := metadata.New(metadata.Default(), metadata.Deps{
		Streams:   mesh,
		Publisher: mesh.Publisher(streams.WithSource("tradex/metadata")),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("metadata Run: %v", err)
		}
	})
	select {
	case <-svc.Ready():
	case <-time.After(waitTimeout):
		t.Fatal("metadata service not ready")
	}
	mux := http.NewServeMux()
	mux.Handle(svc.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return metadatav1connect.NewMetadataServiceClient(srv.Client(), srv.URL)
}

func newCache(t *testing.T, client instruments.Client, mesh *streams.Client, opts ...instruments.Option) *instruments.Cache {
	t.Helper()
	c, err := instruments.New(t.Context(), client, mesh, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), waitTimeout)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func TestCacheFollowsTheMetadataService(t *testing.T) {
	t.Parallel()
	mesh := newMesh(t)
	admin := startMetadata(t, mesh)
	client := &counting{Client: admin}
	c := newCache(t, client, mesh, instruments.WithConsumerName("test-instruments"))

	if c.Len() != 3 || client.lists.Load() != 1 {
		t.Fatalf("after New: %d instruments from %d lists, want the 3 seeded from 1", c.Len(), client.lists.Load())
	}
	in, err := c.Get(t.Context(), "BTCUSDT")
	if err != nil || in.GetTickSize() != "0.01" || in.GetRevision() != 1 {
		t.Fatalf("Get = %v, %v", in, err)
	}

	// An update reaches the cache by its event, not by a load.
	if _, err := admin.UpdateInstrument(t.Context(), &metadatav1.UpdateInstrumentRequest{Symbol: "BTCUSDT", TickSize: proto.String("0.1")}); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the cache sees the new tick size", func() error {
		in, err := c.Get(t.Context(), "BTCUSDT")
		if err != nil {
			return err
		}
		if in.GetTickSize() != "0.1" || in.GetRevision() != 2 {
			return fmt.Errorf("tick %s revision %d", in.GetTickSize(), in.GetRevision())
		}
		return nil
	})
	r, err := c.Rules(t.Context(), "BTCUSDT")
	if err != nil || r.TickSize != 10 || r.PriceScale != 2 || r.Revision != 2 {
		t.Fatalf("Rules = %+v, %v; want the new tick 10 at scale 2", r, err)
	}

	// So do halts and new instruments.
	if _, err := admin.HaltInstrument(t.Context(), &metadatav1.HaltInstrumentRequest{Symbol: "ETHUSDT", Reason: "audit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateInstrument(t.Context(), &metadatav1.CreateInstrumentRequest{
		Symbol: "SOLUSDT", Kind: commonv1.InstrumentKind_INSTRUMENT_KIND_SPOT, BaseAsset: "SOL", QuoteAsset: "USDT", TickSize: "0.01", LotSize: "0.01",
	}); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the cache sees the halt and the new instrument", func() error {
		if c.Len() != 4 {
			return fmt.Errorf("%d instruments", c.Len())
		}
		r, err := c.Rules(t.Context(), "ETHUSDT")
		if err != nil {
			return err
		}
		if err := r.CheckTrading(); !errors.Is(err, instruments.ErrHalted) {
			return fmt.Errorf("ETHUSDT CheckTrading = %w", err)
		}
		return nil
	})
	if _, err := c.Get(t.Context(), "SOLUSDT"); err != nil {
		t.Fatal(err)
	}
	if n := client.gets.Load(); n != 0 {
		t.Fatalf("%d loads from the service; every instrument should have come from the list or an event", n)
	}

	// Unknown symbols are not found; symbols that cannot be topic keys are
	// refused without asking.
	_, err = c.Get(t.Context(), "DOGEUSDT")
	if !errors.Is(err, instruments.ErrNotFound) || connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("unknown symbol: %v", err)
	}
	if _, err := c.Get(t.Context(), "BTC.USDT"); !errors.Is(err, instruments.ErrNotFound) {
		t.Fatalf("invalid symbol: %v", err)
	}
	if n := client.gets.Load(); n != 1 {
		t.Fatalf("%d loads, want 1 (the unknown symbol)", n)
	}
}

// Trades answers from memory for an asset an instrument held trades, and
// asks the service otherwise: an instrument created a moment ago counts
// before its event arrives.
func TestCacheTrades(t *testing.T) {
	t.Parallel()
	mesh := newMesh(t)
	admin := startMetadata(t, mesh)
	client := &counting{Client: admin}
	c := newCache(t, client, mesh)
	for _, asset := range []string{"BTC", "USDT", "ETH"} {
		if ok, err := c.Trades(t.Context(), asset); err != nil || !ok {
			t.Errorf("Trades(%s) = %v, %v; want true", asset, ok, err)
		}
	}
	if n := client.lists.Load(); n != 1 {
		t.Errorf("%d lists; want only New's: held instruments answer", n)
	}
	if ok, err := c.Trades(t.Context(), "DOGE"); err != nil || ok {
		t.Errorf("Trades(DOGE) = %v, %v; want false", ok, err)
	}
	if n := client.lists.Load(); n != 2 {
		t.Errorf("%d lists; want 2: an asset no held instrument trades is asked for", n)
	}
	if _, err := admin.CreateInstrument(t.Context(), &metadatav1.CreateInstrumentRequest{
		Symbol: "DOGEUSDT", Kind: commonv1.InstrumentKind_INSTRUMENT_KIND_SPOT, BaseAsset: "DOGE", QuoteAsset: "USDT", TickSize: "0.0001", LotSize: "1",
	}); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Trades(t.Context(), "DOGE"); err != nil || !ok {
		t.Errorf("Trades(DOGE) after its instrument was created = %v, %v; want true", ok, err)
	}
}

// failingList is a client whose List fails, so that nothing is preloaded.
type failingList struct {
	counting
}

func (f *failingList) ListInstruments(context.Context, *metadatav1.ListInstrumentsRequest) (*metadatav1.ListInstrumentsResponse, error) {
	return nil, connect.NewError(connect.CodeUnavailable, errors.New("down"))
}

func TestCacheLoadsOnMissOnce(t *testing.T) {
	t.Parallel()
	mesh := newMesh(t)
	client := &failingList{counting{Client: startMetadata(t, mesh)}}
	c := newCache(t, client, mesh)
	if c.Len() != 0 {
		t.Fatalf("preloaded %d with a failing list", c.Len())
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if in, err := c.Get(t.Context(), "ETHUSDT"); err != nil || in.GetSymbol() != "ETHUSDT" {
				t.Errorf("Get = %v, %v", in, err)
			}
		})
	}
	wg.Wait()
	if _, err := c.Get(t.Context(), "ETHUSDT"); err != nil {
		t.Fatal(err)
	}
	if n := client.gets.Load(); n < 1 || n > 8 {
		t.Fatalf("%d loads for 9 Gets of one symbol", n)
	}
	before := client.gets.Load()
	for range 5 {
		if _, err := c.Get(t.Context(), "ETHUSDT"); err != nil {
			t.Fatal(err)
		}
	}
	if client.gets.Load() != before {
		t.Fatal("a cached instrument was loaded again")
	}
}

// static serves fixed instruments and no list.
type static struct {
	mu   sync.Mutex
	byID map[string]*metadatav1.Instrument
}

func (s *static) GetInstrument(_ context.Context, req *metadatav1.GetInstrumentRequest) (*metadatav1.GetInstrumentResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.byID[req.GetSymbol()]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no such instrument"))
	}
	return &metadatav1.GetInstrumentResponse{Instrument: in}, nil
}

func (s *static) ListInstruments(context.Context, *metadatav1.ListInstrumentsRequest) (*metadatav1.ListInstrumentsResponse, error) {
	return &metadatav1.ListInstrumentsResponse{}, nil
}

func instrument(symbol string, revision uint64, tick string) *metadatav1.Instrument {
	return &metadatav1.Instrument{
		Symbol: symbol, Kind: commonv1.InstrumentKind_INSTRUMENT_KIND_SPOT, BaseAsset: "AAA", QuoteAsset: "USDT",
		TickSize: tick, LotSize: "1", MinQuantity: "1", MinNotional: "0", PriceScale: 2,
		Status: commonv1.InstrumentStatus_INSTRUMENT_STATUS_TRADING, Revision: revision,
	}
}

func TestCacheKeepsTheHighestRevision(t *testing.T) {
	t.Parallel()
	mesh := newMesh(t)
	c := newCache(t, &static{byID: map[string]*metadatav1.Instrument{"AAAUSDT": instrument("AAAUSDT", 1, "0.01")}}, mesh)
	pub := mesh.Publisher()

	if in, err := c.Get(t.Context(), "AAAUSDT"); err != nil || in.GetRevision() != 1 {
		t.Fatalf("Get = %v, %v", in, err)
	}
	publish := func(rev uint64, tick string) {
		t.Helper()
		if _, err := pub.Publish(t.Context(), streams.TopicInstrumentUpdated, "AAAUSDT",
			&metadatav1.InstrumentUpdated{Instrument: instrument("AAAUSDT", rev, tick)}); err != nil {
			t.Fatal(err)
		}
	}
	publish(3, "0.03")
	polltest.Until(t, "revision 3", func() error {
		in, _ := c.Get(t.Context(), "AAAUSDT")
		if in.GetRevision() != 3 {
			return fmt.Errorf("revision %d", in.GetRevision())
		}
		return nil
	})
	// An older revision arriving late (events of two processes crossing)
	// does not replace the newer one; a newer one after it does.
	publish(2, "0.02")
	publish(4, "0.04")
	polltest.Until(t, "revision 4", func() error {
		in, _ := c.Get(t.Context(), "AAAUSDT")
		if in.GetRevision() != 4 || in.GetTickSize() != "0.04" {
			return fmt.Errorf("revision %d tick %s", in.GetRevision(), in.GetTickSize())
		}
		return nil
	})
}

func TestCacheConsumersAreUniqueExpiringAndDeletedOnClose(t *testing.T) {
	t.Parallel()
	mesh := newMesh(t)
	js := mesh.JetStream() // to list the consumers
	client := &static{byID: map[string]*metadatav1.Instrument{}}
	a, err := instruments.New(t.Context(), client, mesh, instruments.WithConsumerName("order-instruments"), instruments.WithIdleExpiry(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	b := newCache(t, client, mesh, instruments.WithConsumerName("order-instruments"))

	names := func() []string {
		var out []string
		for _, topic := range []string{streams.TopicInstrumentCreated, streams.TopicInstrumentUpdated} {
			st, err := js.Stream(t.Context(), streams.StreamName(topic))
			if err != nil {
				t.Fatal(err)
			}
			l := st.ConsumerNames(t.Context())
			for n := range l.Name() {
				out = append(out, topic+"/"+n)
			}
			if l.Err() != nil {
				t.Fatal(l.Err())
			}
		}
		return out
	}
	if got := names(); len(got) != 4 {
		t.Fatalf("two caches made consumers %v, want one per cache and topic", got)
	}
	for _, topic := range []string{streams.TopicInstrumentCreated, streams.TopicInstrumentUpdated} {
		st, err := js.Stream(t.Context(), streams.StreamName(topic))
		if err != nil {
			t.Fatal(err)
		}
		l := st.ListConsumers(t.Context())
		for info := range l.Info() {
			if info.Config.DeliverPolicy != jetstream.DeliverNewPolicy || info.Config.InactiveThreshold == 0 {
				t.Errorf("consumer %s: deliver %v, inactive threshold %s", info.Name, info.Config.DeliverPolicy, info.Config.InactiveThreshold)
			}
		}
	}

	if err := a.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := names(); len(got) != 2 {
		t.Fatalf("after Close: consumers %v, want only the other cache's", got)
	}
	// A closed cache still answers, from the service.
	client.mu.Lock()
	client.byID["BBBUSDT"] = instrument("BBBUSDT", 1, "0.01")
	client.mu.Unlock()
	if in, err := a.Get(t.Context(), "BBBUSDT"); err != nil || in.GetSymbol() != "BBBUSDT" {
		t.Fatalf("Get after Close = %v, %v", in, err)
	}
	if _, err := b.Get(t.Context(), "BBBUSDT"); err != nil {
		t.Fatal(err)
	}
}

func TestNewRequiresItsDependencies(t *testing.T) {
	t.Parallel()
	if _, err := instruments.New(t.Context(), nil, newMesh(t)); err == nil {
		t.Fatal("New without a client succeeded")
	}
	if _, err := instruments.New(t.Context(), &static{}, nil); err == nil {
		t.Fatal("New without a mesh client succeeded")
	}
}
