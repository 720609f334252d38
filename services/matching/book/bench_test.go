package book

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The benchmark replays a pre-generated command stream on a warm book. Generating the
// stream runs it once on a simulation book, so that every cancel names an order that
// is resting at that point and the stream's mix is exact and reproducible; the
// benchmark then measures the book alone.
const (
	benchWarmOrders = 5000    // resting orders in the warm book
	benchCommands   = 1 << 18 // commands per pass over the stream
	benchMid        = 100_000 // the warm book's mid price, in ticks
)

// benchCapacity sizes a benchmark book for its peak, as the engine would size a book.
var benchCapacity = []Option{WithCapacity(2 * benchWarmOrders), WithLevelCapacity(1024)}

// benchStream is a warm book and the commands to replay on it.
type benchStream struct {
	warm Snapshot
	cmds []Command
	// removed[removedAt[i]:removedAt[i+1]] are the ids command i takes off the book
	// (filled makers and cancelled orders): the index work of the map baseline.
	removed   []string
	removedAt []int32
	rests     []bool // command i leaves an order resting
	// The realized mix.
	places, cancels, ioc, market, trades, resting, levels int
}

var benchStreamOnce = sync.OnceValue(func() *benchStream { return newBenchStream(1) })

// liveSet is the resting orders of the simulation, sampled uniformly in O(1).
type liveSet struct {
	ids  []string
	acct []string
	pos  map[string]int
}

func (l *liveSet) add(id, acct string) {
	l.pos[id] = len(l.ids)
	l.ids, l.acct = append(l.ids, id), append(l.acct, acct)
}

func (l *liveSet) remove(id string) {
	i, ok := l.pos[id]
	if !ok {
		return
	}
	last := len(l.ids) - 1
	l.ids[i], l.acct[i] = l.ids[last], l.acct[last]
	l.pos[l.ids[i]] = i
	l.ids, l.acct = l.ids[:last], l.acct[:last]
	delete(l.pos, id)
}

// benchGen draws the stream: 60% GTC limit orders placed near the touch (a few percent
// of them post-only), 30% cancels of a random resting order, 10% crossing orders (half
// IOC limits a few ticks through the touch, half market orders), 500 accounts. When the
// book strays more than 20% from its warm size, a place becomes a cancel or the other
// way round, so the book stays at about 5000 orders.
type benchGen struct {
	rng      *rand.Rand
	sim      *Book
	live     liveSet
	accounts []string
	nextID   int
}

func (g *benchGen) id() string {
	g.nextID++
	return "ord-" + strconv.Itoa(g.nextID)
}

// place returns a GTC limit order on side s within a few ticks of that side's best.
func (g *benchGen) place(s Side) Command {
	best, ok := g.sim.BestBid()
	if s == Sell {
		best, ok = g.sim.BestAsk()
	}
	ref := best.Price
	if !ok {
		ref = benchMid - 1
		if s == Sell {
			ref = benchMid + 1
		}
	}
	// Mostly at or just behind the touch, sometimes one tick inside it.
	behind := int64(0)
	for behind < 60 && g.rng.IntN(20) < 17 {
		behind++
	}
	behind--
	price := ref - behind
	if s == Sell {
		price = ref + behind
	}
	// Never cross: a place is passive.
	if ask, ok := g.sim.BestAsk(); s == Buy && ok && price >= ask.Price {
		price = ask.Price - 1
	}
	if bid, ok := g.sim.BestBid(); s == Sell && ok && price <= bid.Price {
		price = bid.Price + 1
	}
	return Command{
		Kind: Submit, OrderID: g.id(), Account: g.accounts[g.rng.IntN(len(g.accounts))],
		Side: s, Type: Limit, TimeInForce: GTC, PostOnly: g.rng.IntN(20) == 0,
		Price: max(price, 1), Quantity: 1 + g.rng.Int64N(100),
	}
}

// cross returns an IOC limit or a market order taking a few resting orders.
func (g *benchGen) cross(s Side) Command {
	c := Command{
		Kind: Submit, OrderID: g.id(), Account: g.accounts[g.rng.IntN(len(g.accounts))],
		Side: s, Type: Market, TimeInForce: IOC, Quantity: 1 + g.rng.Int64N(300),
	}
	if g.rng.IntN(2) == 0 {
		opp, ok := g.sim.BestAsk()
		through := g.rng.Int64N(3)
		if s == Sell {
			opp, ok = g.sim.BestBid()
			through = -through
		}
		if ok {
			c.Type, c.Price = Limit, opp.Price+through
		}
	}
	return c
}

