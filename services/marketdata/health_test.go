package marketdata_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

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

// Health is Starting until the first rebuild is done, then Ready. A
// poison event (here a gap in an instrument's engine sequence) does not
// stop the feed: it goes to dlq.engine.event.v1 with the reason, the
// service stays Ready, and the instrument's next event applies.
func TestAPoisonEventIsDeadLetteredAndTheFeedGoesOn(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.New(t)
	js := srv.JetStream()
	catalog := streams.DefaultCatalog()
	if err := streams.EnsureStreams(t.Context(), js, catalog); err != nil {
		t.Fatal(err)
	}
	mesh := streams.NewClient(js, catalog)
	cfg := marketdata.Default()
	cfg.SnapshotEvery = 0
	svc, err := marketdata.New(cfg, marketdata.Deps{Streams: mesh, Instruments: fixedInstruments{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := wantState(svc, health.Starting, streams.TopicEngineEvent)(); err != nil {
		t.Fatalf("before Run: %v", err)
	}
	pub := mesh.Publisher(streams.WithSource("test/engine"))
	publish := func(sym string, seq uint64, price string) {
		t.Helper()
		if _, err := pub.Publish(t.Context(), streams.TopicEngineEvent, sym, engineEvent(sym, seq, price)); err != nil {
			t.Fatal(err)
		}
	}
	publish("ETHUSDT", 1, "3000.00")
	publish("ETHUSDT", 2, "2999.00")

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
	book := func(sym string) (*marketdatav1.GetBookResponse, error) {
		return svc.InProcess().GetBook(t.Context(), &marketdatav1.GetBookRequest{InstrumentId: sym})
	}

	publish("ETHUSDT", 4, "2998.00") // stream sequence 3: engine sequence 3 is missing
	dlq := mesh.DLQ()
	polltest.Until(t, "the poison event dead-lettered", func() error {
		letters, err := dlq.List(t.Context(), streams.TopicEngineEvent, streams.DLQFilter{})
		switch {
		case err != nil:
			return err
		case len(letters) != 1:
			return fmt.Errorf("%d dead letters", len(letters))
		case letters[0].OriginalSequence != 3 || letters[0].Handler != "marketdata-feed" || !strings.Contains(letters[0].Reason, "gap in the engine sequence"):
			return fmt.Errorf("dead letter %+v", letters[0])
		}
		return nil
	})
	publish("BTCUSDT", 1, "50000.00")
	publish("ETHUSDT", 3, "2997.00")
	polltest.Until(t, "both instruments go on", func() error {
		eth, err := book("ETHUSDT")
		if err != nil {
			return err
		}
		btc, err := book("BTCUSDT")
		if err != nil {
			return err
		}
		if eth.GetBook().GetSeq() != 3 || len(eth.GetBook().GetBids()) != 3 || btc.GetBook().GetSeq() != 1 {
			return fmt.Errorf("books %v and %v, want ETHUSDT at 3 with three bids, BTCUSDT at 1", eth.GetBook(), btc.GetBook())
		}
		return nil
	})
	if h := svc.Health(); !h.OK() {
		t.Errorf("health after a poison event: %+v", h)
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
