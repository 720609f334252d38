package market

import (
	"fmt"
	"time"
)

// Candle is the trading of one interval. Prices are 0 in a candle without
// trades (never returned).
type Candle struct {
	// OpenTime is the start of the interval (UTC).
	OpenTime               time.Time
	Open, High, Low, Close int64
	Volume, QuoteVolume    int64
	Count                  uint64
}

func (c *Candle) add(t Trade) {
	c.merge(Candle{Open: t.Price, High: t.Price, Low: t.Price, Close: t.Price, Volume: t.Quantity, QuoteVolume: t.Quote, Count: 1})
}

// merge adds the later candle o to c.
func (c *Candle) merge(o Candle) {
	if c.Count == 0 {
		c.Open, c.High, c.Low = o.Open, o.High, o.Low
	}
	c.High, c.Low, c.Close = max(c.High, o.High), min(c.Low, o.Low), o.Close
	c.Volume += o.Volume
	c.QuoteVolume += o.QuoteVolume
	c.Count += o.Count
}

// Interval is a candle length; weeks start on Monday 00:00 UTC, every
// other interval at a multiple of its length since the Unix epoch.
type Interval time.Duration

// The intervals served.
const (
	Minute         = Interval(time.Minute)
	FiveMinutes    = Interval(5 * time.Minute)
	FifteenMinutes = Interval(15 * time.Minute)
	Hour           = Interval(time.Hour)
	FourHours      = Interval(4 * time.Hour)
	Day            = Interval(24 * time.Hour)
	Week           = Interval(7 * 24 * time.Hour)
)

// firstMonday is the origin of weekly candles.
var firstMonday = time.Date(1970, 1, 5, 0, 0, 0, 0, time.UTC)

// start returns the start of the interval holding t.
func (iv Interval) start(t time.Time) time.Time {
	t = t.UTC()
	d := time.Duration(iv)
	if iv == Week {
		return firstMonday.Add(t.Sub(firstMonday).Truncate(d))
	}
	return t.Truncate(d)
}

// Candles returns the candles of the interval whose open time is in
// [from, to) (a zero bound is open), oldest first, at most limit (the
// newest ones; limit <= 0: all). Intervals without trades are left out. A
// candle is closed once the market's time (its last event) has passed its
// end.
func (m *Market) Candles(iv Interval, from, to time.Time, limit int) ([]Candle, error) {
	if iv < Minute || time.Duration(iv)%time.Minute != 0 {
		return nil, fmt.Errorf("candle interval %s: must be a whole number of minutes", time.Duration(iv))
	}
	var out []Candle
	for i := range m.minutes.len() {
		c := m.minutes.at(i)
		open := iv.start(c.OpenTime)
		if (!from.IsZero() && open.Before(from)) || (!to.IsZero() && !open.Before(to)) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].OpenTime.Equal(open) {
			out[n-1].merge(c)
			continue
		}
		agg := Candle{OpenTime: open}
		agg.merge(c)
		out = append(out, agg)
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

// Closed reports whether the candle of interval iv opening at open has
// ended by the market's time.
func (m *Market) Closed(iv Interval, open time.Time) bool {
	return !m.last.Before(open.Add(time.Duration(iv)))
}

// Ticker is the rolling 24-hour statistics at a time.
type Ticker struct {
	// WindowStart and WindowEnd bound the window: the 1-minute candles
	// opening in [WindowEnd-24h rounded down to the minute, WindowEnd].
	WindowStart, WindowEnd time.Time
	// Open is the first trade's price in the window, Last the last trade's
	// price ever (a quiet day keeps the last price: Open = Last, no change).
	Open, High, Low, Last int64
	Volume, QuoteVolume   int64
	Count                 uint64
}

// Change is Last - Open.
func (t Ticker) Change() int64 { return t.Last - t.Open }

// ChangeBasisPoints is the change relative to Open in hundredths of a
// percent, rounded half away from zero (0 when Open is 0).
func (t Ticker) ChangeBasisPoints() int64 {
	if t.Open == 0 {
		return 0
	}
	num := t.Change() * 10000
	q, r := num/t.Open, num%t.Open
	if 2*abs(r) >= t.Open {
		if num < 0 {
			q--
		} else {
			q++
		}
	}
	return q
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// Ticker returns the 24 hours ending at now (the caller's clock, or the
// market's Time).
func (m *Market) Ticker(now time.Time) Ticker {
	t := Ticker{WindowEnd: now.UTC(), WindowStart: Minute.start(now.Add(-24 * time.Hour)), Last: m.lastPrice}
	// Newest first, back to the window's start: at most 1,441 candles.
	var window []Candle
	for i := m.minutes.len() - 1; i >= 0; i-- {
		c := m.minutes.at(i)
		if c.OpenTime.Before(t.WindowStart) {
			break
		}
		if !c.OpenTime.After(now) {
			window = append(window, c)
		}
	}
	var day Candle
	for i := len(window) - 1; i >= 0; i-- {
		day.merge(window[i])
	}
	t.Open, t.High, t.Low = day.Open, day.High, day.Low
	t.Volume, t.QuoteVolume, t.Count = day.Volume, day.QuoteVolume, day.Count
	if day.Count == 0 {
		t.Open, t.High, t.Low = m.lastPrice, m.lastPrice, m.lastPrice
	}
	return t
}
