package marketdata

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"connectrpc.com/connect"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	"github.com/tradex-mesh/tradex/services/marketdata/market"
)

// handler is the Connect handler: requests in, the state's views out.
type handler struct{ s *Service }

func (h *handler) fail(ctx context.Context, err error) error { return toConnect(ctx, h.s.log, err) }

// find runs fn with the named instrument: InvalidArgument without a name,
// NotFound for an instrument with no engine event yet (or unknown).
func (h *handler) find(ctx context.Context, sym string, fn func(in *instrument)) error {
	if err := h.s.checkReady(); err != nil {
		return err
	}
	if sym == "" {
		return invalid("instrument_id", "is required")
	}
	found := false
	h.s.st.read(sym, func(in *instrument) {
		if in != nil {
			found = true
			fn(in)
		}
	})
	if found {
		return nil
	}
	if _, err := h.s.insts.Get(ctx, sym); err != nil {
		return fmt.Errorf("%w: %s", ErrInstrumentNotFound, sym)
	}
	return errEmpty
}

// errEmpty is an instrument that exists but has no market data yet.
var errEmpty = errors.New("no market data yet")

// depth checks a requested depth: 0 is every level up to MaxDepth.
func (h *handler) depth(d int32) (int, error) {
	switch {
	case d < 0:
		return 0, invalid("depth", "must not be negative")
	case d == 0 || int(d) > h.s.cfg.MaxDepth:
		return h.s.cfg.MaxDepth, nil
	}
	return int(d), nil
}

// limitOf checks a requested limit: 0 is def, anything above most is most.
func limitOf(limit int32, def, most int) (int, error) {
	switch {
	case limit < 0:
		return 0, invalid("limit", "must not be negative")
	case limit == 0:
		return min(def, most), nil
	}
	return min(int(limit), most), nil
}

// GetBook returns the book to the requested depth.
func (h *handler) GetBook(ctx context.Context, req *marketdatav1.GetBookRequest) (*marketdatav1.GetBookResponse, error) {
	depth, err := h.depth(req.GetDepth())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	res := &marketdatav1.GetBookResponse{Book: &marketdatav1.BookSnapshot{InstrumentId: req.GetInstrumentId()}}
	err = h.find(ctx, req.GetInstrumentId(), func(in *instrument) { res.Book = in.snapshot(depth) })
	if err != nil && !errors.Is(err, errEmpty) {
		return nil, h.fail(ctx, err)
	}
	return res, nil
}

// ListTrades returns recent trades, newest first.
func (h *handler) ListTrades(ctx context.Context, req *marketdatav1.ListTradesRequest) (*marketdatav1.ListTradesResponse, error) {
	limit, err := limitOf(req.GetLimit(), 100, h.s.cfg.MaxTrades)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	res := &marketdatav1.ListTradesResponse{}
	err = h.find(ctx, req.GetInstrumentId(), func(in *instrument) {
		for _, t := range in.m.Trades(limit, req.GetBeforeSeq()) {
			res.Trades = append(res.Trades, in.trade(t))
		}
	})
	if err != nil && !errors.Is(err, errEmpty) {
		return nil, h.fail(ctx, err)
	}
	return res, nil
}

// GetTicker returns the instrument's rolling 24-hour ticker.
func (h *handler) GetTicker(ctx context.Context, req *marketdatav1.GetTickerRequest) (*marketdatav1.GetTickerResponse, error) {
	now := h.s.now()
	res := &marketdatav1.GetTickerResponse{}
	err := h.find(ctx, req.GetInstrumentId(), func(in *instrument) { res.Ticker = in.ticker(now) })
	if errors.Is(err, errEmpty) {
		res.Ticker, err = &marketdatav1.Ticker{InstrumentId: req.GetInstrumentId()}, nil
	}
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return res, nil
}

// ListTickers returns the tickers of the named instruments (none named:
// every instrument with market data), sorted by symbol.
func (h *handler) ListTickers(ctx context.Context, req *marketdatav1.ListTickersRequest) (*marketdatav1.ListTickersResponse, error) {
	if err := h.s.checkReady(); err != nil {
		return nil, h.fail(ctx, err)
	}
	now := h.s.now()
	want := req.GetInstrumentIds()
	res := &marketdatav1.ListTickersResponse{}
	h.s.st.readAll(func(all map[string]*instrument) {
		for _, sym := range slices.Sorted(maps.Keys(all)) {
			if len(want) == 0 || slices.Contains(want, sym) {
				res.Tickers = append(res.Tickers, all[sym].ticker(now))
			}
		}
	})
	return res, nil
}

