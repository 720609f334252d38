package metadata_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/services/metadata"
	"github.com/tradex-mesh/tradex/streams"
)

// TestRepairPublishesWhatACrashLeftOut writes to the buckets what a service
// that crashed between its KV write and its publish leaves behind, and
// checks that the next start announces it, once.
func TestRepairPublishesWhatACrashLeftOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	created := collect[*metadatav1.InstrumentCreated](t, e.js, streams.TopicInstrumentCreated)
	updated := collect[*metadatav1.InstrumentUpdated](t, e.js, streams.TopicInstrumentUpdated)
	changed := collect[*metadatav1.ConfigChanged](t, e.js, streams.TopicConfigChanged)
	first := e.start(t)
	rev1, err := first.client.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: "BTCUSDT"})
	if err != nil {
		t.Fatal(err)
	}
	first.stop()
	created.wait(t, 3)

	// The crash: stored, not published.
	instruments, err := e.js.KeyValue(t.Context(), "tradex_instruments")
	if err != nil {
		t.Fatal(err)
	}
	rev2 := proto.CloneOf(rev1.GetInstrument())
	rev2.TickSize, rev2.Revision, rev2.UpdatedAt = "0.1", 2, timestamppb.New(epoch.Add(time.Minute))
	put(t, instruments, "BTCUSDT", rev2)
	xrp := &metadatav1.Instrument{
		Symbol: "XRPUSDT", Kind: commonv1.InstrumentKind_INSTRUMENT_KIND_SPOT, BaseAsset: "XRP", QuoteAsset: "USDT",
		TickSize: "0.0001", LotSize: "1", MinQuantity: "1", MinNotional: "5", PriceScale: 4,
		Status: commonv1.InstrumentStatus_INSTRUMENT_STATUS_TRADING, Revision: 1,
		CreatedAt: timestamppb.New(epoch), UpdatedAt: timestamppb.New(epoch),
	}
	put(t, instruments, "XRPUSDT", xrp)
	config, err := e.js.KeyValue(t.Context(), "tradex_config")
	if err != nil {
		t.Fatal(err)
	}
	cfgRev := put(t, config, "risk.max_leverage", &metadatav1.ConfigEntry{Key: "risk.max_leverage", Value: "20", UpdatedAt: timestamppb.New(epoch)})

	second := e.start(t) // Ready: the start-up repair is done

	u := updated.wait(t, 1)[0]
	if u.ID != "instrument:BTCUSDT:2" || !proto.Equal(u.Payload.GetInstrument(), rev2) || !proto.Equal(u.Payload.GetPrevious(), rev1.GetInstrument()) ||
		strings.Join(u.Payload.GetChangedFields().GetPaths(), ",") != "tick_size" || u.Payload.GetActor() != "metadata" {
		t.Fatalf("recovered update %s: %v", u.ID, u.Payload)
	}
	c := created.wait(t, 4)[3]
	// Stored before instruments had fee rates: published with none ("0").
	xrp.MakerFeeRate, xrp.TakerFeeRate = "0", "0"
	if c.ID != "instrument:XRPUSDT:1" || !proto.Equal(c.Payload.GetInstrument(), xrp) {
		t.Fatalf("recovered create %s: %v", c.ID, c.Payload)
	}
	ch := changed.wait(t, 1)[0]
	if ch.ID != "config:risk.max_leverage:"+itoa(cfgRev) || ch.Payload.GetValue() != "20" || ch.Payload.GetRevision() != cfgRev ||
		!ch.Payload.GetChangedAt().AsTime().Equal(epoch) || ch.Key != "risk:max_leverage" {
		t.Fatalf("recovered config change %s: %v", ch.ID, ch.Payload)
	}
	if !strings.Contains(second.logs.String(), "published an event that a crash or failed publish had left out") {
		t.Fatalf("the repair was not logged:\n%s", second.logs)
	}

	// Announced once: another start finds nothing to repair.
	counts := []uint64{
		streamMsgs(t, e.js, streams.TopicInstrumentCreated),
		streamMsgs(t, e.js, streams.TopicInstrumentUpdated),
		streamMsgs(t, e.js, streams.TopicConfigChanged),
	}
	second.stop()
	third := e.start(t)
	again := []uint64{
		streamMsgs(t, e.js, streams.TopicInstrumentCreated),
		streamMsgs(t, e.js, streams.TopicInstrumentUpdated),
		streamMsgs(t, e.js, streams.TopicConfigChanged),
	}
	if counts[0] != 4 || counts[1] != 1 || counts[2] != 1 || again[0] != counts[0] || again[1] != counts[1] || again[2] != counts[2] {
		t.Fatalf("events per topic after the repair %v and after another start %v; want [4 1 1] twice", counts, again)
	}
	if strings.Contains(third.logs.String(), "left out") {
		t.Fatalf("the third start repaired something:\n%s", third.logs)
	}
}

