package wsfeed

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
)

// MarketData is what the feed reads from the market data service;
// marketdatav1connect.MarketDataServiceClient satisfies it.
type MarketData interface {
	StreamBook(ctx context.Context, req *marketdatav1.StreamBookRequest) (*connect.ServerStreamForClient[marketdatav1.StreamBookResponse], error)
	StreamTrades(ctx context.Context, req *marketdatav1.StreamTradesRequest) (*connect.ServerStreamForClient[marketdatav1.StreamTradesResponse], error)
	StreamTicker(ctx context.Context, req *marketdatav1.StreamTickerRequest) (*connect.ServerStreamForClient[marketdatav1.StreamTickerResponse], error)
	ListTrades(ctx context.Context, req *marketdatav1.ListTradesRequest) (*marketdatav1.ListTradesResponse, error)
	GetTicker(ctx context.Context, req *marketdatav1.GetTickerRequest) (*marketdatav1.GetTickerResponse, error)
	ListCandles(ctx context.Context, req *marketdatav1.ListCandlesRequest) (*marketdatav1.ListCandlesResponse, error)
	StreamMarkPrices(ctx context.Context, req *marketdatav1.StreamMarkPricesRequest) (*connect.ServerStreamForClient[marketdatav1.StreamMarkPricesResponse], error)
	GetMarkPrice(ctx context.Context, req *marketdatav1.GetMarkPriceRequest) (*marketdatav1.GetMarkPriceResponse, error)
}

// Orders is what the feed reads from the order service;
// orderv1connect.OrderServiceClient satisfies it.
type Orders interface {
	WatchOrders(ctx context.Context, req *orderv1.WatchOrdersRequest) (*connect.ServerStreamForClient[orderv1.WatchOrdersResponse], error)
}

// Wallet is what the feed reads from the wallet service;
// walletv1connect.WalletServiceClient satisfies it.
type Wallet interface {
	WatchBalances(ctx context.Context, req *walletv1.WatchBalancesRequest) (*connect.ServerStreamForClient[walletv1.WatchBalancesResponse], error)
	WatchPositions(ctx context.Context, req *walletv1.WatchPositionsRequest) (*connect.ServerStreamForClient[walletv1.WatchPositionsResponse], error)
}

// errNoService is a private channel whose service the feed was not given.
var errNoService = connect.NewError(connect.CodeUnavailable, errors.New("the service behind this channel is not configured"))

// source returns the upstream of k.
func (h *hub) source(k key) (source, error) {
	switch k.ch {
	case chBook:
		return &bookSource{md: h.deps.MarketData, key: k, snaps: map[int]*frame{}}, nil
	case chTrades:
		return &tradeSource{md: h.deps.MarketData, key: k}, nil
	case chTicker:
		return &tickerSource{md: h.deps.MarketData, key: k}, nil
	case chMark:
		return &markSource{md: h.deps.MarketData, key: k}, nil
	case chCandles:
		return &candleSource{h: h, key: k, poke: make(chan struct{}, 1), sent: map[int64]*marketdatav1.Candle{}}, nil
	case chOrders:
		if h.deps.Orders == nil {
			return nil, errNoService
		}
		// The maps exist from the start: an upstream that sends a change
		// before its snapshot end must not crash the topic.
		return &orderSource{svc: h.deps.Orders, key: k, working: map[string]*orderv1.Order{}}, nil
	case chBalances:
		if h.deps.Wallet == nil {
			return nil, errNoService
		}
		return &balanceSource{svc: h.deps.Wallet, key: k, balances: map[string]*walletv1.Balance{}}, nil
	case chPositions:
		if h.deps.Wallet == nil {
			return nil, errNoService
		}
		return &positionSource{svc: h.deps.Wallet, key: k, open: map[string]*walletv1.Position{}}, nil
	}
	return nil, fmt.Errorf("wsfeed: no source for channel %d", k.ch)
}

// receive reads a server stream until it ends, calling fn for every
// message, and closes it (after cancel: Close drains what is left).
func receive[M any](stream *connect.ServerStreamForClient[M], cancel context.CancelFunc, fn func(*M) error) error {
	defer func() {
		cancel()
		_ = stream.Close()
	}()
	for stream.Receive() {
		if err := fn(stream.Msg()); err != nil {
			return err
		}
	}
	if err := stream.Err(); err != nil {
		return err
	}
	return errors.New("stream ended")
}