func newBenchStream(seed uint64) *benchStream {
	g := &benchGen{
		rng:  rand.New(rand.NewPCG(seed, 42)), //nolint:gosec // a reproducible benchmark stream needs a seeded generator
		sim:  New(benchCapacity...),
		live: liveSet{pos: make(map[string]int)},
	}
	for i := range 500 {
		g.accounts = append(g.accounts, "acct-"+strconv.Itoa(i))
	}
	var events []Event
	for g.sim.Len() < benchWarmOrders {
		c := g.place(Side(1 + small(g.rng, 2)))
		events = g.sim.Apply(c, events[:0])
		if _, ok := g.sim.Order(c.OrderID); ok {
			g.live.add(c.OrderID, c.Account)
		}
	}
	s := &benchStream{warm: g.sim.Snapshot(), removedAt: []int32{0}}
	for range benchCommands {
		var c Command
		r := g.rng.IntN(100)
		n := len(g.live.ids)
		switch {
		case r < 60 && n > benchWarmOrders*6/5, r >= 60 && r < 90 && n >= benchWarmOrders*4/5:
			i := g.rng.IntN(n)
			c = Command{Kind: Cancel, OrderID: g.live.ids[i], Account: g.live.acct[i], CancelReason: CancelUserRequested}
			s.cancels++
		case r < 90:
			c = g.place(Side(1 + small(g.rng, 2)))
			s.places++
		default:
			c = g.cross(Side(1 + small(g.rng, 2)))
			if c.Type == Market {
				s.market++
			} else {
				s.ioc++
			}
		}
		events = g.sim.Apply(c, events[:0])
		for _, e := range events {
			switch {
			case e.Kind == EventTrade:
				s.trades++
				if e.MakerRemaining == 0 {
					g.live.remove(e.MakerOrderID)
					s.removed = append(s.removed, e.MakerOrderID)
				}
			case e.Kind == EventCancelled && c.Kind == Cancel || e.Kind == EventCancelled && e.OrderID != c.OrderID:
				g.live.remove(e.OrderID)
				s.removed = append(s.removed, e.OrderID)
			}
		}
		_, rests := g.sim.Order(c.OrderID)
		if rests && c.Kind == Submit {
			g.live.add(c.OrderID, c.Account)
		}
		s.cmds = append(s.cmds, c)
		s.rests = append(s.rests, rests && c.Kind == Submit)
		s.removedAt = append(s.removedAt, int32(len(s.removed))) //nolint:gosec // fewer than 2^31 removals
	}
	s.resting = g.sim.Len()
	s.levels = g.sim.Levels(Buy) + g.sim.Levels(Sell)
	return s
}

// restore returns a new book holding the stream's warm state.
func (s *benchStream) restore(b *testing.B) *Book {
	bk, err := Restore(s.warm, benchCapacity...)
	if err != nil {
		b.Fatal(err)
	}
	return bk
}

// BenchmarkBook replays the realistic mix on a warm book of about 5000 resting orders
// (about 40 price levels a side, near the touch). impl=book is the order book; impl=map is
// a floor baseline in the same run: only the id-index work the mix needs (a lookup per
// submit, an insert per order that rests, a delete per order that leaves the book) on a
// Go map, so book/map says what the levels, queues and events cost on top of the index.
func BenchmarkBook(b *testing.B) {
	s := benchStreamOnce()
	b.Run("mix=realistic/impl=book", func(b *testing.B) {
		bk := s.restore(b)
		out := make([]Event, 0, 1024)
		i := 0
		b.ReportAllocs()
		cpu := startCPU(b)
		for b.Loop() {
			if i == len(s.cmds) {
				b.StopTimer()
				cpu.pause(b)
				bk, i = s.restore(b), 0
				cpu.resume(b)
				b.StartTimer()
			}
			out = bk.Apply(s.cmds[i], out[:0])
			i++
		}
		cpu.report(b)
	})
	b.Run("mix=realistic/impl=map", func(b *testing.B) {
		newIndex := func() map[string]*order {
			m := make(map[string]*order, 2*benchWarmOrders)
			for _, o := range s.warm.Orders {
				m[o.ID] = nil
			}
			return m
		}
		m, node := newIndex(), &order{}
		i := 0
		b.ReportAllocs()
		cpu := startCPU(b)
		for b.Loop() {
			if i == len(s.cmds) {
				b.StopTimer()
				cpu.pause(b)
				m, i = newIndex(), 0
				cpu.resume(b)
				b.StartTimer()
			}
			c := &s.cmds[i]
			if c.Kind == Submit {
				if _, dup := m[c.OrderID]; dup {
					b.Fatal("duplicate id in the stream")
				}
			}
			for _, id := range s.removed[s.removedAt[i]:s.removedAt[i+1]] {
				delete(m, id)
			}
			if s.rests[i] {
				m[c.OrderID] = node
			}
			i++
		}
		cpu.report(b)
	})
}