var intervals = map[marketdatav1.CandleInterval]market.Interval{
	marketdatav1.CandleInterval_CANDLE_INTERVAL_ONE_MINUTE:      market.Minute,
	marketdatav1.CandleInterval_CANDLE_INTERVAL_FIVE_MINUTES:    market.FiveMinutes,
	marketdatav1.CandleInterval_CANDLE_INTERVAL_FIFTEEN_MINUTES: market.FifteenMinutes,
	marketdatav1.CandleInterval_CANDLE_INTERVAL_ONE_HOUR:        market.Hour,
	marketdatav1.CandleInterval_CANDLE_INTERVAL_FOUR_HOURS:      market.FourHours,
	marketdatav1.CandleInterval_CANDLE_INTERVAL_ONE_DAY:         market.Day,
	marketdatav1.CandleInterval_CANDLE_INTERVAL_ONE_WEEK:        market.Week,
}

// ListCandles returns candles oldest first (the newest limit of them).
func (h *handler) ListCandles(ctx context.Context, req *marketdatav1.ListCandlesRequest) (*marketdatav1.ListCandlesResponse, error) {
	iv, ok := intervals[req.GetInterval()]
	if !ok {
		return nil, h.fail(ctx, invalid("interval", "must be set"))
	}
	limit, err := limitOf(req.GetLimit(), 500, h.s.cfg.MaxCandles)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	var from, to time.Time
	if req.GetStartTime() != nil {
		from = req.GetStartTime().AsTime()
	}
	if req.GetEndTime() != nil {
		to = req.GetEndTime().AsTime()
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return nil, h.fail(ctx, invalid("end_time", "must be after start_time"))
	}
	res := &marketdatav1.ListCandlesResponse{}
	var cerr error
	err = h.find(ctx, req.GetInstrumentId(), func(in *instrument) {
		cs, err := in.m.Candles(iv, from, to, limit)
		if err != nil {
			cerr = err
			return
		}
		for _, c := range cs {
			res.Candles = append(res.Candles, in.candle(req.GetInterval(), iv, c))
		}
	})
	if err != nil && !errors.Is(err, errEmpty) {
		return nil, h.fail(ctx, err)
	}
	if cerr != nil {
		return nil, h.fail(ctx, cerr)
	}
	return res, nil
}

// StreamBook sends the book to the requested depth, then every change as a
// delta whose prev_seq is the seq of the change before it: a client that
// sees prev_seq differ from the last seq it applied missed one and
// resubscribes. Deltas carry every changed level, beyond the depth too.
func (h *handler) StreamBook(ctx context.Context, req *marketdatav1.StreamBookRequest, stream *connect.ServerStream[marketdatav1.StreamBookResponse]) error {
	depth, err := h.depth(req.GetDepth())
	if err == nil {
		err = h.find(ctx, req.GetInstrumentId(), func(*instrument) {})
	}
	if err != nil && !errors.Is(err, errEmpty) {
		return h.fail(ctx, err)
	}
	sym := req.GetInstrumentId()
	snap := &marketdatav1.BookSnapshot{InstrumentId: sym}
	sub, cancel := h.s.st.subscribe(func(s string) bool { return s == sym }, false, func(all map[string]*instrument) {
		if in := all[sym]; in != nil {
			snap = in.snapshot(depth)
		}
	})
	defer cancel()
	if err := stream.Send(&marketdatav1.StreamBookResponse{Event: &marketdatav1.StreamBookResponse_Snapshot{Snapshot: snap}}); err != nil {
		return err
	}
	return h.pump(ctx, sub, func(u update) error {
		if u.delta == nil {
			return nil
		}
		return stream.Send(&marketdatav1.StreamBookResponse{Event: &marketdatav1.StreamBookResponse_Delta{Delta: u.delta}})
	})
}

// StreamTrades sends every trade of the instruments (none named: all) as it
// happens.
func (h *handler) StreamTrades(ctx context.Context, req *marketdatav1.StreamTradesRequest, stream *connect.ServerStream[marketdatav1.StreamTradesResponse]) error {
	sub, cancel, err := h.subscribeMany(ctx, req.GetInstrumentIds(), false)
	if err != nil {
		return h.fail(ctx, err)
	}
	defer cancel()
	if err := stream.Send(nil); err != nil { // the headers now: the client's call returns before the first trade
		return err
	}
	return h.pump(ctx, sub, func(u update) error {
		if u.trade == nil {
			return nil
		}
		return stream.Send(&marketdatav1.StreamTradesResponse{Trade: u.trade})
	})
}

// StreamTicker sends the ticker of the instruments (none named: all) after
// every event that changed it.
func (h *handler) StreamTicker(ctx context.Context, req *marketdatav1.StreamTickerRequest, stream *connect.ServerStream[marketdatav1.StreamTickerResponse]) error {
	now := h.s.now()
	var current []*marketdatav1.Ticker
	sub, cancel, err := h.subscribeWith(ctx, req.GetInstrumentIds(), true, func(all map[string]*instrument) {
		for _, sym := range slices.Sorted(maps.Keys(all)) {
			if len(req.GetInstrumentIds()) == 0 || slices.Contains(req.GetInstrumentIds(), sym) {
				current = append(current, all[sym].ticker(now))
			}
		}
	})
	if err != nil {
		return h.fail(ctx, err)
	}
	defer cancel()
	if err := stream.Send(nil); err != nil { // the headers now, before the first change
		return err
	}
	for _, t := range current { // the current tickers first, then every change after them
		if err := stream.Send(&marketdatav1.StreamTickerResponse{Ticker: t}); err != nil {
			return err
		}
	}
	return h.pump(ctx, sub, func(u update) error {
		if u.ticker == nil {
			return nil
		}
		return stream.Send(&marketdatav1.StreamTickerResponse{Ticker: u.ticker})
	})
}