// bookSource keeps an instrument's book from StreamBook (every level), so
// that a new subscriber gets its snapshot from the hub at once.
type bookSource struct {
	md    MarketData
	key   key
	book  book           // under t.mu
	snaps map[int]*frame // snapshot frames by depth for the book's seq; under t.mu
}

// maxCachedDepths bounds the snapshot frames kept for one seq.
const maxCachedDepths = 8

func (s *bookSource) session(ctx context.Context, t *topic) error {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := s.md.StreamBook(ctx, &marketdatav1.StreamBookRequest{InstrumentId: s.key.name})
	if err != nil {
		cancel()
		return fmt.Errorf("stream book %s: %w", s.key.name, err)
	}
	synced := false
	err = receive(stream, cancel, func(m *marketdatav1.StreamBookResponse) error {
		if snap := m.GetSnapshot(); snap != nil { // the first message, and again after the service dropped deltas
			synced = true
			t.live(func() {
				s.book.reset(snap)
				clear(s.snaps)
			})
			return nil
		}
		d := m.GetDelta()
		if d == nil {
			return nil
		}
		if !synced {
			return errors.New("book stream began with a delta")
		}
		return t.fanout(dataFrame(s.key, typeDelta, d), func() error {
			clear(s.snaps)
			return s.book.apply(d) // a gap ends the session: the next one starts from a snapshot
		})
	})
	return fmt.Errorf("book %s: %w", s.key.name, err)
}

func (s *bookSource) greet(depth int) []*frame {
	if depth >= max(len(s.book.bids), len(s.book.asks)) {
		depth = 0 // the whole book: one frame for every depth at least as deep
	}
	f, ok := s.snaps[depth]
	if !ok {
		if len(s.snaps) >= maxCachedDepths {
			clear(s.snaps)
		}
		f = dataFrame(s.key, typeSnapshot, s.book.snapshot(s.key.name, depth))
		s.snaps[depth] = f
	}
	return []*frame{f}
}

// tradeSource relays an instrument's trades.
type tradeSource struct {
	md  MarketData
	key key
}

func (s *tradeSource) session(ctx context.Context, t *topic) error {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := s.md.StreamTrades(ctx, &marketdatav1.StreamTradesRequest{InstrumentIds: []string{s.key.name}})
	if err == nil { // the stream reports an unknown symbol only when it ends: look it up
		if _, err = s.md.ListTrades(ctx, &marketdatav1.ListTradesRequest{InstrumentId: s.key.name, Limit: 1}); err != nil {
			cancel()
			_ = stream.Close()
		}
	}
	if err != nil {
		cancel()
		return fmt.Errorf("stream trades %s: %w", s.key.name, err)
	}
	t.live(func() {})
	err = receive(stream, cancel, func(m *marketdatav1.StreamTradesResponse) error {
		if m.GetTrade() == nil {
			return nil
		}
		return t.fanout(dataFrame(s.key, typeUpdate, m.GetTrade()), nil)
	})
	return fmt.Errorf("trades %s: %w", s.key.name, err)
}

func (s *tradeSource) greet(int) []*frame { return nil }

// tickerSource relays an instrument's ticker; a new subscriber gets the
// current one at once.
type tickerSource struct {
	md      MarketData
	key     key
	current *frame // under t.mu
}

func (s *tickerSource) session(ctx context.Context, t *topic) error {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := s.md.StreamTicker(ctx, &marketdatav1.StreamTickerRequest{InstrumentIds: []string{s.key.name}})
	var now *marketdatav1.GetTickerResponse
	if err == nil { // opened first: any change after the read below is on the stream
		if now, err = s.md.GetTicker(ctx, &marketdatav1.GetTickerRequest{InstrumentId: s.key.name}); err != nil {
			cancel()
			_ = stream.Close()
		}
	}
	if err != nil {
		cancel()
		return fmt.Errorf("stream ticker %s: %w", s.key.name, err)
	}
	first := dataFrame(s.key, typeUpdate, now.GetTicker())
	t.live(func() { s.current = first })
	err = receive(stream, cancel, func(m *marketdatav1.StreamTickerResponse) error {
		if m.GetTicker() == nil {
			return nil
		}
		f := dataFrame(s.key, typeUpdate, m.GetTicker())
		return t.fanout(f, func() error { s.current = f; return nil })
	})
	return fmt.Errorf("ticker %s: %w", s.key.name, err)
}

