package book

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// cmdGen generates a random but reproducible command stream: limit orders of every time
// in force around a drifting mid price, market orders, cancels of recent (live or gone)
// orders, cancels from the wrong account or of unknown ids, duplicate ids, invalid
// commands, and few accounts so that self-trade prevention triggers often.
type cmdGen struct {
	rng      *rand.Rand
	ids      []string // every id submitted so far
	owners   []string // the account that submitted ids[i]
	accounts []string
	mid      int64
	n        int
	// resting, if set, is a model of the book the stream goes to: one cancel in four
	// names one of its resting orders, so that stale orders far from the mid leave too.
	resting *refBook
}

func newCmdGen(seed uint64) *cmdGen {
	return &cmdGen{
		rng:      rand.New(rand.NewPCG(seed, seed^0x5eed)), //nolint:gosec // a reproducible test stream needs a seeded generator
		accounts: []string{"a0", "a1", "a2", "a3", "a4", "a5"},
		mid:      1000,
	}
}

// small returns a random number below n, n <= 256, as a byte.
func small(rng *rand.Rand, n int) uint8 {
	return uint8(rng.IntN(n)) //nolint:gosec // n <= 256
}

func (g *cmdGen) account() string { return g.accounts[g.rng.IntN(len(g.accounts))] }

// recent returns the index of one of the last 400 ids submitted.
func (g *cmdGen) recent() int {
	n := min(len(g.ids), 400)
	return len(g.ids) - 1 - g.rng.IntN(n)
}

func (g *cmdGen) newID(account string) string {
	id := "o" + strconv.Itoa(len(g.ids))
	g.ids = append(g.ids, id)
	g.owners = append(g.owners, account)
	return id
}

func (g *cmdGen) next() Command {
	g.n++
	if g.n%50 == 0 {
		g.mid += int64(g.rng.IntN(5)) - 2
		g.mid = max(g.mid, 50)
	}
	p := g.rng.IntN(100)
	if p < 30 && len(g.ids) > 0 {
		return g.cancel()
	}
	account := g.account()
	c := Command{
		Kind:     Submit,
		OrderID:  g.newID(account),
		Account:  account,
		Side:     Side(1 + small(g.rng, 2)),
		Type:     Limit,
		Quantity: 1 + g.rng.Int64N(20),
	}
	if g.rng.IntN(4) == 0 {
		c.SelfTradePrevention = SelfTradePrevention(small(g.rng, 4))
	}
	// Passive limits sit on their own side of the mid, aggressive ones cross it.
	passive := g.mid + 1 + g.rng.Int64N(10)
	if c.Side == Buy {
		passive = g.mid - 1 - g.rng.Int64N(10)
	}
	aggressive := 2*g.mid - passive
	switch {
	case p < 65: // resting GTC, some post-only, some zero time in force
		c.Price, c.TimeInForce = passive, GTC
		c.PostOnly = g.rng.IntN(8) == 0
		if g.rng.IntN(10) == 0 {
			c.TimeInForce = 0
		}
	case p < 78: // crossing GTC or IOC
		c.Price, c.TimeInForce = aggressive, TimeInForce(1+small(g.rng, 2))
		c.PostOnly = g.rng.IntN(10) == 0 && c.TimeInForce == GTC
	case p < 85: // FOK, limit or market
		c.Price, c.TimeInForce = aggressive, FOK
		if g.rng.IntN(3) == 0 {
			c.Type, c.Price = Market, 0
		}
		c.Quantity = 1 + g.rng.Int64N(60)
	case p < 93: // market, sometimes with a protection bound
		c.Type, c.Price, c.TimeInForce = Market, 0, TimeInForce(small(g.rng, 3))
		if g.rng.IntN(3) == 0 {
			c.Price = aggressive
		}
	case p < 97: // a duplicate of a recent id (rejected if it still rests)
		g.ids, g.owners = g.ids[:len(g.ids)-1], g.owners[:len(g.owners)-1]
		if len(g.ids) > 0 {
			c.OrderID = g.ids[g.recent()]
		}
		c.Price, c.TimeInForce = passive, GTC
	default:
		g.invalidate(&c)
	}
	return c
}

