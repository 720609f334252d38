package marketdata_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tradex-mesh/tradex/embedded"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/services/marketdata"
	"github.com/tradex-mesh/tradex/streams"
)

const waitFor = 20 * time.Second

func place(t *testing.T, p *platformtest.Platform, acct string, side commonv1.Side, qty, price string) {
	t.Helper()
	if _, err := p.Orders.PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{
		AccountId: acct, InstrumentId: "BTCUSDT", Side: side, Type: commonv1.OrderType_ORDER_TYPE_LIMIT, Quantity: qty, Price: price,
	}); err != nil {
		t.Fatalf("place %s %v %s@%s: %v", acct, side, qty, price, err)
	}
}

// l2 is a book kept from a snapshot and deltas, as a client keeps it.
type l2 struct{ bids, asks map[string]string }

func (b *l2) set(side map[string]string, levels []*marketdatav1.BookLevel) {
	for _, l := range levels {
		if strings.Trim(l.GetQuantity(), "0.") == "" {
			delete(side, l.GetPrice())
		} else {
			side[l.GetPrice()] = l.GetQuantity()
		}
	}
}

func (b *l2) String() string {
	format := func(side map[string]string, desc bool) string {
		prices := make([]string, 0, len(side))
		for p := range side {
			prices = append(prices, p)
		}
		slices.Sort(prices) // same number of digits here: text order is price order
		if desc {
			slices.Reverse(prices)
		}
		var parts []string
		for _, p := range prices {
			parts = append(parts, p+"x"+side[p])
		}
		return strings.Join(parts, " ")
	}
	return "bids " + format(b.bids, true) + " | asks " + format(b.asks, false)
}

func snapshotString(s *marketdatav1.BookSnapshot) string {
	b := &l2{bids: map[string]string{}, asks: map[string]string{}}
	b.set(b.bids, s.GetBids())
	b.set(b.asks, s.GetAsks())
	return b.String()
}