func (s *tickerSource) greet(int) []*frame {
	if s.current == nil {
		return nil
	}
	return []*frame{s.current}
}

// markSource relays a perpetual's mark price; a new subscriber gets the
// latest one at once.
type markSource struct {
	md      MarketData
	key     key
	current *frame // under t.mu; nil before the first mark
}

func (s *markSource) session(ctx context.Context, t *topic) error {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := s.md.StreamMarkPrices(ctx, &marketdatav1.StreamMarkPricesRequest{InstrumentIds: []string{s.key.name}})
	if err == nil { // the stream reports a spot or unknown symbol only when it ends: look it up
		if _, err = s.md.GetMarkPrice(ctx, &marketdatav1.GetMarkPriceRequest{InstrumentId: s.key.name}); err != nil {
			cancel()
			_ = stream.Close()
		}
	}
	if err != nil {
		cancel()
		return fmt.Errorf("stream mark prices %s: %w", s.key.name, err)
	}
	t.live(func() {}) // the stream's first message is the current mark, if there is one
	err = receive(stream, cancel, func(m *marketdatav1.StreamMarkPricesResponse) error {
		if m.GetMarkPrice() == nil {
			return nil
		}
		f := dataFrame(s.key, typeUpdate, m.GetMarkPrice())
		return t.fanout(f, func() error { s.current = f; return nil })
	})
	return fmt.Errorf("mark %s: %w", s.key.name, err)
}

func (s *markSource) greet(int) []*frame {
	if s.current == nil {
		return nil
	}
	return []*frame{s.current}
}

// candleSource keeps the current candle of an instrument and interval:
// it follows the instrument's trades topic (a member like a connection)
// and after trades re-reads the newest two candles with ListCandles, one
// call at a time (trades arriving meanwhile are coalesced into the next
// call), sending each candle that changed: the current one, and the
// previous one once it closed.
type candleSource struct {
	h       *hub
	key     key
	poke    chan struct{}
	sent    map[int64]*marketdatav1.Candle // by open time (ns); only the session goroutine
	current *frame                         // under t.mu
}

// deliver implements sink: a trade of the instrument happened.
func (s *candleSource) deliver(*frame) {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

func (s *candleSource) session(ctx context.Context, t *topic) error {
	trades, err := s.h.acquire(ctx, key{ch: chTrades, name: s.key.name})
	if err != nil {
		return err
	}
	defer s.h.release(trades)
	if err := trades.wait(ctx, s.h.cfg.SubscribeTimeout, nil); err != nil {
		return err
	}
	trades.attach(s, 0)
	defer trades.detach(s)
	candles, err := s.list(ctx)
	if err != nil {
		return err
	}
	clear(s.sent)
	first := s.changed(candles)
	t.live(func() {
		if len(first) > 0 {
			s.current = first[len(first)-1]
		}
	})
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.poke:
		}
		candles, err := s.list(ctx)
		if err != nil {
			return err
		}
		for _, f := range s.changed(candles) {
			if err := t.fanout(f, func() error { s.current = f; return nil }); err != nil {
				return err
			}
		}
	}
}

// list reads the newest two candles (the current one and the one before).
func (s *candleSource) list(ctx context.Context) ([]*marketdatav1.Candle, error) {
	res, err := s.h.deps.MarketData.ListCandles(ctx, &marketdatav1.ListCandlesRequest{
		InstrumentId: s.key.name, Interval: s.key.interval, Limit: 2,
	})
	if err != nil {
		return nil, fmt.Errorf("list candles %s: %w", s.key, err)
	}
	return res.GetCandles(), nil
}

