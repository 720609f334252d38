package order

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/instruments"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
)

// flakyCommands reads commands through the real client, but fails every
// read with a transient broker error while failing is set.
type flakyCommands struct {
	next    commandReader
	failing atomic.Bool
	reads   atomic.Int64 // every read, failed or not
}

func (f *flakyCommands) Get(ctx context.Context, topic string, seq uint64) (streams.Stored, error) {
	f.reads.Add(1)
	if f.failing.Load() {
		return streams.Stored{}, fmt.Errorf("read message %d of %s: %w: injected timeout", seq, topic, streams.ErrUnavailable)
	}
	return f.next.Get(ctx, topic, seq)
}

// noInstruments and noWallet stand for dependencies recovery never uses.
type (
	noInstruments struct{}
	noWallet      struct{}
)

var errUnused = errors.New("not used by this test")

func (noInstruments) Get(context.Context, string) (*metadatav1.Instrument, error) {
	return nil, errUnused
}

func (noInstruments) Rules(context.Context, string) (instruments.Rules, error) {
	return instruments.Rules{}, errUnused
}

func (noInstruments) List(context.Context) ([]*metadatav1.Instrument, error) {
	return nil, errUnused
}

func (noWallet) HoldBalance(context.Context, *walletv1.HoldBalanceRequest) (*walletv1.HoldBalanceResponse, error) {
	return nil, errUnused
}

func (noWallet) ReleaseHold(context.Context, *walletv1.ReleaseHoldRequest) (*walletv1.ReleaseHoldResponse, error) {
	return nil, errUnused
}

func (noWallet) ListHolds(context.Context, *walletv1.ListHoldsRequest) (*walletv1.ListHoldsResponse, error) {
	return nil, errUnused
}

// A read of the submit command that fails for want of the broker is not
// "command not found": the engine event stays unacknowledged, is retried,
// and the order is recovered once the read succeeds.
func TestRecoveryRetriesATransientCommandReadFailure(t *testing.T) {
	t.Parallel()
	js := embeddedtest.New(t).JetStream()
	ctx := t.Context()
	if err := streams.EnsureStreams(ctx, js, streams.DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
	client := streams.NewClient(js, streams.DefaultCatalog())
	cfg := Default()
	svc, err := New(cfg, Deps{Streams: client, Publisher: client.Publisher(streams.WithSource("tradex/order")),
		Instruments: noInstruments{}, Wallet: noWallet{}})
	if err != nil {
		t.Fatal(err)
	}
	reader := &flakyCommands{next: svc.commands}
	reader.failing.Store(true)
	svc.commands = reader
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := svc.Run(runCtx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	polltest.True(t, "order service ready", func() bool { return svc.checkReady() == nil })

	// A submit stored by an order service that died before storing the
	// order, and the engine's acceptance of it.
	const id = "0000000000000001lost"
	cmd := &enginev1.OrderCommand{CommandId: id, InstrumentId: "BTCUSDT", SentAt: timestamppb.Now(),
		Command: &enginev1.OrderCommand_Submit{Submit: &enginev1.SubmitOrder{
			OrderId: id, AccountId: "ivan", Side: commonv1.Side_SIDE_BUY, Type: commonv1.OrderType_ORDER_TYPE_LIMIT,
			TimeInForce: commonv1.TimeInForce_TIME_IN_FORCE_GTC, Price: "50000.00", Quantity: "0.01000", PriceScale: 2, QuantityScale: 5}}}
	pub := client.Publisher()
	inputSeq, err := pub.Publish(ctx, streams.TopicOrderCommand, "BTCUSDT", cmd,
		streams.WithMsgID(id), streams.WithHeader(HeaderClientOrderID, "lost-1"))
	if err != nil {
		t.Fatal(err)
	}
	eventSeq, err := pub.Publish(ctx, streams.TopicEngineEvent, "BTCUSDT", &enginev1.EngineEvent{
		InstrumentId: "BTCUSDT", Sequence: 1, EventId: "BTCUSDT:1:0", InputSequence: inputSeq, EngineTime: timestamppb.Now(),
		Event: &enginev1.EngineEvent_Accepted{Accepted: &enginev1.OrderAccepted{OrderId: id, AccountId: "ivan"}}},
		streams.WithMsgID("BTCUSDT:1:0"))
	if err != nil {
		t.Fatal(err)
	}

	consumer, err := js.Consumer(ctx, streams.StreamName(streams.TopicEngineEvent), cfg.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	consumerInfo := func() (*jetstream.ConsumerInfo, error) { return consumer.Info(ctx) }

	// While the reads fail, the event is retried and never acknowledged.
	polltest.True(t, "command read retried", func() bool { return reader.reads.Load() >= 3 })
	info, err := consumerInfo()
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream >= eventSeq || info.NumAckPending != 1 {
		t.Fatalf("during the failed reads: ack floor %d, %d ack pending; want the event %d delivered and unacknowledged",
			info.AckFloor.Stream, info.NumAckPending, eventSeq)
	}
	if _, _, err := svc.st.get(ctx, id); !errors.Is(err, ErrOrderNotFound) {
		t.Fatalf("order during the failed reads: %v, want not found", err)
	}

	// Once the broker answers, the order comes back from its command and
	// the event is acknowledged.
	failed := reader.reads.Load()
	reader.failing.Store(false)
	var o Order
	polltest.Until(t, "order recovered and accepted", func() error {
		if o, _, err = svc.st.get(ctx, id); err != nil {
			return err
		}
		if o.EngineSequence != 1 {
			return fmt.Errorf("engine sequence %d, want 1", o.EngineSequence)
		}
		return nil
	})
	if reader.reads.Load() <= failed {
		t.Fatalf("order recovered without reading its command again (%d reads)", reader.reads.Load())
	}
	if o.ClientOrderID != "lost-1" || o.Account != "ivan" || o.Instrument != "BTCUSDT" || o.Side != SideBuy ||
		o.Type != TypeLimit || o.Price != 5_000_000 || o.Quantity != 1000 || o.Status != StatusNew || o.Remaining != 1000 {
		t.Fatalf("recovered order %+v", o)
	}
	polltest.Until(t, "engine event acknowledged", func() error {
		info, err := consumerInfo()
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < eventSeq || info.NumAckPending != 0 {
			return fmt.Errorf("ack floor %d, %d ack pending, want %d and 0", info.AckFloor.Stream, info.NumAckPending, eventSeq)
		}
		return nil
	})
}