// BenchmarkPlaceCancel places a GTC order at the touch of the warm book and cancels it:
// the cost of a resting order's round trip.
func BenchmarkPlaceCancel(b *testing.B) {
	s := benchStreamOnce()
	bk := s.restore(b)
	bid, _ := bk.BestBid()
	place := Command{Kind: Submit, OrderID: "pc", Account: "acct-x", Side: Buy, Type: Limit, Price: bid.Price, Quantity: 10}
	cancel := Command{Kind: Cancel, OrderID: "pc", Account: "acct-x"}
	out := make([]Event, 0, 16)
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		out = bk.Apply(place, out[:0])
		out = bk.Apply(cancel, out[:0])
	}
	cpu.reportOps(b, 2)
}

// BenchmarkLadder inserts and removes an empty price level on a side of the given number
// of levels, at the touch (a new best price) or deep in the book (behind every level):
// impl=skiplist is the book's ladder; impl=slice is the alternative it was weighed
// against, a sorted slice of levels with binary search and the best level at the end.
func BenchmarkLadder(b *testing.B) {
	for _, levels := range []int{64, 4096, 262144} {
		for _, at := range []string{"touch", "deep"} {
			price := int64(levels + 1) // a new best bid
			if at == "deep" {
				price = 1 // behind every bid (bids are at 2..levels+1)
			}
			prefix := "levels=" + strconv.Itoa(levels) + "/at=" + at
			b.Run(prefix+"/impl=skiplist", func(b *testing.B) {
				l := newLadder(Buy, &levelPool{})
				for i := range levels {
					l.levelAt(int64(i + 2))
				}
				b.ReportAllocs()
				for b.Loop() {
					l.remove(l.levelAt(price))
				}
			})
			b.Run(prefix+"/impl=slice", func(b *testing.B) {
				// Ascending prices, so the best bid is last and a new best appends.
				sl := make([]*level, 0, levels+1)
				for i := range levels {
					sl = append(sl, &level{price: int64(i + 2)})
				}
				x := &level{price: price}
				b.ReportAllocs()
				for b.Loop() {
					i, _ := slices.BinarySearchFunc(sl, price, func(l *level, p int64) int { return int(l.price - p) })
					sl = slices.Insert(sl, i, x)
					i, _ = slices.BinarySearchFunc(sl, price, func(l *level, p int64) int { return int(l.price - p) })
					sl = slices.Delete(sl, i, i+1)
				}
			})
		}
	}
}

// cpuMeter reports the process CPU time per op (cpu-ns/op) besides the wall time: on a
// shared machine, time stolen by other tenants inflates ns/op but not CPU time.
type cpuMeter struct {
	start, paused time.Duration
	pausedAt      time.Duration
}

func startCPU(b *testing.B) *cpuMeter { return &cpuMeter{start: cpuTime(b)} }

func (m *cpuMeter) pause(b *testing.B)  { m.pausedAt = cpuTime(b) }
func (m *cpuMeter) resume(b *testing.B) { m.paused += cpuTime(b) - m.pausedAt }

// report reports orders/s (commands per second of measured time) and cpu-ns/op.
func (m *cpuMeter) report(b *testing.B) { m.reportOps(b, 1) }

// reportOps is report for loops that apply perOp commands per iteration.
func (m *cpuMeter) reportOps(b *testing.B, perOp int) {
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "orders/s")
	b.ReportMetric(float64((cpuTime(b)-m.start-m.paused).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestBenchStream checks the benchmark's stream: its mix is the one documented, and a
// book replaying it from the warm state stays valid and stays near its warm size.
func TestBenchStream(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("generates 262,144 commands")
	}
	s := benchStreamOnce()
	n := float64(len(s.cmds))
	t.Logf("mix: %.1f%% place, %.1f%% cancel, %.1f%% ioc, %.1f%% market; %.2f trades/command; warm book %d orders on %d levels; %d orders on %d levels at the end",
		100*float64(s.places)/n, 100*float64(s.cancels)/n, 100*float64(s.ioc)/n, 100*float64(s.market)/n,
		float64(s.trades)/n, len(s.warm.Orders), levelCount(s.warm.Orders), s.resting, s.levels)
	if s.places < len(s.cmds)/2 || s.cancels < len(s.cmds)/4 || s.ioc+s.market < len(s.cmds)/20 {
		t.Errorf("mix drifted: %d places, %d cancels, %d crossing", s.places, s.cancels, s.ioc+s.market)
	}
	bk, err := Restore(s.warm)
	if err != nil {
		t.Fatal(err)
	}
	var out []Event
	notFound := 0
	for i, c := range s.cmds {
		out = bk.Apply(c, out[:0])
		if out[0].Kind == EventCancelRejected || out[0].Kind == EventRejected {
			notFound++
		}
		if i%(1<<14) == 0 {
			if err := bk.Check(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if notFound != 0 {
		t.Errorf("%d commands of the stream were rejected; cancels should name resting orders", notFound)
	}
	if bk.Len() < benchWarmOrders*3/4 || bk.Len() > benchWarmOrders*5/4 {
		t.Errorf("book ended with %d orders", bk.Len())
	}
}