// changed returns the frames of the candles that differ from what was
// sent (oldest first) and remembers them.
func (s *candleSource) changed(candles []*marketdatav1.Candle) []*frame {
	var out []*frame
	for _, c := range candles {
		at := c.GetOpenTime().AsTime().UnixNano()
		if prev, ok := s.sent[at]; ok && proto.Equal(prev, c) {
			continue
		}
		s.sent[at] = c
		out = append(out, dataFrame(s.key, typeUpdate, c))
	}
	if len(candles) > 0 && len(s.sent) > 4 { // keep what the newest candles need
		oldest := candles[0].GetOpenTime().AsTime().UnixNano()
		for at := range s.sent {
			if at < oldest {
				delete(s.sent, at)
			}
		}
	}
	return out
}

func (s *candleSource) greet(int) []*frame {
	if s.current == nil {
		return nil
	}
	return []*frame{s.current}
}

// orderSource relays an account's orders: a new subscriber gets a
// snapshot of the working orders, then every change.
type orderSource struct {
	svc     Orders
	key     key
	working map[string]*orderv1.Order // under t.mu
	snap    *frame                    // snapshot of working, nil when stale; under t.mu
}

func (s *orderSource) session(ctx context.Context, t *topic) error {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := s.svc.WatchOrders(ctx, &orderv1.WatchOrdersRequest{AccountId: s.key.name})
	if err != nil {
		cancel()
		return fmt.Errorf("watch orders: %w", err)
	}
	current := map[string]*orderv1.Order{}
	err = receive(stream, cancel, func(m *orderv1.WatchOrdersResponse) error {
		switch ev := m.GetEvent().(type) {
		case *orderv1.WatchOrdersResponse_Current:
			current[ev.Current.GetOrderId()] = ev.Current
		case *orderv1.WatchOrdersResponse_SnapshotEnd:
			t.live(func() { s.working, s.snap = current, nil })
		case *orderv1.WatchOrdersResponse_Updated:
			o := ev.Updated
			return t.fanout(dataFrame(s.key, typeUpdate, o), func() error {
				if have := s.working[o.GetOrderId()]; have != nil && have.GetRevision() > o.GetRevision() {
					return nil
				}
				if working(o.GetStatus()) {
					s.working[o.GetOrderId()] = o
				} else {
					delete(s.working, o.GetOrderId())
				}
				s.snap = nil
				return nil
			})
		}
		return nil
	})
	return fmt.Errorf("orders: %w", err)
}

func working(st commonv1.OrderStatus) bool {
	return st == commonv1.OrderStatus_ORDER_STATUS_NEW || st == commonv1.OrderStatus_ORDER_STATUS_PARTIALLY_FILLED
}

func (s *orderSource) greet(int) []*frame {
	if s.snap == nil {
		list := make([]*orderv1.Order, 0, len(s.working))
		for _, o := range s.working {
			list = append(list, o)
		}
		slices.SortFunc(list, func(a, b *orderv1.Order) int { return strings.Compare(a.GetOrderId(), b.GetOrderId()) })
		s.snap = listFrame(s.key, typeSnapshot, list)
	}
	return []*frame{s.snap}
}

// balanceSource relays an account's balances: a new subscriber gets a
// snapshot of every balance, then every journal entry.
type balanceSource struct {
	svc      Wallet
	key      key
	balances map[string]*walletv1.Balance // by asset; under t.mu
	snap     *frame                       // under t.mu
}

func (s *balanceSource) session(ctx context.Context, t *topic) error {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := s.svc.WatchBalances(ctx, &walletv1.WatchBalancesRequest{AccountId: s.key.name})
	if err != nil {
		cancel()
		return fmt.Errorf("watch balances: %w", err)
	}
	current := map[string]*walletv1.Balance{}
	err = receive(stream, cancel, func(m *walletv1.WatchBalancesResponse) error {
		switch ev := m.GetEvent().(type) {
		case *walletv1.WatchBalancesResponse_Current:
			current[ev.Current.GetAsset()] = ev.Current
		case *walletv1.WatchBalancesResponse_SnapshotEnd:
			t.live(func() { s.balances, s.snap = current, nil })
		case *walletv1.WatchBalancesResponse_Changed:
			c := ev.Changed
			return t.fanout(dataFrame(s.key, typeUpdate, c), func() error {
				s.balances[c.GetAsset()] = applyChange(s.balances[c.GetAsset()], c)
				s.snap = nil
				return nil
			})
		}
		return nil
	})
	return fmt.Errorf("balances: %w", err)
}

