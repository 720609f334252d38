package marketdata_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tradex-mesh/tradex/embedded"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/services/marketdata"
	"github.com/tradex-mesh/tradex/streams"
)

// The engine's mark prices of a perpetual are served (GetMarkPrice),
// streamed (StreamMarkPrices: the current one first, then each new one),
// published on md.mark.v1, and kept across a restart from a snapshot; a
// spot instrument's are not.
func TestMarkPrices(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t, platformtest.WithSync(embedded.SyncPeriodic),
		platformtest.WithMarketDataConfig(func(c *marketdata.Config) { c.SnapshotEvery = 2 }))
	md := p.MarketData
	const perp = "BTCUSDT-PERP"

	none, err := md.GetMarkPrice(t.Context(), &marketdatav1.GetMarkPriceRequest{InstrumentId: perp})
	if err != nil || none.GetMarkPrice().GetInstrumentId() != perp || none.GetMarkPrice().GetMarkPrice() != "" {
		t.Fatalf("a perpetual without a quote or trade: %v, %v; want an empty mark", none, err)
	}
	_, err = md.GetMarkPrice(t.Context(), &marketdatav1.GetMarkPriceRequest{InstrumentId: "ETHUSDT"})
	codeIs(t, err, connect.CodeInvalidArgument, "instrument_id: ETHUSDT is not a perpetual")
	_, err = md.GetMarkPrice(t.Context(), &marketdatav1.GetMarkPriceRequest{InstrumentId: "NOPE-PERP"})
	codeIs(t, err, connect.CodeNotFound, "instrument not found")
	spot, err := md.StreamMarkPrices(t.Context(), &marketdatav1.StreamMarkPricesRequest{InstrumentIds: []string{"ETHUSDT"}})
	if err == nil {
		spot.Receive()
		err = spot.Err()
	}
	codeIs(t, err, connect.CodeInvalidArgument, "instrument_ids: ETHUSDT is not a perpetual")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := md.StreamMarkPrices(ctx, &marketdatav1.StreamMarkPricesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	pub := streams.NewPublisher(p.JetStream(), streams.DefaultCatalog(), streams.WithSource("test/engine"))
	event := func(inst string, seq int, price, mark string) {
		t.Helper()
		ev := &enginev1.EngineEvent{
			EventId: fmt.Sprintf("%s:%d:0", inst, seq), InstrumentId: inst, Sequence: uint64(seq), EngineTime: timestamppb.Now(), //nolint:gosec // small
			BookChanges: []*enginev1.BookLevelChange{{Side: commonv1.Side_SIDE_BUY, Price: price, Quantity: "1.000"}},
			Event:       &enginev1.EngineEvent_Accepted{Accepted: &enginev1.OrderAccepted{OrderId: fmt.Sprint(seq)}},
			MarkPrice:   mark,
		}
		if _, err := pub.Publish(t.Context(), streams.TopicEngineEvent, inst, ev); err != nil {
			t.Fatal(err)
		}
	}
	event("ETHUSDT", 1, "3000.00", "3000.00") // spot: informational, not published
	event(perp, 1, "50000.0", "50000.0")
	event(perp, 2, "49990.0", "49997.5")
	event(perp, 3, "49980.0", "")
	event(perp, 4, "49970.0", "49993.8")

	var got []string
	for len(got) < 3 && stream.Receive() {
		m := stream.Msg().GetMarkPrice()
		got = append(got, fmt.Sprintf("%s %s %d", m.GetInstrumentId(), m.GetMarkPrice(), m.GetSeq()))
	}
	if want := "BTCUSDT-PERP 50000.0 1,BTCUSDT-PERP 49997.5 2,BTCUSDT-PERP 49993.8 4"; strings.Join(got, ",") != want {
		t.Fatalf("streamed %v (%v), want %s", got, stream.Err(), want)
	}
	res, err := md.GetMarkPrice(t.Context(), &marketdatav1.GetMarkPriceRequest{InstrumentId: perp})
	if err != nil || res.GetMarkPrice().GetMarkPrice() != "49993.8" || res.GetMarkPrice().GetSeq() != 4 {
		t.Fatalf("GetMarkPrice: %v, %v", res, err)
	}
	polltest.Until(t, "three marks on md.mark.v1", func() error {
		msgs := readTopic(t, p, streams.TopicMark)
		if len(msgs) != 3 {
			return fmt.Errorf("%d messages", len(msgs))
		}
		var last marketdatav1.MarkPrice
		if err := proto.Unmarshal(msgs[2], &last); err != nil {
			return fmt.Errorf("last message: %w", err)
		}
		if !proto.Equal(&last, res.GetMarkPrice()) {
			return fmt.Errorf("last message %v, want %v", &last, res.GetMarkPrice())
		}
		return nil
	}, polltest.WithTimeout(waitFor))

	// A restart serves the same mark, and a new stream starts with it.
	p.KillMarketData()
	p.StartMarketData()
	polltest.Until(t, "the mark after a restart", func() error {
		again, err := md.GetMarkPrice(t.Context(), &marketdatav1.GetMarkPriceRequest{InstrumentId: perp})
		if err != nil {
			return err
		}
		if !proto.Equal(again.GetMarkPrice(), res.GetMarkPrice()) {
			return fmt.Errorf("mark %v, want %v", again.GetMarkPrice(), res.GetMarkPrice())
		}
		return nil
	}, polltest.WithTimeout(waitFor))
	fresh, err := md.StreamMarkPrices(ctx, &marketdatav1.StreamMarkPricesRequest{InstrumentIds: []string{perp}})
	if err != nil || !fresh.Receive() || !proto.Equal(fresh.Msg().GetMarkPrice(), res.GetMarkPrice()) {
		t.Fatalf("a new stream's first mark: %v, %v", fresh.Msg(), fresh.Err())
	}
}

// codeIs fails unless err has code and its message contains text.
func codeIs(t *testing.T, err error, code connect.Code, text string) {
	t.Helper()
	if connect.CodeOf(err) != code || !strings.Contains(err.Error(), text) {
		t.Fatalf("error %v; want %v naming %q", err, code, text)
	}
}

// readTopic returns the payloads stored on topic, in order.
func readTopic(t *testing.T, p *platformtest.Platform, topic string) [][]byte {
	t.Helper()
	st, err := p.JetStream().Stream(t.Context(), streams.StreamName(topic))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Data)
	}
	return out
}
