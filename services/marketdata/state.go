package marketdata

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/services/marketdata/market"
)

// instrument is one instrument's market and how to write its numbers.
type instrument struct {
	symbol string
	sc     scales
	m      *market.Market
	// mark is a perpetual's latest mark price (nil: none yet).
	mark *marketdatav1.MarkPrice
}

// update is what one engine event changed, in the API's terms, for the
// server streams.
type update struct {
	instrument string
	delta      *marketdatav1.BookDelta
	trade      *marketdatav1.Trade
	ticker     *marketdatav1.Ticker
	mark       *marketdatav1.MarkPrice
}

// subscriber is an open server stream.
type subscriber struct {
	want func(instrument string) bool
	// tickers: the stream wants the ticker after each event (computing it
	// costs a walk over the day's candles, so only for such streams).
	tickers bool
	ch      chan update
}

// state holds every instrument and the open streams. The feed is its only
// writer.
type state struct {
	cfg  Config
	mu   sync.RWMutex
	ins  map[string]*instrument
	subs map[*subscriber]struct{}
}

func newState(cfg Config) *state {
	return &state{cfg: cfg, ins: map[string]*instrument{}, subs: map[*subscriber]struct{}{}}
}

// reset forgets everything, for a rebuild; open streams end (their
// sequences would not continue).
func (st *state) reset() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.ins = map[string]*instrument{}
	for sub := range st.subs {
		close(sub.ch)
		delete(st.subs, sub)
	}
}

func (st *state) count() int {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return len(st.ins)
}

func (st *state) scales(sym string) (scales, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	in, ok := st.ins[sym]
	if !ok {
		return scales{}, false
	}
	return in.sc, true
}

// apply applies ev, and a perpetual's mark price (at the price scale; ""
// when the event has none), to the instrument and hands what changed to
// the streams that want it; a stream that is StreamBuffer updates behind
// is ended.
func (st *state) apply(sym string, sc scales, ev market.Event, mark string, now time.Time) (update, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	in := st.ins[sym]
	if in == nil {
		in = &instrument{symbol: sym, sc: sc, m: market.New(st.cfg.Market)}
		st.ins[sym] = in
	}
	prevBookSeq := in.m.BookSeq()
	changed, err := in.m.Apply(ev)
	if err != nil {
		return update{}, err
	}
	u := update{instrument: sym}
	if mark != "" && in.sc.perpetual {
		if _, err := decimal.ParseNonNegative(mark, in.sc.price); err != nil {
			return update{}, fmt.Errorf("mark price: %w", err)
		}
		in.mark = &marketdatav1.MarkPrice{InstrumentId: sym, MarkPrice: mark, Seq: ev.Seq, Time: timestamppb.New(ev.Time)}
		u.mark = in.mark
	}
	if !changed && ev.Trade == nil && u.mark == nil {
		return update{}, nil
	}
	if changed {
		u.delta = in.delta(ev, prevBookSeq)
	}
	if ev.Trade != nil {
		t := *ev.Trade
		t.Seq = ev.Seq
		u.trade = in.trade(t)
	}
	for sub := range st.subs {
		if !sub.want(sym) {
			continue
		}
		if sub.tickers && u.ticker == nil {
			u.ticker = in.ticker(now)
		}
		select {
		case sub.ch <- u:
		default: // too far behind: end it rather than hold up the feed
			close(sub.ch)
			delete(st.subs, sub)
		}
	}
	return u, nil
}

// subscribe registers a stream and calls first with the state at the
// moment it starts receiving updates, so nothing falls between the two.
func (st *state) subscribe(want func(string) bool, tickers bool, first func(map[string]*instrument)) (*subscriber, func()) {
	sub := &subscriber{want: want, tickers: tickers, ch: make(chan update, st.cfg.StreamBuffer)}
	st.mu.Lock()
	defer st.mu.Unlock()
	first(st.ins)
	st.subs[sub] = struct{}{}
	return sub, func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		if _, ok := st.subs[sub]; ok {
			delete(st.subs, sub)
			close(sub.ch)
		}
	}
}

// read runs fn with the instrument (nil if unknown) for reading.
func (st *state) read(sym string, fn func(in *instrument)) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	fn(st.ins[sym])
}

// readAll runs fn with every instrument for reading.
func (st *state) readAll(fn func(map[string]*instrument)) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	fn(st.ins)
}

func (in *instrument) price(v int64) string { return decimal.Format(v, in.sc.price) }
func (in *instrument) qty(v int64) string   { return decimal.Format(v, in.sc.quantity) }

func (in *instrument) levels(ls []market.Level) []*marketdatav1.BookLevel {
	out := make([]*marketdatav1.BookLevel, len(ls))
	for i, l := range ls {
		out[i] = &marketdatav1.BookLevel{Price: in.price(l.Price), Quantity: in.qty(l.Quantity)}
	}
	return out
}