// applyChange returns the balance after a journal entry.
func applyChange(b *walletv1.Balance, c *walletv1.BalanceChanged) *walletv1.Balance {
	if b != nil && b.GetRevision() >= c.GetSequence() {
		return b
	}
	return &walletv1.Balance{
		AccountId: c.GetAccountId(), Asset: c.GetAsset(),
		Available: c.GetAvailable(), Held: c.GetHeld(), Total: addDecimal(c.GetAvailable(), c.GetHeld()),
		Revision: c.GetSequence(), UpdatedAt: c.GetOccurredAt(),
	}
}

// addDecimal adds two decimal strings at the finer of their scales; ""
// when either does not parse.
func addDecimal(a, b string) string {
	digits := max(fracDigits(a), fracDigits(b))
	if digits > 18 {
		return ""
	}
	scale := int32(digits) //nolint:gosec // at most 18
	x, errA := decimal.Parse(a, scale)
	y, errB := decimal.Parse(b, scale)
	if errA != nil || errB != nil {
		return ""
	}
	return decimal.Format(x+y, scale)
}

func fracDigits(s string) int {
	if _, frac, ok := strings.Cut(s, "."); ok {
		return len(frac)
	}
	return 0
}

func (s *balanceSource) greet(int) []*frame {
	if s.snap == nil {
		list := make([]*walletv1.Balance, 0, len(s.balances))
		for _, b := range s.balances {
			list = append(list, b)
		}
		slices.SortFunc(list, func(a, b *walletv1.Balance) int { return cmp.Compare(a.GetAsset(), b.GetAsset()) })
		s.snap = listFrame(s.key, typeSnapshot, list)
	}
	return []*frame{s.snap}
}

// positionSource relays an account's positions in perpetuals: a new
// subscriber gets a snapshot of the open ones, then each position after
// every change (size "0": closed).
type positionSource struct {
	svc  Wallet
	key  key
	open map[string]*walletv1.Position // by instrument; under t.mu
	snap *frame                        // under t.mu
}

func (s *positionSource) session(ctx context.Context, t *topic) error {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := s.svc.WatchPositions(ctx, &walletv1.WatchPositionsRequest{AccountId: s.key.name})
	if err != nil {
		cancel()
		return fmt.Errorf("watch positions: %w", err)
	}
	current := map[string]*walletv1.Position{}
	err = receive(stream, cancel, func(m *walletv1.WatchPositionsResponse) error {
		switch ev := m.GetEvent().(type) {
		case *walletv1.WatchPositionsResponse_Current:
			current[ev.Current.GetInstrumentId()] = ev.Current
		case *walletv1.WatchPositionsResponse_SnapshotEnd:
			t.live(func() { s.open, s.snap = current, nil })
		case *walletv1.WatchPositionsResponse_Changed:
			p := ev.Changed
			return t.fanout(dataFrame(s.key, typeUpdate, p), func() error {
				if isZeroDecimal(p.GetSize()) {
					delete(s.open, p.GetInstrumentId())
				} else {
					s.open[p.GetInstrumentId()] = p
				}
				s.snap = nil
				return nil
			})
		}
		return nil
	})
	return fmt.Errorf("positions: %w", err)
}

// isZeroDecimal reports whether a decimal string is zero.
func isZeroDecimal(s string) bool { return strings.Trim(s, "-0.") == "" }

func (s *positionSource) greet(int) []*frame {
	if s.snap == nil {
		list := make([]*walletv1.Position, 0, len(s.open))
		for _, p := range s.open {
			list = append(list, p)
		}
		slices.SortFunc(list, func(a, b *walletv1.Position) int { return cmp.Compare(a.GetInstrumentId(), b.GetInstrumentId()) })
		s.snap = listFrame(s.key, typeSnapshot, list)
	}
	return []*frame{s.snap}
}