// TestFailedPublishIsRepaired makes the publish after a stored change fail
// (the topic's stream is gone): the request still succeeds, since the
// change is stored, and the repair loop publishes the event once the stream
// is back.
func TestFailedPublishIsRepaired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.start(t, func(c *metadata.Config, _ *metadata.Deps) {
		c.PublishTimeout = 300 * time.Millisecond
		c.RepairInterval = 0 // only the failed publish triggers the repair
	})
	if err := e.js.DeleteStream(t.Context(), streams.StreamName(streams.TopicConfigChanged)); err != nil {
		t.Fatal(err)
	}
	res, err := r.client.SetConfig(t.Context(), &metadatav1.SetConfigRequest{Key: "fees.taker", Value: "0.001"})
	if err != nil {
		t.Fatalf("SetConfig with the event stream gone: %v", err)
	}
	if !strings.Contains(r.logs.String(), "event not published") {
		t.Fatalf("the failed publish was not logged:\n%s", r.logs)
	}
	if err := streams.EnsureStreams(t.Context(), e.js, streams.DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
	changed := collect[*metadatav1.ConfigChanged](t, e.js, streams.TopicConfigChanged)
	m := changed.wait(t, 1)[0]
	if m.ID != "config:fees.taker:"+itoa(res.GetEntry().GetRevision()) || m.Payload.GetValue() != "0.001" {
		t.Fatalf("repaired event %s: %v", m.ID, m.Payload)
	}
}

// put stores msg under key as the service would, returning the revision.
func put(t *testing.T, kv interface {
	Put(ctx context.Context, key string, value []byte) (uint64, error)
}, key string, msg proto.Message) uint64 {
	t.Helper()
	data, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Put(t.Context(), key, data)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// TestRunRetriesUntilTheStreamsExist starts the service before the topics'
// streams exist: the seed instruments are stored but cannot be announced,
// Run keeps retrying, and once the streams exist it announces them and
// becomes ready.
func TestRunRetriesUntilTheStreamsExist(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	js := s.JetStream()
	client := streams.NewClient(js, streams.DefaultCatalog())
	logs := &logBuffer{}
	cfg := metadata.Default()
	cfg.PublishTimeout = 200 * time.Millisecond
	svc, err := metadata.New(cfg, metadata.Deps{
		Logger:    slog.New(slog.NewTextHandler(logs, nil)),
		Streams:   client,
		Publisher: client.Publisher(),
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
			t.Errorf("Run: %v", err)
		}
	})

	polltest.Until(t, "a failed start", func() error {
		if l := logs.String(); !strings.Contains(l, "start step failed, retrying") || !strings.Contains(l, `step="metadata start"`) {
			return errors.New("not yet")
		}
		return nil
	})
	select {
	case <-svc.Ready():
		t.Fatal("ready without the event streams")
	default:
	}
	if err := streams.EnsureStreams(t.Context(), js, streams.DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-svc.Ready():
	case <-time.After(waitTimeout):
		t.Fatalf("not ready after the streams exist; logs:\n%s", logs)
	}
	created := collect[*metadatav1.InstrumentCreated](t, js, streams.TopicInstrumentCreated)
	var ids []string
	for _, m := range created.wait(t, 3) {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	if got := strings.Join(ids, ","); got != "instrument:BTCUSDT-PERP:1,instrument:BTCUSDT:1,instrument:ETHUSDT:1" {
		t.Fatalf("created events %s", got)
	}
}