// snapshot is the book at depth (0: all), with the sequence of the last
// event that changed it.
func (in *instrument) snapshot(depth int) *marketdatav1.BookSnapshot {
	bids, asks := in.m.Book(depth)
	return &marketdatav1.BookSnapshot{
		InstrumentId: in.symbol, Bids: in.levels(bids), Asks: in.levels(asks),
		Seq: in.m.BookSeq(), Time: timestamppb.New(in.m.Time()),
	}
}

// delta is the levels ev changed (quantity 0: removed).
func (in *instrument) delta(ev market.Event, prevSeq uint64) *marketdatav1.BookDelta {
	d := &marketdatav1.BookDelta{InstrumentId: in.symbol, Seq: ev.Seq, PrevSeq: prevSeq, Time: timestamppb.New(ev.Time)}
	for _, c := range ev.Changes {
		l := &marketdatav1.BookLevel{Price: in.price(c.Price), Quantity: in.qty(c.Quantity)}
		if c.Side == market.Buy {
			d.Bids = append(d.Bids, l)
		} else {
			d.Asks = append(d.Asks, l)
		}
	}
	return d
}

func (in *instrument) trade(t market.Trade) *marketdatav1.Trade {
	return &marketdatav1.Trade{
		TradeId: t.ID, InstrumentId: in.symbol, Price: in.price(t.Price), Quantity: in.qty(t.Quantity),
		QuoteQuantity: decimal.Format(t.Quote, in.sc.price+in.sc.quantity),
		TakerSide:     commonv1.Side(t.TakerSide), Time: timestamppb.New(t.Time), Seq: t.Seq,
	}
}

func (in *instrument) ticker(now time.Time) *marketdatav1.Ticker {
	t := in.m.Ticker(now)
	out := &marketdatav1.Ticker{
		InstrumentId: in.symbol, Open: in.price(t.Open), High: in.price(t.High), Low: in.price(t.Low),
		Last: in.price(t.Last), Volume: in.qty(t.Volume), QuoteVolume: decimal.Format(t.QuoteVolume, in.sc.price+in.sc.quantity),
		PriceChange: in.price(t.Change()), PriceChangePercent: decimal.Format(t.ChangeBasisPoints(), 2),
		TradeCount: t.Count, WindowStart: timestamppb.New(t.WindowStart), WindowEnd: timestamppb.New(t.WindowEnd),
	}
	if bid, ok, ask, aok := in.m.Best(); ok || aok {
		if ok {
			out.BestBid, out.BestBidQuantity = in.price(bid.Price), in.qty(bid.Quantity)
		}
		if aok {
			out.BestAsk, out.BestAskQuantity = in.price(ask.Price), in.qty(ask.Quantity)
		}
	}
	return out
}

func (in *instrument) candle(pi marketdatav1.CandleInterval, iv market.Interval, c market.Candle) *marketdatav1.Candle {
	return &marketdatav1.Candle{
		InstrumentId: in.symbol, Interval: pi,
		OpenTime: timestamppb.New(c.OpenTime), CloseTime: timestamppb.New(c.OpenTime.Add(time.Duration(iv))),
		Open: in.price(c.Open), High: in.price(c.High), Low: in.price(c.Low), Close: in.price(c.Close),
		Volume: in.qty(c.Volume), QuoteVolume: decimal.Format(c.QuoteVolume, in.sc.price+in.sc.quantity),
		TradeCount: c.Count, Closed: in.m.Closed(iv, c.OpenTime),
	}
}

// snapshot copies every instrument's state, covering the engine stream up
// to stream.
func (st *state) snapshot(stream uint64) snapshotDoc {
	st.mu.RLock()
	defer st.mu.RUnlock()
	doc := snapshotDoc{Version: snapshotVersion, Stream: stream}
	for _, sym := range slices.Sorted(maps.Keys(st.ins)) {
		in := st.ins[sym]
		doc.Instruments = append(doc.Instruments, snapInstrument{
			Symbol: sym, PriceScale: in.sc.price, QuantityScale: in.sc.quantity, Perpetual: in.sc.perpetual,
			Mark: snapMarkOf(in.mark), State: in.m.State()})
	}
	return doc
}

// restore replaces every instrument with the snapshot's.
func (st *state) restore(cfg market.Config, doc snapshotDoc) error {
	ins := map[string]*instrument{}
	for _, si := range doc.Instruments {
		m, err := market.Restore(cfg, si.State)
		if err != nil {
			return fmt.Errorf("instrument %s: %w", si.Symbol, err)
		}
		ins[si.Symbol] = &instrument{symbol: si.Symbol, m: m, mark: si.Mark.markPrice(si.Symbol),
			sc: scales{price: si.PriceScale, quantity: si.QuantityScale, perpetual: si.Perpetual}}
	}
	st.reset()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.ins = ins
	return nil
}
