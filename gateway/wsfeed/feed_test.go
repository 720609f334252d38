package wsfeed_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"

	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
)

// The platform's own example frame, exactly as written, subscribes to the
// book of BTCUSDT-PERP: an ack, then the (empty) snapshot.
func TestSeedSubscribeFrame(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dial(t)
	c.send(`{"op":"subscribe","channels":[{"name":"book","symbols":["BTCUSDT-PERP"]}]}`)
	ack := c.expect("subscribed", "", "")
	if len(ack.Channels) != 1 || ack.Channels[0].Name != "book" || len(ack.Channels[0].Symbols) != 1 || ack.Channels[0].Symbols[0] != "BTCUSDT-PERP" {
		t.Errorf("ack %s", ack)
	}
	snap := c.next()
	if snap.Op != "book" || snap.Type != "snapshot" || snap.Symbol != "BTCUSDT-PERP" {
		t.Fatalf("after the ack %s; want the book snapshot", snap)
	}
	if d := decodeBook(t, snap); len(d.Bids)+len(d.Asks) != 0 {
		t.Errorf("snapshot of a quiet instrument %s", snap)
	}
	// With a req_id the ack names it.
	c.send(`{"op":"subscribe","channels":[{"name":"book","symbols":["BTCUSDT-PERP"]}],"req_id":"1"}`)
	c.expect("subscribed", "", "1")
}

// Orders placed on the platform reach the book channel: its snapshot plus
// deltas rebuild exactly the book GetBook serves, every delta's prevSeq
// being the seq before it (so a gap would show); a second subscriber that
// joins later gets the hub's snapshot at the current seq and the same
// deltas after it; the trades channel carries the trade of two crossing
// orders, the ticker and candles channels their new values.
func TestBookTradesTickerCandles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	fund(t, e.p, "maker", "taker")
	c := e.dial(t)
	c.send(`{"op":"subscribe","channels":[{"name":"book","symbols":["BTCUSDT"]},{"name":"trades","symbols":["BTCUSDT"]},` +
		`{"name":"ticker","symbols":["BTCUSDT"]},{"name":"candles","symbols":["BTCUSDT"],"interval":"1m"}],"req_id":"s"}`)
	ack := c.expect("subscribed", "", "s")
	if len(ack.Channels) != 4 {
		t.Fatalf("ack %s", ack)
	}
	kept := &l2{}
	var ticker int
	for kept.bids == nil || ticker == 0 { // the snapshot and the current ticker (candles: none yet)
		f := c.next()
		switch f.Op {
		case "book":
			kept.apply(t, f)
		case "ticker":
			ticker++
		default:
			t.Fatalf("first frames: unexpected %s", f)
		}
	}

	place(t, e.p, "maker", sell, "0.01000", "50000.00")
	place(t, e.p, "maker", sell, "0.02000", "50010.00")
	place(t, e.p, "taker", buy, "0.00500", "49990.00")
	place(t, e.p, "taker", buy, "0.01500", "50000.00") // trades 0.01 at 50000, rests 0.005
	e.p.WaitSettled(t)

	want := "bids 50000.00x0.00500 49990.00x0.00500 | asks 50010.00x0.02000"
	var book *marketdatav1.GetBookResponse
	polltest.True(t, "GetBook to show the orders", func() bool {
		var err error
		book, err = e.p.MarketData.GetBook(t.Context(), &marketdatav1.GetBookRequest{InstrumentId: "BTCUSDT"})
		return err == nil && fromSnapshot(book.GetBook()) == want
	})

	var trade struct {
		Price, Quantity, TakerSide string
		Seq                        uint64
	}
	var candle struct {
		Close, Volume string
		TradeCount    uint64
	}
	var tick struct {
		InstrumentID string `json:"instrumentId"`
		Last         string
		TradeCount   uint64
	}
	for kept.seq < book.GetBook().GetSeq() || trade.Price == "" || candle.TradeCount == 0 || tick.TradeCount == 0 {
		f := c.next()
		switch f.Op {
		case "book":
			kept.apply(t, f)
		case "trades":
			if err := json.Unmarshal(f.Data, &trade); err != nil {
				t.Fatal(err)
			}
		case "ticker":
			if err := json.Unmarshal(f.Data, &tick); err != nil {
				t.Fatal(err)
			}
		case "candles":
			if err := json.Unmarshal(f.Data, &candle); err != nil || f.Interval != "1m" || f.Symbol != "BTCUSDT" {
				t.Fatalf("candle %s: %v", f, err)
			}
		default:
			t.Fatalf("unexpected %s", f)
		}
	}
	if got := kept.String(); got != want {
		t.Errorf("snapshot + deltas: %s; GetBook: %s", got, want)
	}
	if trade.Price != "50000.00" || trade.Quantity != "0.01000" || trade.TakerSide != "buy" {
		t.Errorf("trade %+v", trade)
	}
	if candle.Close != "50000.00" || candle.Volume != "0.01000" || candle.TradeCount != 1 {
		t.Errorf("candle %+v", candle)
	}
	if tick.Last != "50000.00" || tick.TradeCount != 1 || tick.InstrumentID != "BTCUSDT" {
		t.Errorf("ticker %+v", tick)
	}

	// A late subscriber gets the hub's book at the current seq at once,
	// then the deltas after it, chained to it.
	late := e.dial(t)
	late.send(`{"op":"subscribe","channels":[{"name":"book","symbols":["BTCUSDT"]}]}`)
	late.expect("subscribed", "", "")
	lateBook := &l2{}
	lateBook.apply(t, late.next())
	if lateBook.seq != book.GetBook().GetSeq() || lateBook.String() != want {
		t.Errorf("late snapshot at seq %d: %s; want seq %d: %s", lateBook.seq, lateBook, book.GetBook().GetSeq(), want)
	}
	if e.feed.Stats().Upstreams != 4 {
		t.Errorf("upstreams %+v; want 4 (one per channel and symbol, shared)", e.feed.Stats())
	}
	place(t, e.p, "maker", sell, "0.00100", "50020.00")
	for _, cl := range []*client{c, late} {
		b := kept
		if cl == late {
			b = lateBook
		}
		f := cl.until("the next delta", func(f frame) bool { return f.Op == "book" })
		b.apply(t, f)
		if b.asks["50020.00"] != "0.00100" {
			t.Errorf("after the new order: %s", b)
		}
	}
}

func fromSnapshot(s *marketdatav1.BookSnapshot) string {
	b := &l2{bids: map[string]string{}, asks: map[string]string{}}
	for _, l := range s.GetBids() {
		set(b.bids, l.GetPrice(), l.GetQuantity())
	}
	for _, l := range s.GetAsks() {
		set(b.asks, l.GetPrice(), l.GetQuantity())
	}
	return b.String()
}

func (b *l2) String() string {
	format := func(side map[string]string, desc bool) string {
		out := ""
		for _, p := range sortedKeys(side, desc) {
			if out != "" {
				out += " "
			}
			out += fmt.Sprintf("%sx%s", p, side[p])
		}
		return out
	}
	return "bids " + format(b.bids, true) + " | asks " + format(b.asks, false)
}

func sortedKeys(m map[string]string, desc bool) []string {
	keys := slices.Sorted(maps.Keys(m)) // same number of digits here: text order is price order
	if desc {
		slices.Reverse(keys)
	}
	return keys
}