func (h *handler) subscribeMany(ctx context.Context, syms []string, tickers bool) (*subscriber, func(), error) {
	return h.subscribeWith(ctx, syms, tickers, func(map[string]*instrument) {})
}

// subscribeWith subscribes to the named instruments (none: all); at, run
// under the state's lock as the subscription starts, sees every
// instrument then.
func (h *handler) subscribeWith(ctx context.Context, syms []string, tickers bool, at func(map[string]*instrument)) (*subscriber, func(), error) {
	if err := h.s.checkReady(); err != nil {
		return nil, nil, err
	}
	for _, sym := range syms {
		if _, err := h.s.insts.Get(ctx, sym); err != nil {
			return nil, nil, fmt.Errorf("%w: %s", ErrInstrumentNotFound, sym)
		}
	}
	sub, cancel := h.s.st.subscribe(func(s string) bool { return len(syms) == 0 || slices.Contains(syms, s) }, tickers, at)
	return sub, cancel, nil
}

// pump sends the subscriber's updates until the client leaves, the
// service stops, or the client falls too far behind.
func (h *handler) pump(ctx context.Context, sub *subscriber, send func(update) error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.s.stopped:
			return connect.NewError(connect.CodeUnavailable, errors.New("market data service stopped; reconnect"))
		case u, ok := <-sub.ch:
			if !ok {
				return connect.NewError(connect.CodeResourceExhausted, errors.New("stream fell behind or the feed was rebuilt; resubscribe"))
			}
			if err := send(u); err != nil {
				return err
			}
		}
	}
}

// GetMarkPrice returns a perpetual's mark price; one without a quote or a
// trade yet has an empty one (as an instrument without market data has an
// empty ticker).
func (h *handler) GetMarkPrice(ctx context.Context, req *marketdatav1.GetMarkPriceRequest) (*marketdatav1.GetMarkPriceResponse, error) {
	sym := req.GetInstrumentId()
	perpetual, err := h.perpetual(ctx, sym)
	if err == nil && !perpetual {
		err = invalid("instrument_id", sym+" is not a perpetual: only perpetuals have a mark price")
	}
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	mark := &marketdatav1.MarkPrice{InstrumentId: sym}
	h.s.st.read(sym, func(in *instrument) {
		if in != nil && in.mark != nil {
			mark = in.mark
		}
	})
	return &marketdatav1.GetMarkPriceResponse{MarkPrice: mark}, nil
}

// StreamMarkPrices streams the mark prices of the named perpetuals (none:
// every perpetual): the current ones first, then every new one.
func (h *handler) StreamMarkPrices(ctx context.Context, req *marketdatav1.StreamMarkPricesRequest, stream *connect.ServerStream[marketdatav1.StreamMarkPricesResponse]) error {
	syms := req.GetInstrumentIds()
	for _, sym := range syms {
		perpetual, err := h.perpetual(ctx, sym)
		if err == nil && !perpetual {
			err = invalid("instrument_ids", sym+" is not a perpetual: only perpetuals have a mark price")
		}
		if err != nil {
			return h.fail(ctx, err)
		}
	}
	var current []*marketdatav1.MarkPrice
	sub, cancel, err := h.subscribeWith(ctx, syms, false, func(all map[string]*instrument) {
		for _, sym := range slices.Sorted(maps.Keys(all)) {
			if m := all[sym].mark; m != nil && (len(syms) == 0 || slices.Contains(syms, sym)) {
				current = append(current, m)
			}
		}
	})
	if err != nil {
		return h.fail(ctx, err)
	}
	defer cancel()
	if err := stream.Send(nil); err != nil { // the headers now, before the first mark
		return err
	}
	for _, m := range current {
		if err := stream.Send(&marketdatav1.StreamMarkPricesResponse{MarkPrice: m}); err != nil {
			return err
		}
	}
	return h.pump(ctx, sub, func(u update) error {
		if u.mark == nil {
			return nil
		}
		return stream.Send(&marketdatav1.StreamMarkPricesResponse{MarkPrice: u.mark})
	})
}

// perpetual reports whether sym is a perpetual, from the instrument cache.
func (h *handler) perpetual(ctx context.Context, sym string) (bool, error) {
	if err := h.s.checkReady(); err != nil {
		return false, err
	}
	if sym == "" {
		return false, invalid("instrument_id", "is required")
	}
	in, err := h.s.insts.Get(ctx, sym)
	if err != nil {
		return false, fmt.Errorf("%w: %s", ErrInstrumentNotFound, sym)
	}
	return in.GetKind() == commonv1.InstrumentKind_INSTRUMENT_KIND_PERPETUAL, nil
}
