// Package market keeps the market data of one instrument, built from its
// engine events: the L2 book at full depth, the recent trades, 1-minute
// candles (longer intervals are aggregated from them) and the rolling
// 24-hour ticker.
//
// It is pure: no I/O, no clock (every time comes from the events or the
// caller), no transport types. Prices and quantities are int64 fixed-point
// integers at the instrument's scales, as in services/matching/book; a
// trade's quote quantity is the caller's exact product.
//
// Events are applied in the engine's per-instrument sequence (1, 2, 3, ...
// with no gap): a repeated event is ignored, a gap is an error, so the
// caller knows to rebuild rather than serve a wrong book.
package market

import (
	"errors"
	"fmt"
	"time"
)

// ErrGap is an event that does not follow the last one applied.
var ErrGap = errors.New("gap in the engine sequence")

// Side is the side of a book level or of a trade's taker.
type Side int8

// Sides, with the numbers of tradex.common.v1.Side.
const (
	Buy  Side = 1
	Sell Side = 2
)

// Level is a price level: the total quantity resting at a price.
type Level struct {
	Price, Quantity int64
}

// Change is the new total of one level (0: the level is gone).
type Change struct {
	Side            Side
	Price, Quantity int64
}

// Trade is one execution.
type Trade struct {
	ID string
	// Price, Quantity and Quote (price x quantity, at the sum of the
	// scales) of the trade.
	Price, Quantity, Quote int64
	TakerSide              Side
	Time                   time.Time
	// Seq is the engine sequence of the trade's event.
	Seq uint64
}

// Event is what one engine event does to the market data.
type Event struct {
	// Seq is the engine's per-instrument sequence.
	Seq uint64
	// Time is the engine time.
	Time time.Time
	// Changes are the book levels the event changed.
	Changes []Change
	// Trade is set for a trade event.
	Trade *Trade
}

// Config sizes what a Market keeps.
type Config struct {
	// Trades is how many recent trades are kept (default 1000).
	Trades int
	// Minutes is how many 1-minute candles are kept (default one week).
	Minutes int
}

func (c Config) withDefaults() Config {
	if c.Trades <= 0 {
		c.Trades = 1000
	}
	if c.Minutes <= 0 {
		c.Minutes = 7 * 24 * 60
	}
	return c
}

// Market is the market data of one instrument. It is not safe for
// concurrent use.
type Market struct {
	cfg        Config
	bids, asks ladder
	seq        uint64
	bookSeq    uint64
	last       time.Time
	trades     ring[Trade]
	minutes    ring[Candle]
	lastPrice  int64
}

// New returns an empty market expecting the engine's first event (Seq 1).
func New(cfg Config) *Market {
	cfg = cfg.withDefaults()
	return &Market{
		cfg: cfg, bids: ladder{desc: true},
		trades: newRing[Trade](cfg.Trades), minutes: newRing[Candle](cfg.Minutes),
	}
}

// Seq is the engine sequence of the last event applied.
func (m *Market) Seq() uint64 { return m.seq }

// BookSeq is the engine sequence of the last event that changed the book
// (0 before any): a book delta carries it, and the one before it as its
// previous sequence.
func (m *Market) BookSeq() uint64 { return m.bookSeq }

// Time is the engine time of the last event applied.
func (m *Market) Time() time.Time { return m.last }

// Apply applies the next event. It returns whether the book changed. An
// event at or before Seq was applied before and changes nothing; one after
// Seq+1 is ErrGap.
func (m *Market) Apply(ev Event) (bookChanged bool, err error) {
	switch {
	case ev.Seq <= m.seq:
		return false, nil
	case ev.Seq != m.seq+1:
		return false, fmt.Errorf("%w: event %d after %d", ErrGap, ev.Seq, m.seq)
	}
	for _, c := range ev.Changes {
		if c.Price <= 0 || c.Quantity < 0 || (c.Side != Buy && c.Side != Sell) {
			return false, fmt.Errorf("event %d: invalid book change %+v", ev.Seq, c)
		}
	}
	m.seq = ev.Seq
	if ev.Time.After(m.last) {
		m.last = ev.Time
	}
	for _, c := range ev.Changes {
		m.side(c.Side).set(c.Price, c.Quantity)
	}
	if len(ev.Changes) > 0 {
		m.bookSeq = ev.Seq
	}
	if ev.Trade != nil {
		t := *ev.Trade
		t.Seq = ev.Seq
		m.addTrade(t)
	}
	return len(ev.Changes) > 0, nil
}

func (m *Market) side(s Side) *ladder {
	if s == Buy {
		return &m.bids
	}
	return &m.asks
}

// Book returns the best depth levels of each side, best first (depth <= 0:
// every level).
func (m *Market) Book(depth int) (bids, asks []Level) {
	return m.bids.top(depth), m.asks.top(depth)
}

// Best returns the best bid and ask (ok false for an empty side).
func (m *Market) Best() (bid Level, bidOK bool, ask Level, askOK bool) {
	bid, bidOK = m.bids.best()
	ask, askOK = m.asks.best()
	return bid, bidOK, ask, askOK
}

// Trades returns up to limit recent trades, newest first, with a sequence
// below before (0: from the newest).
func (m *Market) Trades(limit int, before uint64) []Trade {
	var out []Trade
	for i := m.trades.len() - 1; i >= 0 && (limit <= 0 || len(out) < limit); i-- {
		if t := m.trades.at(i); before == 0 || t.Seq < before {
			out = append(out, t)
		}
	}
	return out
}

// LastPrice is the price of the last trade (0 before any).
func (m *Market) LastPrice() int64 { return m.lastPrice }

func (m *Market) addTrade(t Trade) {
	m.trades.push(t)
	m.lastPrice = t.Price
	minute := t.Time.UTC().Truncate(time.Minute)
	if n := m.minutes.len(); n > 0 {
		c := m.minutes.last()
		if !minute.After(c.OpenTime) { // this minute (or a clock step back): the open candle
			c.add(t)
			return
		}
	}
	c := Candle{OpenTime: minute}
	c.add(t)
	m.minutes.push(c)
}
