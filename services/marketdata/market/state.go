package market

import (
	"fmt"
	"slices"
	"time"
)

// State is everything a Market keeps, for a snapshot. Restore(cfg, State())
// is a Market that behaves exactly as the original.
type State struct {
	Seq, BookSeq uint64
	Time         time.Time
	LastPrice    int64
	// Bids and Asks are best first.
	Bids, Asks []Level
	// Trades and Minutes are oldest first.
	Trades  []Trade
	Minutes []Candle
}

// State returns a copy of the market's state.
func (m *Market) State() State {
	s := State{Seq: m.seq, BookSeq: m.bookSeq, Time: m.last, LastPrice: m.lastPrice,
		Bids: slices.Clone(m.bids.levels), Asks: slices.Clone(m.asks.levels)}
	for i := range m.trades.len() {
		s.Trades = append(s.Trades, m.trades.at(i))
	}
	for i := range m.minutes.len() {
		s.Minutes = append(s.Minutes, m.minutes.at(i))
	}
	return s
}

// Restore returns a market in state s, keeping the newest trades and
// minutes that fit cfg. It refuses a state whose levels are not strictly
// best first or not positive.
func Restore(cfg Config, s State) (*Market, error) {
	m := New(cfg)
	for _, side := range []struct {
		name   string
		levels []Level
		l      *ladder
	}{{"bids", s.Bids, &m.bids}, {"asks", s.Asks, &m.asks}} {
		for i, lv := range side.levels {
			if lv.Price <= 0 || lv.Quantity <= 0 {
				return nil, fmt.Errorf("market state: %s level %d is not positive", side.name, i)
			}
			if i > 0 && (side.l.desc && lv.Price >= side.levels[i-1].Price || !side.l.desc && lv.Price <= side.levels[i-1].Price) {
				return nil, fmt.Errorf("market state: %s not strictly best first at level %d", side.name, i)
			}
		}
		side.l.levels = slices.Clone(side.levels)
	}
	m.seq, m.bookSeq, m.last, m.lastPrice = s.Seq, s.BookSeq, s.Time, s.LastPrice
	for _, t := range s.Trades {
		m.trades.push(t)
	}
	for _, c := range s.Minutes {
		m.minutes.push(c)
	}
	return m, nil
}