func (g *cmdGen) cancel() Command {
	if g.resting != nil && len(g.resting.orders) > 0 && g.rng.IntN(4) == 0 {
		o := g.resting.orders[g.rng.IntN(len(g.resting.orders))]
		return Command{Kind: Cancel, OrderID: o.ID, Account: o.Account}
	}
	i := g.recent()
	c := Command{Kind: Cancel, OrderID: g.ids[i], Account: g.owners[i]}
	switch g.rng.IntN(10) {
	case 0:
		c.OrderID = "unknown"
	case 1:
		c.Account = g.account()
	case 2:
		c.CancelReason = CancelReason(small(g.rng, 6))
	}
	return c
}

// invalidate breaks one field of c.
func (g *cmdGen) invalidate(c *Command) {
	c.Price, c.TimeInForce = g.mid, GTC
	switch g.rng.IntN(9) {
	case 0:
		c.OrderID = ""
	case 1:
		c.Account = ""
	case 2:
		c.Side = Side(small(g.rng, 2) * 3)
	case 3:
		c.Type = OrderType(small(g.rng, 2) * 3)
	case 4:
		c.TimeInForce = 4
	case 5:
		c.Quantity = -g.rng.Int64N(2)
	case 6:
		c.Price = -g.rng.Int64N(2)
	case 7:
		c.PostOnly, c.TimeInForce = true, IOC
	default:
		c.Kind = CommandKind(3 + small(g.rng, 2))
	}
}

// TestRandomAgainstReference applies 100,000 generated commands to a Book and to the
// naive refBook and requires identical events, the same depth, a book that passes Check,
// and a book that survives snapshot and restore at any point.
func TestRandomAgainstReference(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			n := 100_000
			if testing.Short() {
				n = 10_000
			}
			g := newCmdGen(seed)
			compareWithReference(t, g, n)
		})
	}
}

func compareWithReference(t *testing.T, g *cmdGen, n int) {
	b, ref := New(), &refBook{}
	g.resting = ref
	var got []Event
	stats := map[string]int{}
	for i := range n {
		c := g.next()
		got = b.Apply(c, got[:0])
		want := ref.apply(c)
		if !slices.Equal(got, want) {
			t.Fatalf("command %d %+v:\ngot:\n%swant:\n%s", i, c, formatEvents(got, "  "), formatEvents(want, "  "))
		}
		for _, e := range got {
			k := e.Kind.String()
			switch e.Kind {
			case EventCancelled:
				k += "/" + e.CancelReason.String()
			case EventRejected, EventCancelRejected:
				k += "/" + e.RejectReason.String()
			}
			stats[k]++
		}
		if i%100 == 0 {
			if err := b.Check(); err != nil {
				t.Fatalf("command %d: %v", i, err)
			}
		}
		if i%1000 == 0 {
			compareDepth(t, b, ref)
		}
		if i%10_000 == 5_000 {
			var err error
			if b, err = roundTrip(b); err != nil {
				t.Fatalf("command %d: restore: %v", i, err)
			}
		}
	}
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
	compareDepth(t, b, ref)
	for _, k := range []string{
		"accepted", "trade", "expired",
		"rejected/invalid-order", "rejected/duplicate-order", "rejected/post-only-would-take",
		"cancelled/user", "cancelled/admin", "cancelled/self-trade", "cancelled/ioc-remainder", "cancelled/no-liquidity",
		"cancel-rejected/order-not-found", "cancel-rejected/invalid-order",
	} {
		if stats[k] == 0 {
			t.Errorf("the stream never produced %s", k)
		}
	}
	t.Logf("%d commands, events %v, %d resting at the end", n, stats, b.Len())
}

func compareDepth(t *testing.T, b *Book, ref *refBook) {
	t.Helper()
	for _, s := range []Side{Buy, Sell} {
		got, want := b.Depth(s, b.Levels(s)+1, nil), ref.depth(s)
		if !slices.Equal(got, want) {
			t.Fatalf("%s depth:\ngot  %v\nwant %v", s, got, want)
		}
	}
	if b.Len() != len(ref.orders) {
		t.Fatalf("book holds %d orders, reference %d", b.Len(), len(ref.orders))
	}
}
