package market

import (
	"errors"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func levels(pq ...int64) []Level {
	var out []Level
	for i := 0; i+1 < len(pq); i += 2 {
		out = append(out, Level{Price: pq[i], Quantity: pq[i+1]})
	}
	return out
}

func TestBookFromLevelChanges(t *testing.T) {
	t.Parallel()
	m := New(Config{})
	events := []struct {
		changes  []Change
		bids     []Level
		asks     []Level
		changed  bool
		bookSeq  uint64
		describe string
	}{
		{[]Change{{Buy, 100, 5}}, levels(100, 5), nil, true, 1, "first bid"},
		{[]Change{{Buy, 102, 1}, {Sell, 105, 3}}, levels(102, 1, 100, 5), levels(105, 3), true, 2, "better bid first, an ask"},
		{[]Change{{Buy, 101, 2}}, levels(102, 1, 101, 2, 100, 5), levels(105, 3), true, 3, "inserted between"},
		{nil, levels(102, 1, 101, 2, 100, 5), levels(105, 3), false, 3, "accepted taker: no change"},
		{[]Change{{Sell, 104, 7}, {Sell, 106, 1}}, levels(102, 1, 101, 2, 100, 5), levels(104, 7, 105, 3, 106, 1), true, 5, "asks best (lowest) first"},
		{[]Change{{Buy, 102, 0}, {Buy, 100, 4}}, levels(101, 2, 100, 4), levels(104, 7, 105, 3, 106, 1), true, 6, "removed and reduced"},
		{[]Change{{Sell, 999, 0}}, levels(101, 2, 100, 4), levels(104, 7, 105, 3, 106, 1), true, 7, "removing an unknown level"},
	}
	for i, e := range events {
		changed, err := m.Apply(Event{Seq: uint64(i + 1), Time: t0, Changes: e.changes})
		if err != nil {
			t.Fatalf("%s: %v", e.describe, err)
		}
		bids, asks := m.Book(0)
		if changed != e.changed || !slices.Equal(bids, e.bids) || !slices.Equal(asks, e.asks) || m.BookSeq() != e.bookSeq {
			t.Errorf("%s: changed %v bids %v asks %v book seq %d; want %v %v %v %d",
				e.describe, changed, bids, asks, m.BookSeq(), e.changed, e.bids, e.asks, e.bookSeq)
		}
	}
	if bids, asks := m.Book(1); !slices.Equal(bids, levels(101, 2)) || !slices.Equal(asks, levels(104, 7)) {
		t.Errorf("depth 1: %v %v", bids, asks)
	}
	if bid, bok, ask, aok := m.Best(); !bok || !aok || bid != (Level{101, 2}) || ask != (Level{104, 7}) {
		t.Errorf("best %v %v %v %v", bid, bok, ask, aok)
	}
}

func TestSequenceRules(t *testing.T) {
	t.Parallel()
	m := New(Config{})
	if _, err := m.Apply(Event{Seq: 2}); !errors.Is(err, ErrGap) {
		t.Fatalf("first event 2: %v, want ErrGap", err)
	}
	if _, err := m.Apply(Event{Seq: 1, Changes: []Change{{Buy, 100, 1}}}); err != nil {
		t.Fatal(err)
	}
	// A repeat changes nothing, even with other content.
	if changed, err := m.Apply(Event{Seq: 1, Changes: []Change{{Buy, 100, 9}}}); changed || err != nil {
		t.Fatalf("repeat: %v %v", changed, err)
	}
	if bids, _ := m.Book(0); !slices.Equal(bids, levels(100, 1)) {
		t.Fatalf("repeat applied: %v", bids)
	}
	if _, err := m.Apply(Event{Seq: 3}); !errors.Is(err, ErrGap) {
		t.Fatalf("event 3 after 1: %v, want ErrGap", err)
	}
	for _, bad := range []Change{{Buy, 0, 1}, {Sell, 100, -1}, {Side(3), 100, 1}} {
		if _, err := m.Apply(Event{Seq: 2, Changes: []Change{bad}}); err == nil {
			t.Errorf("change %+v accepted", bad)
		}
	}
	if m.Seq() != 1 {
		t.Errorf("seq %d after refused events, want 1", m.Seq())
	}
}

// trade applies a trade event at t0 + offset.
func trade(t *testing.T, m *Market, offset time.Duration, price, qty int64) {
	t.Helper()
	_, err := m.Apply(Event{Seq: m.Seq() + 1, Time: t0.Add(offset), Trade: &Trade{
		ID: "t", Price: price, Quantity: qty, Quote: price * qty, TakerSide: Buy, Time: t0.Add(offset)}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRecentTrades(t *testing.T) {
	t.Parallel()
	m := New(Config{Trades: 3})
	for i := range int64(5) {
		trade(t, m, time.Duration(i)*time.Second, 100+i, 1)
	}
	prices := func(ts []Trade) []int64 {
		var out []int64
		for _, t := range ts {
			out = append(out, t.Price)
		}
		return out
	}
	cases := []struct {
		limit  int
		before uint64
		want   []int64
	}{
		{0, 0, []int64{104, 103, 102}}, // the last 3 kept, newest first
		{2, 0, []int64{104, 103}},
		{0, 5, []int64{103, 102}}, // seq 5 is the 104 trade
		{1, 4, []int64{102}},
		{0, 3, nil}, // older ones are gone
	}
	for _, c := range cases {
		if got := prices(m.Trades(c.limit, c.before)); !slices.Equal(got, c.want) {
			t.Errorf("Trades(%d, %d) = %v, want %v", c.limit, c.before, got, c.want)
		}
	}
	if m.LastPrice() != 104 {
		t.Errorf("last price %d", m.LastPrice())
	}
}

func TestCandles(t *testing.T) {
	t.Parallel()
	m := New(Config{})
	trade(t, m, 10*time.Second, 100, 2)               // 10:00
	trade(t, m, 50*time.Second, 104, 1)               // 10:00
	trade(t, m, 70*time.Second, 98, 3)                // 10:01
	trade(t, m, 6*time.Minute, 101, 1)                // 10:06
	trade(t, m, 6*time.Minute+time.Second, 102, 1)    // 10:06
	trade(t, m, 75*time.Minute, 110, 4)               // 11:15
	trade(t, m, 75*time.Minute+59*time.Second, 90, 1) // 11:15

	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	cases := []struct {
		name     string
		iv       Interval
		from, to time.Time
		limit    int
		want     []Candle
	}{
		{"1m, gaps left out", Minute, time.Time{}, time.Time{}, 0, []Candle{
			{OpenTime: at(0), Open: 100, High: 104, Low: 100, Close: 104, Volume: 3, QuoteVolume: 304, Count: 2},
			{OpenTime: at(1), Open: 98, High: 98, Low: 98, Close: 98, Volume: 3, QuoteVolume: 294, Count: 1},
			{OpenTime: at(6), Open: 101, High: 102, Low: 101, Close: 102, Volume: 2, QuoteVolume: 203, Count: 2},
			{OpenTime: at(75), Open: 110, High: 110, Low: 90, Close: 90, Volume: 5, QuoteVolume: 530, Count: 2},
		}},
		{"5m", FiveMinutes, time.Time{}, time.Time{}, 0, []Candle{
			{OpenTime: at(0), Open: 100, High: 104, Low: 98, Close: 98, Volume: 6, QuoteVolume: 598, Count: 3},
			{OpenTime: at(5), Open: 101, High: 102, Low: 101, Close: 102, Volume: 2, QuoteVolume: 203, Count: 2},
			{OpenTime: at(75), Open: 110, High: 110, Low: 90, Close: 90, Volume: 5, QuoteVolume: 530, Count: 2},
		}},
		{"1h", Hour, time.Time{}, time.Time{}, 0, []Candle{
			{OpenTime: at(0), Open: 100, High: 104, Low: 98, Close: 102, Volume: 8, QuoteVolume: 801, Count: 5},
			{OpenTime: at(60), Open: 110, High: 110, Low: 90, Close: 90, Volume: 5, QuoteVolume: 530, Count: 2},
		}},
		{"1h limit keeps the newest", Hour, time.Time{}, time.Time{}, 1, []Candle{
			{OpenTime: at(60), Open: 110, High: 110, Low: 90, Close: 90, Volume: 5, QuoteVolume: 530, Count: 2},
		}},
		{"1m from 10:01 to 10:06 (exclusive)", Minute, at(1), at(6), 0, []Candle{
			{OpenTime: at(1), Open: 98, High: 98, Low: 98, Close: 98, Volume: 3, QuoteVolume: 294, Count: 1},
		}},
		{"1d", Day, time.Time{}, time.Time{}, 0, []Candle{
			{OpenTime: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Open: 100, High: 110, Low: 90, Close: 90, Volume: 13, QuoteVolume: 1331, Count: 7},
		}},
		{"1w starts on Monday", Week, time.Time{}, time.Time{}, 0, []Candle{
			{OpenTime: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), Open: 100, High: 110, Low: 90, Close: 90, Volume: 13, QuoteVolume: 1331, Count: 7},
		}},
	}
	for _, c := range cases {
		got, err := m.Candles(c.iv, c.from, c.to, c.limit)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %v %v\nwant %v", c.name, got, err, c.want)
		}
	}
	if _, err := m.Candles(Interval(30*time.Second), time.Time{}, time.Time{}, 0); err == nil {
		t.Error("a 30s interval accepted")
	}
	if !m.Closed(Minute, at(74)) || m.Closed(Minute, at(75)) || m.Closed(Hour, at(60)) {
		t.Error("closed: a candle is closed once the market's time passed its end")
	}
}

func TestCandlesKeepTheLastMinutes(t *testing.T) {
	t.Parallel()
	m := New(Config{Minutes: 2})
	for i := range 4 {
		trade(t, m, time.Duration(i)*time.Minute, int64(100+i), 1)
	}
	got, _ := m.Candles(Minute, time.Time{}, time.Time{}, 0)
	if len(got) != 2 || got[0].Open != 102 || got[1].Open != 103 {
		t.Errorf("kept %v, want the last two minutes", got)
	}
}

func TestTicker(t *testing.T) {
	t.Parallel()
	m := New(Config{})
	if tk := m.Ticker(t0); tk.Count != 0 || tk.Last != 0 || tk.ChangeBasisPoints() != 0 {
		t.Errorf("empty ticker %+v", tk)
	}
	trade(t, m, 0, 200, 1)           // falls out of the window below
	trade(t, m, 2*time.Hour, 100, 2) // the window's open
	trade(t, m, 3*time.Hour, 130, 1) // the high
	trade(t, m, 20*time.Hour, 80, 1) // the low
	trade(t, m, 24*time.Hour+time.Minute, 105, 3)
	now := t0.Add(24*time.Hour + 90*time.Second)
	tk := m.Ticker(now)
	want := Ticker{WindowStart: t0.Add(time.Minute), WindowEnd: now, Open: 100, High: 130, Low: 80, Last: 105,
		Volume: 7, QuoteVolume: 200 + 130 + 80 + 315, Count: 4}
	if tk != want {
		t.Errorf("ticker\n%+v\nwant\n%+v", tk, want)
	}
	if tk.Change() != 5 || tk.ChangeBasisPoints() != 500 {
		t.Errorf("change %d, %d bp; want 5, 500", tk.Change(), tk.ChangeBasisPoints())
	}
	// A quiet day keeps the last price, with no change.
	quiet := m.Ticker(now.Add(48 * time.Hour))
	if quiet.Count != 0 || quiet.Open != 105 || quiet.Last != 105 || quiet.High != 105 || quiet.Change() != 0 {
		t.Errorf("quiet ticker %+v", quiet)
	}
}

func TestChangeBasisPointsRounding(t *testing.T) {
	t.Parallel()
	cases := []struct{ open, last, want int64 }{
		{300, 301, 33}, // 33.33 bp
		{300, 302, 67}, // 66.67 bp
		{200, 201, 50}, // exactly 50
		{3, 2, -3333},  // -3333.33
		{8, 7, -1250},  // -1250 exactly
		{16, 15, -625}, // -625
		{32, 31, -313}, // -312.5: half away from zero
		{32, 33, 313},  // 312.5
		{0, 100, 0},
	}
	for _, c := range cases {
		if got := (Ticker{Open: c.open, Last: c.last}).ChangeBasisPoints(); got != c.want {
			t.Errorf("%d -> %d: %d bp, want %d", c.open, c.last, got, c.want)
		}
	}
}

// A restored market is indistinguishable from the original: same views,
// and the same result for every later event.
func TestStateRoundTrip(t *testing.T) {
	t.Parallel()
	cfg := Config{Trades: 4, Minutes: 3}
	a := New(cfg)
	for i := range int64(8) {
		if _, err := a.Apply(Event{Seq: a.Seq() + 1, Time: t0.Add(time.Duration(i) * 40 * time.Second),
			Changes: []Change{{Buy, 100 - i, 1 + i}, {Sell, 110 + i, 2}}}); err != nil {
			t.Fatal(err)
		}
		trade(t, a, time.Duration(i)*40*time.Second, 105+i, 1)
	}
	b, err := Restore(cfg, a.State())
	if err != nil {
		t.Fatal(err)
	}
	same := func(when string) {
		t.Helper()
		ab, aa := a.Book(0)
		bb, ba := b.Book(0)
		ac, _ := a.Candles(Minute, time.Time{}, time.Time{}, 0)
		bc, _ := b.Candles(Minute, time.Time{}, time.Time{}, 0)
		if !slices.Equal(ab, bb) || !slices.Equal(aa, ba) || !slices.Equal(a.Trades(0, 0), b.Trades(0, 0)) ||
			!slices.Equal(ac, bc) || a.Ticker(t0.Add(time.Hour)) != b.Ticker(t0.Add(time.Hour)) ||
			a.Seq() != b.Seq() || a.BookSeq() != b.BookSeq() || a.Time() != b.Time() {
			t.Errorf("%s: restored market differs", when)
		}
	}
	same("restored")
	for _, m := range []*Market{a, b} {
		if _, err := m.Apply(Event{Seq: m.Seq() + 1, Time: t0.Add(10 * time.Minute), Changes: []Change{{Sell, 110, 0}}}); err != nil {
			t.Fatal(err)
		}
		trade(t, m, 10*time.Minute, 99, 5)
	}
	same("after more events")
	if changed, err := b.Apply(Event{Seq: 3, Changes: []Change{{Buy, 1, 1}}}); changed || err != nil {
		t.Errorf("an event the snapshot covers: %v %v, want it skipped", changed, err)
	}

	bad := a.State()
	bad.Bids = append(bad.Bids, Level{Price: bad.Bids[0].Price + 1, Quantity: 1})
	if _, err := Restore(cfg, bad); err == nil {
		t.Error("restored bids that are not best first")
	}
	bad = a.State()
	bad.Asks[0].Quantity = 0
	if _, err := Restore(cfg, bad); err == nil {
		t.Error("restored an empty level")
	}
}