// Orders placed through the platform show up in the book, the trades, the
// ticker and the candles; a book stream's snapshot plus deltas rebuild the
// book GetBook serves, with a gapless seq/prev_seq chain; a restarted
// service rebuilds the same state from the engine events.
func TestMarketDataFromTheEngine(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t, platformtest.WithSync(embedded.SyncPeriodic))
	for acct, asset := range map[string]string{"maker": "BTC", "taker": "USDT"} {
		if _, err := p.Wallet.Deposit(t.Context(), &walletv1.DepositRequest{TransferId: "d-" + acct, AccountId: acct, Asset: asset, Amount: "100000"}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	books, err := p.MarketData.StreamBook(ctx, &marketdatav1.StreamBookRequest{InstrumentId: "BTCUSDT"})
	if err != nil {
		t.Fatal(err)
	}
	trades, err := p.MarketData.StreamTrades(ctx, &marketdatav1.StreamTradesRequest{InstrumentIds: []string{"BTCUSDT"}})
	if err != nil {
		t.Fatal(err)
	}
	tickerStream, err := p.MarketData.StreamTicker(ctx, &marketdatav1.StreamTickerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The fan-out topics, as any reader (the gateway) would read them.
	published := make(chan *nats.Msg, 64)
	sub, err := p.Server().Conn().ChanSubscribe("md.>", published)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if !books.Receive() || books.Msg().GetSnapshot() == nil {
		t.Fatalf("first book message %v, %v; want a snapshot", books.Msg(), books.Err())
	}
	kept := &l2{bids: map[string]string{}, asks: map[string]string{}}
	lastSeq := books.Msg().GetSnapshot().GetSeq()

	place(t, p, "maker", commonv1.Side_SIDE_SELL, "0.01", "50000")
	place(t, p, "maker", commonv1.Side_SIDE_SELL, "0.02", "50010")
	place(t, p, "taker", commonv1.Side_SIDE_BUY, "0.005", "49990")
	place(t, p, "taker", commonv1.Side_SIDE_BUY, "0.015", "50000") // trades 0.01 at 50000, rests 0.005
	p.WaitSettled(t)

	const want = "bids 50000.00x0.00500 49990.00x0.00500 | asks 50010.00x0.02000"
	var book *marketdatav1.GetBookResponse
	polltest.Until(t, "GetBook shows the orders", func() error {
		book, err = p.MarketData.GetBook(t.Context(), &marketdatav1.GetBookRequest{InstrumentId: "BTCUSDT"})
		if err != nil {
			return err
		}
		if got := snapshotString(book.GetBook()); got != want {
			return fmt.Errorf("book %s, want %s", got, want)
		}
		return nil
	}, polltest.WithTimeout(waitFor))
	for lastSeq < book.GetBook().GetSeq() {
		if !books.Receive() {
			t.Fatalf("book stream ended: %v", books.Err())
		}
		d := books.Msg().GetDelta()
		if d == nil || d.GetPrevSeq() != lastSeq || d.GetSeq() <= lastSeq {
			t.Fatalf("delta %v after seq %d: want prev_seq = %d", d, lastSeq, lastSeq)
		}
		kept.set(kept.bids, d.GetBids())
		kept.set(kept.asks, d.GetAsks())
		lastSeq = d.GetSeq()
	}
	if kept.String() != want {
		t.Errorf("snapshot + deltas: %s, GetBook: %s", kept, want)
	}

	if !trades.Receive() {
		t.Fatalf("trade stream ended: %v", trades.Err())
	}
	if tr := trades.Msg().GetTrade(); tr.GetPrice() != "50000.00" || tr.GetQuantity() != "0.01000" ||
		tr.GetQuoteQuantity() != "500.0000000" || tr.GetTakerSide() != commonv1.Side_SIDE_BUY {
		t.Errorf("streamed trade %v", tr)
	}
	// md.book.v1 carries the same deltas, md.trade.v1 the trade.
	var deltas, mdTrades int
	var prev uint64
	for prev != book.GetBook().GetSeq() || mdTrades == 0 {
		select {
		case m := <-published:
			switch {
			case strings.HasPrefix(m.Subject, "md.book.v1.BTCUSDT"):
				var d marketdatav1.BookDelta
				if err := proto.Unmarshal(m.Data, &d); err != nil || d.GetPrevSeq() != prev {
					t.Fatalf("md.book.v1 delta %v (%v) after seq %d", &d, err, prev)
				}
				prev = d.GetSeq()
				deltas++
			case strings.HasPrefix(m.Subject, "md.trade.v1.BTCUSDT"):
				var tr marketdatav1.Trade
				if err := proto.Unmarshal(m.Data, &tr); err != nil || tr.GetPrice() != "50000.00" {
					t.Fatalf("md.trade.v1 %v (%v)", &tr, err)
				}
				mdTrades++
			}
		case <-time.After(waitFor):
			t.Fatalf("published %d deltas up to seq %d and %d trades; want up to seq %d and the trade", deltas, prev, mdTrades, book.GetBook().GetSeq())
		}
	}
	if mdTrades != 1 {
		t.Errorf("%d trades published, want 1", mdTrades)
	}

	for tickerStream.Receive() { // one ticker per event; the trade's shows it
		if k := tickerStream.Msg().GetTicker(); k.GetTradeCount() == 1 {
			if k.GetLast() != "50000.00" || k.GetVolume() != "0.01000" || k.GetInstrumentId() != "BTCUSDT" {
				t.Errorf("streamed ticker %v", k)
			}
			break
		}
	}
	if err := tickerStream.Err(); err != nil {
		t.Fatalf("ticker stream: %v", err)
	}

	// A stream opened now starts with the current ticker, before any change.
	late, err := p.MarketData.StreamTicker(ctx, &marketdatav1.StreamTickerRequest{InstrumentIds: []string{"BTCUSDT"}})
	if err != nil {
		t.Fatal(err)
	}
	if !late.Receive() {
		t.Fatalf("no current ticker: %v", late.Err())
	}
	if k := late.Msg().GetTicker(); k.GetInstrumentId() != "BTCUSDT" || k.GetLast() != "50000.00" || k.GetTradeCount() != 1 {
		t.Errorf("first ticker of a late stream: %v", k)
	}
	_ = late.Close()

	listed, err := p.MarketData.ListTrades(t.Context(), &marketdatav1.ListTradesRequest{InstrumentId: "BTCUSDT"})
	if err != nil || len(listed.GetTrades()) != 1 || listed.GetTrades()[0].GetPrice() != "50000.00" {
		t.Errorf("ListTrades %v, %v", listed, err)
	}
	tk, err := p.MarketData.GetTicker(t.Context(), &marketdatav1.GetTickerRequest{InstrumentId: "BTCUSDT"})
	if k := tk.GetTicker(); err != nil || k.GetLast() != "50000.00" || k.GetVolume() != "0.01000" || k.GetTradeCount() != 1 ||
		k.GetBestBid() != "50000.00" || k.GetBestAsk() != "50010.00" || k.GetPriceChangePercent() != "0.00" {
		t.Errorf("GetTicker %v, %v", tk, err)
	}
	candles, err := p.MarketData.ListCandles(t.Context(), &marketdatav1.ListCandlesRequest{
		InstrumentId: "BTCUSDT", Interval: marketdatav1.CandleInterval_CANDLE_INTERVAL_ONE_MINUTE})
	if err != nil || len(candles.GetCandles()) != 1 || candles.GetCandles()[0].GetVolume() != "0.01000" || candles.GetCandles()[0].GetTradeCount() != 1 {
		t.Errorf("ListCandles %v, %v", candles, err)
	}
	tickers, err := p.MarketData.ListTickers(t.Context(), &marketdatav1.ListTickersRequest{})
	if err != nil || len(tickers.GetTickers()) != 1 || tickers.GetTickers()[0].GetInstrumentId() != "BTCUSDT" {
		t.Errorf("ListTickers %v, %v", tickers, err)
	}

	// A new instance rebuilds the same state from the engine events.
	p.KillMarketData()
	p.StartMarketData()
	again, err := p.MarketData.GetBook(t.Context(), &marketdatav1.GetBookRequest{InstrumentId: "BTCUSDT"})
	if err != nil || snapshotString(again.GetBook()) != want || again.GetBook().GetSeq() != book.GetBook().GetSeq() {
		t.Errorf("after a restart GetBook %v, %v; want %s at seq %d", again, err, want, book.GetBook().GetSeq())
	}
	depth1, err := p.MarketData.GetBook(t.Context(), &marketdatav1.GetBookRequest{InstrumentId: "BTCUSDT", Depth: 1})
	if err != nil || snapshotString(depth1.GetBook()) != "bids 50000.00x0.00500 | asks 50010.00x0.02000" {
		t.Errorf("depth 1: %v, %v", depth1, err)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t, platformtest.WithSync(embedded.SyncPeriodic))
	cases := []struct {
		name string
		call func() error
		code connect.Code
		text string
	}{
		{"no instrument", func() error {
			_, err := p.MarketData.GetBook(t.Context(), &marketdatav1.GetBookRequest{})
			return err
		}, connect.CodeInvalidArgument, "instrument_id"},
		{"unknown instrument", func() error {
			_, err := p.MarketData.GetBook(t.Context(), &marketdatav1.GetBookRequest{InstrumentId: "NOPE"})
			return err
		}, connect.CodeNotFound, "NOPE"},
		{"negative depth", func() error {
			_, err := p.MarketData.GetBook(t.Context(), &marketdatav1.GetBookRequest{InstrumentId: "BTCUSDT", Depth: -1})
			return err
		}, connect.CodeInvalidArgument, "depth"},
		{"no interval", func() error {
			_, err := p.MarketData.ListCandles(t.Context(), &marketdatav1.ListCandlesRequest{InstrumentId: "BTCUSDT"})
			return err
		}, connect.CodeInvalidArgument, "interval"},
		{"end before start", func() error {
			_, err := p.MarketData.ListCandles(t.Context(), &marketdatav1.ListCandlesRequest{InstrumentId: "BTCUSDT",
				Interval: marketdatav1.CandleInterval_CANDLE_INTERVAL_ONE_HOUR, StartTime: tsAt(2), EndTime: tsAt(1)})
			return err
		}, connect.CodeInvalidArgument, "end_time"},
		{"negative limit", func() error {
			_, err := p.MarketData.ListTrades(t.Context(), &marketdatav1.ListTradesRequest{InstrumentId: "BTCUSDT", Limit: -1})
			return err
		}, connect.CodeInvalidArgument, "limit"},
		{"stream of an unknown instrument", func() error {
			s, err := p.MarketData.StreamTrades(t.Context(), &marketdatav1.StreamTradesRequest{InstrumentIds: []string{"NOPE"}})
			if err != nil {
				return err
			}
			s.Receive()
			return s.Err()
		}, connect.CodeNotFound, "NOPE"},
	}
	for _, c := range cases {
		err := c.call()
		if connect.CodeOf(err) != c.code || !strings.Contains(fmt.Sprint(err), c.text) {
			t.Errorf("%s: %v; want %v naming %q", c.name, err, c.code, c.text)
		}
	}
	// A known instrument without trading yet: an empty book, not an error.
	res, err := p.MarketData.GetBook(t.Context(), &marketdatav1.GetBookRequest{InstrumentId: "ETHUSDT"})
	if err != nil || len(res.GetBook().GetBids())+len(res.GetBook().GetAsks()) != 0 || res.GetBook().GetInstrumentId() != "ETHUSDT" {
		t.Errorf("empty book: %v, %v", res, err)
	}
}

func tsAt(hour int) *timestamppb.Timestamp {
	return timestamppb.New(time.Date(2026, 12, 1, hour, 0, 0, 0, time.UTC))
}

// lockedBuffer collects the services' logs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A restart reads the snapshot and only the events after it, and ends in
// the same state as the instance before it; an unreadable snapshot is
// ignored (the whole stream is replayed) with the same result.
func TestRestartFromSnapshot(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	p := platformtest.New(t, platformtest.WithSync(embedded.SyncPeriodic),
		platformtest.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))),
		platformtest.WithMarketDataConfig(func(c *marketdata.Config) { c.SnapshotEvery = 3 }))
	for acct, asset := range map[string]string{"maker": "BTC", "taker": "USDT"} {
		if _, err := p.Wallet.Deposit(t.Context(), &walletv1.DepositRequest{TransferId: "d-" + acct, AccountId: acct, Asset: asset, Amount: "100000"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		place(t, p, "maker", commonv1.Side_SIDE_SELL, "0.01", fmt.Sprintf("500%02d", i))
		place(t, p, "taker", commonv1.Side_SIDE_BUY, "0.004", fmt.Sprintf("500%02d", i))
	}
	p.WaitSettled(t)
	state := func() string {
		t.Helper()
		book, err := p.MarketData.GetBook(t.Context(), &marketdatav1.GetBookRequest{InstrumentId: "BTCUSDT"})
		if err != nil {
			t.Fatal(err)
		}
		trades, err := p.MarketData.ListTrades(t.Context(), &marketdatav1.ListTradesRequest{InstrumentId: "BTCUSDT"})
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%s seq %d, %d trades", snapshotString(book.GetBook()), book.GetBook().GetSeq(), len(trades.GetTrades()))
	}
	var before string
	// Each buy takes the oldest asks left: six trades, three asks untouched.
	const want = "bids  | asks 50002.00x0.01000 50003.00x0.01000 50004.00x0.01000 seq 16, 6 trades"
	polltest.Until(t, "market data of every order", func() error {
		if before = state(); before != want {
			return fmt.Errorf("market data %s, want %s", before, want)
		}
		return nil
	}, polltest.WithTimeout(waitFor))
	store, err := p.JetStream().ObjectStore(t.Context(), streams.StoreMarketDataSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "a snapshot written", func() error {
		info, err := store.GetInfo(t.Context(), "state")
		if err != nil {
			return err
		}
		if info.Size == 0 {
			return errors.New("empty snapshot")
		}
		return nil
	}, polltest.WithTimeout(waitFor))

	p.KillMarketData()
	p.StartMarketData()
	if after := state(); after != before {
		t.Errorf("after a restart from the snapshot: %s, before: %s", after, before)
	}
	if !strings.Contains(logs.String(), "market data snapshot loaded") {
		t.Error("the restart did not load the snapshot")
	}

	p.KillMarketData()
	if _, err := store.PutBytes(t.Context(), "state", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	p.StartMarketData()
	if after := state(); after != before {
		t.Errorf("after a restart with a corrupt snapshot: %s, before: %s", after, before)
	}
	if !strings.Contains(logs.String(), "market data snapshot ignored") {
		t.Error("the corrupt snapshot was not reported")
	}
}

// An engine event the market cannot take is skipped with an error log, and
// the instrument keeps following the later events (no gap).
func TestUnreadableEventIsSkipped(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t, platformtest.WithSync(embedded.SyncPeriodic))
	pub := streams.NewPublisher(p.JetStream(), streams.DefaultCatalog(), streams.WithSource("test/engine"))
	for seq, price := range []string{"3000.00", "not-a-price", "2999.50"} { // ETHUSDT: no matching engine activity
		ev := &enginev1.EngineEvent{
			EventId: fmt.Sprintf("ETHUSDT:%d:0", seq+1), InstrumentId: "ETHUSDT", Sequence: uint64(seq + 1), EngineTime: timestamppb.Now(),
			BookChanges: []*enginev1.BookLevelChange{{Side: commonv1.Side_SIDE_BUY, Price: price, Quantity: "1.0000"}},
			Event:       &enginev1.EngineEvent_Accepted{Accepted: &enginev1.OrderAccepted{OrderId: fmt.Sprint(seq)}},
		}
		if _, err := pub.Publish(t.Context(), streams.TopicEngineEvent, "ETHUSDT", ev); err != nil {
			t.Fatal(err)
		}
	}
	const want = "bids 3000.00x1.0000 2999.50x1.0000 | asks "
	polltest.Until(t, "the later events applied", func() error {
		res, err := p.MarketData.GetBook(t.Context(), &marketdatav1.GetBookRequest{InstrumentId: "ETHUSDT"})
		if err != nil {
			return err
		}
		if snapshotString(res.GetBook()) != want || res.GetBook().GetSeq() != 3 {
			return fmt.Errorf("GetBook %v; want %s at seq 3", res, want)
		}
		return nil
	}, polltest.WithTimeout(waitFor))
}
