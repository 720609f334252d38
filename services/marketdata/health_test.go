package marketdata_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/internal/health"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/services/marketdata"
	"github.com/tradex-mesh/tradex/streams"
)

// fixedInstruments knows every symbol, at price scale 2 and quantity
// scale 4.
type fixedInstruments struct{}

func (fixedInstruments) Get(_ context.Context, symbol string) (*metadatav1.Instrument, error) {
	return &metadatav1.Instrument{Symbol: symbol, PriceScale: 2, QuantityScale: 4}, nil
}

// engineEvent is the instrument's engine event seq: a bid of 1 at price.
func engineEvent(sym string, seq uint64, price string) *enginev1.EngineEvent {
	return &enginev1.EngineEvent{
		EventId: fmt.Sprintf("%s:%d:0", sym, seq), InstrumentId: sym, Sequence: seq, EngineTime: timestamppb.Now(),
		BookChanges: []*enginev1.BookLevelChange{{Side: commonv1.Side_SIDE_BUY, Price: price, Quantity: "1.0000"}},
		Event:       &enginev1.EngineEvent_Accepted{Accepted: &enginev1.OrderAccepted{OrderId: fmt.Sprint(seq)}},
	}
}

// wantState is a poll condition: the service's health is state with a
// detail holding every part.
func wantState(svc *marketdata.Service, state health.State, parts ...string) func() error {
	return func() error {
		h := svc.Health()
		if h.State != state {
			return fmt.Errorf("health %+v, want %s", h, state)
		}
		for _, p := range parts {
			if !strings.Contains(h.Detail, p) {
				return fmt.Errorf("health %+v: detail does not say %q", h, p)
			}
		}
		return nil
	}
}

// Health is Starting until the first rebuild is done, Ready while the
// state is caught up, and Rebuilding, naming the gap and how far the
// rebuild got, while a gap in an instrument's engine sequence keeps the
// state from catching up; once the stray event is gone it is Ready again.
func TestHealthFollowsARebuildAfterAGap(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.New(t)
	js := srv.JetStream()
	// engine.event.v1 is a journal (deletes denied); here it is a stream
	// that permits them, so that the test can take the stray event out.
	catalog, err := streams.NewCatalog(streams.Topic{Name: streams.TopicEngineEvent, Payload: &enginev1.EngineEvent{}, Profile: streams.MarketData})
	if err != nil {
		t.Fatal(err)
	}
	if err := streams.EnsureStreams(t.Context(), js, catalog); err != nil {
		t.Fatal(err)
	}
	mesh := streams.NewClient(js, catalog)
	cfg := marketdata.Default()
	cfg.SnapshotEvery = 0 // the catalog has no snapshot store
	svc, err := marketdata.New(cfg, marketdata.Deps{Streams: mesh, Instruments: fixedInstruments{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := wantState(svc, health.Starting, streams.TopicEngineEvent)(); err != nil {
		t.Fatalf("before Run: %v", err)
	}
	pub := mesh.Publisher(streams.WithSource("test/engine"))
	publish := func(seq uint64, price string) {
		t.Helper()
		if _, err := pub.Publish(t.Context(), streams.TopicEngineEvent, "ETHUSDT", engineEvent("ETHUSDT", seq, price)); err != nil {
			t.Fatal(err)
		}
	}
	publish(1, "3000.00")
	publish(2, "2999.00")

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	polltest.Until(t, "ready after the first rebuild", wantState(svc, health.Ready))
	book := func() (*marketdatav1.GetBookResponse, error) {
		return svc.InProcess().GetBook(t.Context(), &marketdatav1.GetBookRequest{InstrumentId: "ETHUSDT"})
	}
	if res, err := book(); err != nil || res.GetBook().GetSeq() != 2 {
		t.Fatalf("GetBook when ready: %v, %v; want seq 2", res, err)
	}

	publish(4, "2998.00") // stream sequence 3: engine sequence 3 is missing
	polltest.Until(t, "rebuilding, stuck on the gap",
		wantState(svc, health.Rebuilding, "gap in "+streams.TopicEngineEvent+" at 3", "ETHUSDT", "applied 2 of 3 events"))
	if _, err := book(); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("GetBook while rebuilding: %v, want Unavailable", err)
	}

	// An operator removes the stray event: the rebuild catches up.
	st, err := js.Stream(t.Context(), streams.StreamName(streams.TopicEngineEvent))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "ready once the gap is gone", wantState(svc, health.Ready))
	if res, err := book(); err != nil || res.GetBook().GetSeq() != 2 {
		t.Fatalf("GetBook after the rebuild: %v, %v; want seq 2", res, err)
	}
	publish(3, "2998.00")
	polltest.Until(t, "the next event applied", func() error {
		res, err := book()
		if err != nil {
			return err
		}
		if res.GetBook().GetSeq() != 3 || len(res.GetBook().GetBids()) != 3 {
			return fmt.Errorf("book %v, want seq 3 with three bids", res.GetBook())
		}
		return nil
	})
	if h := svc.Health(); !h.OK() {
		t.Errorf("health after the next event: %+v", h)
	}
}

// A service that cannot read its stream stays Starting and says why.
func TestHealthStartingWhileTheStreamIsMissing(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.New(t)
	mesh := streams.NewClient(srv.JetStream(), streams.DefaultCatalog()) // no streams: engine.event.v1 is not there
	svc, err := marketdata.New(marketdata.Default(), marketdata.Deps{Streams: mesh, Instruments: fixedInstruments{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	polltest.Until(t, "starting, the feed interrupted", wantState(svc, health.Starting, "feed interrupted", streams.TopicEngineEvent))
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// New refuses a snapshot bucket the catalog does not declare and a
// missing mesh.
func TestNewChecksItsStores(t *testing.T) {
	t.Parallel()
	mesh := streams.NewClient(nil, streams.DefaultCatalog())
	cfg := marketdata.Default()
	cfg.SnapshotBucket = "tradex_nowhere"
	if _, err := marketdata.New(cfg, marketdata.Deps{Streams: mesh, Instruments: fixedInstruments{}}); !errors.Is(err, streams.ErrUnknownStore) {
		t.Errorf("New with an unknown snapshot bucket: %v, want ErrUnknownStore", err)
	}
	cfg.SnapshotEvery = 0 // no snapshots: the bucket is not used
	if _, err := marketdata.New(cfg, marketdata.Deps{Streams: mesh, Instruments: fixedInstruments{}}); err != nil {
		t.Errorf("New without snapshots: %v", err)
	}
	if _, err := marketdata.New(marketdata.Default(), marketdata.Deps{Instruments: fixedInstruments{}}); err == nil {
		t.Error("New without Streams succeeded")
	}
}
