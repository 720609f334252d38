package book

import (
	"errors"
	"strings"
	"testing"
)

// newBookFrom runs the script setup on a new book, checking it after every command.
func newBookFrom(t *testing.T, setup string) *Book {
	t.Helper()
	steps, err := parseScript(setup)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := runScript(New(), steps)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// applyLine applies one script command to b, checks the book and renders the events.
func applyLine(t *testing.T, b *Book, line string) string {
	t.Helper()
	s, err := parseLine(line)
	if err != nil {
		t.Fatal(err)
	}
	return applyCmd(t, b, s.cmd)
}

func applyCmd(t *testing.T, b *Book, c Command) string {
	t.Helper()
	events := b.Apply(c, nil)
	if err := b.Check(); err != nil {
		t.Fatalf("after %+v: %v", c, err)
	}
	return formatEvents(events, "")
}

// lines joins expected event lines the way formatEvents renders them.
func lines(l ...string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

// TestApply checks the events of one command on a prepared book, and the book after it.
func TestApply(t *testing.T) {
	t.Parallel()
	const book = `
		sell limit gtc 5@102 acct=m1 id=s1
		sell limit gtc 3@101 acct=m2 id=s2
		sell limit gtc 4@101 acct=m3 id=s3
		buy limit gtc 6@99 acct=m4 id=b1
		buy limit gtc 2@98 acct=m5 id=b2`
	tests := []struct {
		name, setup, cmd string
		want             string
		depth            string // the book after, as formatDepth renders it; "" to skip
	}{
		{
			name: "gtc rests without crossing",
			cmd:  "buy limit gtc 1@100 acct=t id=t",
			want: lines("accepted id=t acct=t buy limit gtc 1@100 | bid 100=1"),
		},
		{
			name: "gtc joins an existing level at its tail",
			cmd:  "buy limit gtc 1@99 acct=t id=t",
			want: lines("accepted id=t acct=t buy limit gtc 1@99 | bid 99=7"),
		},
		{
			name: "partial fill of the maker",
			cmd:  "buy limit gtc 2@101 acct=t id=t",
			want: lines(
				"accepted id=t acct=t buy limit gtc 2@101",
				"trade 2@101 taker=t/t buy limit gtc rem=0 maker=s2/m2 rem=1 | ask 101=5"),
		},
		{
			name: "partial fill of the taker rests the rest on the last event",
			cmd:  "buy limit gtc 9@101 acct=t id=t",
			want: lines(
				"accepted id=t acct=t buy limit gtc 9@101",
				"trade 3@101 taker=t/t buy limit gtc rem=6 maker=s2/m2 rem=0 | ask 101=4",
				"trade 4@101 taker=t/t buy limit gtc rem=2 maker=s3/m3 rem=0 | ask 101=0, bid 101=2"),
			depth: "ask 102 x 5 (1)\nbid 101 x 2 (1)\nbid 99 x 6 (1)\nbid 98 x 2 (1)\n",
		},
		{
			name: "price priority across levels, time priority within",
			cmd:  "sell limit ioc 7@98 acct=t id=t",
			want: lines(
				"accepted id=t acct=t sell limit ioc 7@98",
				"trade 6@99 taker=t/t sell limit ioc rem=1 maker=b1/m4 rem=0 | bid 99=0",
				"trade 1@98 taker=t/t sell limit ioc rem=0 maker=b2/m5 rem=1 | bid 98=1"),
		},
		{
			name:  "fifo within a level after a partial fill keeps the partly filled order first",
			setup: "buy limit gtc 1@101 acct=x id=x1",
			cmd:   "buy limit gtc 4@101 acct=t id=t",
			want: lines(
				"accepted id=t acct=t buy limit gtc 4@101",
				"trade 2@101 taker=t/t buy limit gtc rem=2 maker=s2/m2 rem=0 | ask 101=4",
				"trade 2@101 taker=t/t buy limit gtc rem=0 maker=s3/m3 rem=2 | ask 101=2"),
		},
		{
			name: "ioc without a cross is cancelled whole",
			cmd:  "buy limit ioc 3@100 acct=t id=t",
			want: lines(
				"accepted id=t acct=t buy limit ioc 3@100",
				"cancelled id=t acct=t buy limit ioc 3@100 reason=ioc-remainder"),
		},
		{
			name: "ioc partial",
			cmd:  "buy limit ioc 8@101 acct=t id=t",
			want: lines(
				"accepted id=t acct=t buy limit ioc 8@101",
				"trade 3@101 taker=t/t buy limit ioc rem=5 maker=s2/m2 rem=0 | ask 101=4",
				"trade 4@101 taker=t/t buy limit ioc rem=1 maker=s3/m3 rem=0 | ask 101=0",
				"cancelled id=t acct=t buy limit ioc 1@101 reason=ioc-remainder"),
		},
		{
			name: "fok fills across levels",
			cmd:  "buy limit fok 12@102 acct=t id=t",
			want: lines(
				"accepted id=t acct=t buy limit fok 12@102",
				"trade 3@101 taker=t/t buy limit fok rem=9 maker=s2/m2 rem=0 | ask 101=4",
				"trade 4@101 taker=t/t buy limit fok rem=5 maker=s3/m3 rem=0 | ask 101=0",
				"trade 5@102 taker=t/t buy limit fok rem=0 maker=s1/m1 rem=0 | ask 102=0"),
		},
		{
			name: "fok expires when the limit leaves too little",
			cmd:  "buy limit fok 8@101 acct=t id=t",
			want: lines(
				"accepted id=t acct=t buy limit fok 8@101",
				"expired id=t acct=t buy limit fok 8@101 reason=fok"),
			depth: "ask 102 x 5 (1)\nask 101 x 7 (2)\nbid 99 x 6 (1)\nbid 98 x 2 (1)\n",
		},
		{
			name: "fok expires when its own order is in the way",
			cmd:  "buy limit fok 2@101 acct=m2 id=t",
			want: lines(
				"accepted id=t acct=m2 buy limit fok 2@101",
				"expired id=t acct=m2 buy limit fok 2@101 reason=fok"),
		},
		{
			name: "market buy against the empty side",
			cmd:  "sell market ioc 1 acct=t id=t",
			setup: `cancel b1 acct=m4
				cancel b2 acct=m5`,
			want: lines(
				"accepted id=t acct=t sell market ioc 1",
				"cancelled id=t acct=t sell market ioc 1 reason=no-liquidity"),
		},
		{
			name: "market buy against a thin book",
			cmd:  "buy market - 20 acct=t id=t",
			want: lines(
				"accepted id=t acct=t buy market ioc 20",
				"trade 3@101 taker=t/t buy market ioc rem=17 maker=s2/m2 rem=0 | ask 101=4",
				"trade 4@101 taker=t/t buy market ioc rem=13 maker=s3/m3 rem=0 | ask 101=0",
				"trade 5@102 taker=t/t buy market ioc rem=8 maker=s1/m1 rem=0 | ask 102=0",
				"cancelled id=t acct=t buy market ioc 8 reason=no-liquidity"),
			depth: "bid 99 x 6 (1)\nbid 98 x 2 (1)\n",
		},
		{
			name: "market with a protection bound stops at it",
			cmd:  "buy market ioc 20@101 acct=t id=t",
			want: lines(
				"accepted id=t acct=t buy market ioc 20@101",
				"trade 3@101 taker=t/t buy market ioc rem=17 maker=s2/m2 rem=0 | ask 101=4",
				"trade 4@101 taker=t/t buy market ioc rem=13 maker=s3/m3 rem=0 | ask 101=0",
				"cancelled id=t acct=t buy market ioc 13@101 reason=no-liquidity"),
		},
		{
			name: "post-only that would cross is rejected",
			cmd:  "buy limit gtc 1@101 acct=t id=t post",
			want: lines("rejected id=t acct=t buy limit gtc 1@101 post: post-only-would-take (post-only order would trade on arrival)"),
		},
		{
			name: "post-only that does not cross rests",
			cmd:  "sell limit gtc 1@100 acct=t id=t post",
			want: lines("accepted id=t acct=t sell limit gtc 1@100 post | ask 100=1"),
		},
		{
			name: "self-trade cancels the taker after the trades before it",
			cmd:  "buy limit gtc 9@102 acct=m3 id=t",
			want: lines(
				"accepted id=t acct=m3 buy limit gtc 9@102",
				"trade 3@101 taker=t/m3 buy limit gtc rem=6 maker=s2/m2 rem=0 | ask 101=4",
				"cancelled id=t acct=m3 buy limit gtc 6@102 reason=self-trade"),
			depth: "ask 102 x 5 (1)\nask 101 x 4 (1)\nbid 99 x 6 (1)\nbid 98 x 2 (1)\n",
		},
		{
			name: "self-trade cancel maker keeps matching",
			cmd:  "buy limit gtc 9@102 acct=m3 id=t stp=maker",
			want: lines(
				"accepted id=t acct=m3 buy limit gtc 9@102",
				"trade 3@101 taker=t/m3 buy limit gtc rem=6 maker=s2/m2 rem=0 | ask 101=4",
				"cancelled id=s3 acct=m3 sell limit gtc 4@101 reason=self-trade | ask 101=0",
				"trade 5@102 taker=t/m3 buy limit gtc rem=1 maker=s1/m1 rem=0 | ask 102=0, bid 102=1"),
		},
		{
			name: "self-trade cancel both",
			cmd:  "buy limit gtc 9@102 acct=m3 id=t stp=both",
			want: lines(
				"accepted id=t acct=m3 buy limit gtc 9@102",
				"trade 3@101 taker=t/m3 buy limit gtc rem=6 maker=s2/m2 rem=0 | ask 101=4",
				"cancelled id=s3 acct=m3 sell limit gtc 4@101 reason=self-trade | ask 101=0",
				"cancelled id=t acct=m3 buy limit gtc 6@102 reason=self-trade"),
		},
		{
			name: "cancel of a resting order",
			cmd:  "cancel s2 acct=m2",
			want: lines("cancelled id=s2 acct=m2 sell limit gtc 3@101 reason=user | ask 101=4"),
		},
		{
			name: "cancel from another account",
			cmd:  "cancel s2 acct=m3",
			want: lines("cancel-rejected id=s2 acct=m3: order-not-found (order is not on the book for this account)"),
		},
		{
			name: "cancel of an unknown order",
			cmd:  "cancel zz acct=m3",
			want: lines("cancel-rejected id=zz acct=m3: order-not-found (order is not on the book for this account)"),
		},
		{
			name:  "cancel of a filled order",
			setup: "buy limit ioc 3@101 acct=t id=t0",
			cmd:   "cancel s2 acct=m2",
			want:  lines("cancel-rejected id=s2 acct=m2: order-not-found (order is not on the book for this account)"),
		},
		{
			name:  "cancel of a cancelled order",
			setup: "cancel s2 acct=m2",
			cmd:   "cancel s2 acct=m2",
			want:  lines("cancel-rejected id=s2 acct=m2: order-not-found (order is not on the book for this account)"),
		},
		{
			name: "admin cancel of the last order of a level",
			cmd:  "cancel s1 acct=m1 reason=admin",
			want: lines("cancelled id=s1 acct=m1 sell limit gtc 5@102 reason=admin | ask 102=0"),
		},
		{
			name: "duplicate id",
			cmd:  "buy limit gtc 1@90 acct=t id=s1",
			want: lines("rejected id=s1 acct=t buy limit gtc 1@90: duplicate-order (an order with this id is on the book)"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBookFrom(t, book+"\n"+tt.setup)
			if got := applyLine(t, b, tt.cmd); got != tt.want {
				t.Errorf("events:\n%swant:\n%s", got, tt.want)
			}
			if tt.depth != "" {
				if got := formatDepth(b, ""); got != tt.depth {
					t.Errorf("book after:\n%swant:\n%s", got, tt.depth)
				}
			}
		})
	}
}

// TestValidate checks that every malformed submit is rejected as invalid and changes
// nothing.
func TestValidate(t *testing.T) {
	t.Parallel()
	ok := Command{Kind: Submit, OrderID: "o", Account: "a", Side: Buy, Type: Limit, TimeInForce: GTC, Price: 10, Quantity: 1}
	tests := []struct {
		name   string
		change func(*Command)
		msg    string
	}{
		{"unknown kind", func(c *Command) { c.Kind = 0 }, msgUnknownCommand},
		{"no id", func(c *Command) { c.OrderID = "" }, msgNoOrderID},
		{"no account", func(c *Command) { c.Account = "" }, msgNoAccount},
		{"no side", func(c *Command) { c.Side = 0 }, msgBadSide},
		{"bad side", func(c *Command) { c.Side = 3 }, msgBadSide},
		{"no type", func(c *Command) { c.Type = 0 }, msgBadType},
		{"bad tif", func(c *Command) { c.TimeInForce = 4 }, msgBadTimeInForce},
		{"zero quantity", func(c *Command) { c.Quantity = 0 }, msgBadQuantity},
		{"negative quantity", func(c *Command) { c.Quantity = -5 }, msgBadQuantity},
		{"zero limit price", func(c *Command) { c.Price = 0 }, msgBadLimitPrice},
		{"negative market bound", func(c *Command) { c.Type, c.Price = Market, -1 }, msgBadMarketPrice},
		{"post-only market", func(c *Command) { c.Type, c.TimeInForce, c.PostOnly = Market, IOC, true }, msgPostOnlyMarket},
		{"post-only ioc", func(c *Command) { c.TimeInForce, c.PostOnly = IOC, true }, msgPostOnlyTIF},
		{"post-only fok", func(c *Command) { c.TimeInForce, c.PostOnly = FOK, true }, msgPostOnlyTIF},
		{"bad stp", func(c *Command) { c.SelfTradePrevention = 4 }, msgBadSTP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBookFrom(t, "sell limit gtc 5@20 acct=m id=m")
			c := ok
			tt.change(&c)
			events := b.Apply(c, nil)
			if err := b.Check(); err != nil {
				t.Fatal(err)
			}
			if len(events) != 1 || events[0].Kind != EventRejected ||
				events[0].RejectReason != RejectInvalidOrder || events[0].Message != tt.msg {
				t.Fatalf("events:\n%swant one rejected invalid-order (%s)", formatEvents(events, ""), tt.msg)
			}
			if b.Len() != 1 || b.Levels(Sell) != 1 {
				t.Errorf("book changed: %d orders", b.Len())
			}
		})
	}
}

// TestSideOverflow checks that an order whose rest would overflow its side's total is
// rejected before it trades.
func TestSideOverflow(t *testing.T) {
	t.Parallel()
	const huge = 1 << 62
	b := New()
	c := Command{Kind: Submit, OrderID: "b1", Account: "a", Side: Buy, Type: Limit, Price: 10, Quantity: huge}
	applyCmd(t, b, c)
	c.OrderID = "b2"
	applyCmd(t, b, c)
	c.OrderID = "b3"
	got := applyCmd(t, b, c)
	want := lines("rejected id=b3 acct=a buy limit gtc 4611686018427387904@10: invalid-order (resting quantity on this side would overflow)")
	if got != want {
		t.Errorf("got:\n%swant:\n%s", got, want)
	}
	// An IOC order never rests, so the side's total does not limit it.
	c.OrderID, c.TimeInForce = "b4", IOC
	if got := applyCmd(t, b, c); !strings.HasPrefix(got, "accepted") {
		t.Errorf("ioc: %s", got)
	}
}

// TestApplyAppends checks that Apply appends to the caller's slice, so several commands
// can share one buffer.
func TestApplyAppends(t *testing.T) {
	t.Parallel()
	b := New()
	buf := make([]Event, 0, 8)
	buf = b.Apply(Command{Kind: Submit, OrderID: "s", Account: "a", Side: Sell, Type: Limit, Price: 5, Quantity: 2}, buf)
	buf = b.Apply(Command{Kind: Submit, OrderID: "b", Account: "b", Side: Buy, Type: Limit, Price: 6, Quantity: 3}, buf)
	want := lines(
		"accepted id=s acct=a sell limit gtc 2@5 | ask 5=2",
		"accepted id=b acct=b buy limit gtc 3@6",
		"trade 2@5 taker=b/b buy limit gtc rem=1 maker=s/a rem=0 | ask 5=0, bid 6=1")
	if got := formatEvents(buf, ""); got != want {
		t.Errorf("got:\n%swant:\n%s", got, want)
	}
	if got := b.Apply(Command{Kind: Cancel, OrderID: "b", Account: "b"}, buf[:0]); len(got) != 1 || &got[0] != &buf[0] {
		t.Errorf("Apply(cmd, buf[:0]) did not reuse buf")
	}
}

// TestViews checks the read views on a small book.
func TestViews(t *testing.T) {
	t.Parallel()
	b := New()
	if _, ok := b.BestBid(); ok {
		t.Error("empty book has a best bid")
	}
	if _, ok := b.BestAsk(); ok {
		t.Error("empty book has a best ask")
	}
	steps, err := parseScript(`
		buy limit gtc 1@99 acct=a id=b1
		buy limit gtc 2@99 acct=b id=b2
		buy limit gtc 4@97 acct=a id=b3
		sell limit gtc 3@101 acct=c id=s1 post
		sell limit gtc 5@103 acct=c id=s2
		buy limit gtc 1@101 acct=d id=b4`)
	if err != nil {
		t.Fatal(err)
	}
	if b, _, err = runScript(b, steps); err != nil {
		t.Fatal(err)
	}
	if got, ok := b.BestBid(); !ok || got != (Level{Price: 99, Quantity: 3, Orders: 2}) {
		t.Errorf("BestBid = %+v, %v", got, ok)
	}
	if got, ok := b.BestAsk(); !ok || got != (Level{Price: 101, Quantity: 2, Orders: 1}) {
		t.Errorf("BestAsk = %+v, %v", got, ok)
	}
	if got := b.Depth(Buy, 1, nil); len(got) != 1 || got[0].Price != 99 {
		t.Errorf("Depth(Buy, 1) = %+v", got)
	}
	buf := make([]Level, 0, 4)
	if got := b.Depth(Sell, 10, buf); len(got) != 2 || got[1] != (Level{Price: 103, Quantity: 5, Orders: 1}) || &got[0] != &buf[:1][0] {
		t.Errorf("Depth(Sell, 10) = %+v", got)
	}
	if got := b.Depth(0, 10, nil); len(got) != 0 {
		t.Errorf("Depth(0) = %+v", got)
	}
	if b.Len() != 5 || b.Levels(Buy) != 2 || b.Levels(Sell) != 2 || b.Levels(0) != 0 {
		t.Errorf("Len %d, Levels %d/%d", b.Len(), b.Levels(Buy), b.Levels(Sell))
	}
	want := RestingOrder{ID: "s1", Account: "c", Side: Sell, PostOnly: true, Price: 101, Quantity: 3, Remaining: 2, Seq: 4}
	if got, ok := b.Order("s1"); !ok || got != want {
		t.Errorf("Order(s1) = %+v, %v; want %+v", got, ok, want)
	}
	if _, ok := b.Order("b4"); ok {
		t.Error("Order(b4): a filled order is still found")
	}
}

// TestCheckDetects breaks the book's structures one way at a time and expects Check to
// notice each.
func TestCheckDetects(t *testing.T) {
	t.Parallel()
	const setup = `
		buy limit gtc 1@99 acct=a id=b1
		buy limit gtc 2@99 acct=b id=b2
		buy limit gtc 4@97 acct=a id=b3
		sell limit gtc 3@101 acct=c id=s1
		sell limit gtc 5@103 acct=c id=s2`
	tests := []struct {
		name    string
		corrupt func(b *Book)
	}{
		{"level total", func(b *Book) { b.bids.best().total++ }},
		{"level count", func(b *Book) { b.bids.best().count++ }},
		{"side total", func(b *Book) { b.asks.total-- }},
		{"level count of side", func(b *Book) { b.asks.levels++ }},
		{"crossed", func(b *Book) { b.bids.best().price, b.bids.best().key = 102, -102 }},
		{"fifo", func(b *Book) { lv := b.bids.best(); lv.head.seq, lv.tail.seq = lv.tail.seq, lv.head.seq }},
		{"order price", func(b *Book) { b.index["b2"].price = 98 }},
		{"remaining", func(b *Book) { o := b.index["s2"]; o.remaining = o.quantity + 1 }},
		{"index missing", func(b *Book) { delete(b.index, "b3") }},
		{"index extra", func(b *Book) { b.index["zz"] = &order{id: "zz"} }},
		{"index wrong node", func(b *Book) { b.index["b1"] = b.index["b2"] }},
		{"level order", func(b *Book) { lv := b.asks.best(); lv.key, lv.price = 104, 104 }},
		{"broken back link", func(b *Book) { b.bids.best().tail.prev = nil }},
		{"seq beyond book", func(b *Book) { b.index["s2"].seq = 99 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBookFrom(t, setup)
			tt.corrupt(b)
			if err := b.Check(); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Check() = %v, want ErrCorrupt", err)
			}
		})
	}
}
