package wsfeed

import (
	"errors"
	"testing"

	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
)

func TestCompareDecimal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"50000.00", "50000.00", 0},
		{"50000.5", "50000.50", 0},
		{"050000.5", "50000.5", 0},
		{"9999.99", "10000.00", -1},
		{"0.45", "0.5", -1},
		{"0.05", "0.5", -1},
		{"7", "6.99", 1},
		{"0", "0.000", 0},
	}
	for _, tt := range tests {
		t.Run(tt.a+" vs "+tt.b, func(t *testing.T) {
			t.Parallel()
			got := compareDecimal(tt.a, tt.b)
			if sign(got) != tt.want || sign(compareDecimal(tt.b, tt.a)) != -tt.want {
				t.Errorf("compareDecimal(%s, %s) = %d; want sign %d", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func lv(price, qty string) *marketdatav1.BookLevel {
	return &marketdatav1.BookLevel{Price: price, Quantity: qty}
}

func TestBookKeepsSidesSortedAndChecksSeq(t *testing.T) {
	t.Parallel()
	var b book
	b.reset(&marketdatav1.BookSnapshot{Seq: 5,
		Bids: []*marketdatav1.BookLevel{lv("100.00", "1"), lv("99.00", "2")},
		Asks: []*marketdatav1.BookLevel{lv("101.00", "1")}})
	if err := b.apply(&marketdatav1.BookDelta{PrevSeq: 4, Seq: 6}); !errors.Is(err, errGap) {
		t.Fatalf("delta after seq 4 on a book at 5: %v; want errGap", err)
	}
	if err := b.apply(&marketdatav1.BookDelta{PrevSeq: 5, Seq: 7,
		Bids: []*marketdatav1.BookLevel{lv("100.50", "3"), lv("99.00", "0.000"), lv("98.00", "4")},
		Asks: []*marketdatav1.BookLevel{lv("101.00", "5"), lv("1000.00", "1"), lv("102.00", "2")}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		depth      int
		bids, asks string
	}{
		{0, "100.50x3 100.00x1 98.00x4", "101.00x5 102.00x2 1000.00x1"},
		{2, "100.50x3 100.00x1", "101.00x5 102.00x2"},
		{10, "100.50x3 100.00x1 98.00x4", "101.00x5 102.00x2 1000.00x1"},
	}
	for _, tt := range tests {
		s := b.snapshot("X", tt.depth)
		if got := levelsString(s.GetBids()); got != tt.bids {
			t.Errorf("depth %d bids %s; want %s", tt.depth, got, tt.bids)
		}
		if got := levelsString(s.GetAsks()); got != tt.asks {
			t.Errorf("depth %d asks %s; want %s", tt.depth, got, tt.asks)
		}
		if s.GetSeq() != 7 {
			t.Errorf("seq %d; want 7", s.GetSeq())
		}
	}
}

func levelsString(ls []*marketdatav1.BookLevel) string {
	out := ""
	for i, l := range ls {
		if i > 0 {
			out += " "
		}
		out += l.GetPrice() + "x" + l.GetQuantity()
	}
	return out
}

func TestOutboxOverflowsOnceAndRefusesAfter(t *testing.T) {
	t.Parallel()
	o := newOutbox(2, 1<<20)
	f := ownFrame([]byte("{}"))
	for i, want := range []pushResult{pushed, pushed, overflowed, refused} {
		if got := o.push(f); got != want {
			t.Fatalf("push %d: %d; want %d", i, got, want)
		}
	}
	if batch := o.take(); len(batch) != 0 {
		t.Errorf("an overflowed outbox still holds %d frames", len(batch))
	}
	o = newOutbox(2, 1<<20)
	o.push(f)
	if batch := o.take(); len(batch) != 1 {
		t.Fatalf("take %d frames; want 1", len(batch))
	}
	o.push(f)
	o.push(f) // the taken batch no longer counts
	if got := o.push(f); got != overflowed {
		t.Errorf("third push after take: %d; want overflowed", got)
	}
}

// The byte budget counts what is queued and what is being written, until
// it is written; one frame over the whole budget passes alone.
func TestOutboxByteBudget(t *testing.T) {
	t.Parallel()
	o := newOutbox(100, 10)
	six := ownFrame([]byte("012345"))
	if got := o.push(six); got != pushed {
		t.Fatalf("first 6 bytes: %d", got)
	}
	batch := o.take()
	if got := o.queued(); got != 6 {
		t.Errorf("queued %d bytes while the batch is written; want 6", got)
	}
	if got := o.push(ownFrame([]byte("0123"))); got != pushed { // 10: at the budget
		t.Fatalf("4 more bytes: %d", got)
	}
	o.written(batch)
	if got := o.queued(); got != 4 {
		t.Errorf("queued %d bytes after the batch was written; want 4", got)
	}
	if got := o.push(six); got != pushed {
		t.Fatalf("6 more bytes (10 in all): %d", got)
	}
	if got := o.push(ownFrame([]byte("x"))); got != overflowed {
		t.Errorf("11 bytes: %d; want overflowed", got)
	}

	big := newOutbox(100, 10)
	if got := big.push(ownFrame(make([]byte, 50))); got != pushed {
		t.Errorf("one 50-byte frame into an empty 10-byte budget: %d; want pushed", got)
	}
	if got := big.push(ownFrame([]byte("x"))); got != overflowed {
		t.Errorf("a byte behind it: %d; want overflowed", got)
	}
}

// A book snapshot at a depth is encoded once per book state and shared by
// every subscriber; every depth at least as deep as the book is the same
// frame.
func TestBookSnapshotsAreShared(t *testing.T) {
	t.Parallel()
	s := &bookSource{key: key{ch: chBook, name: "BTCUSDT"}, snaps: map[int]*frame{}}
	s.book.reset(&marketdatav1.BookSnapshot{
		Seq:  1,
		Bids: []*marketdatav1.BookLevel{{Price: "100", Quantity: "1"}, {Price: "99", Quantity: "1"}},
		Asks: []*marketdatav1.BookLevel{{Price: "101", Quantity: "1"}, {Price: "102", Quantity: "1"}, {Price: "103", Quantity: "1"}},
	})
	one := s.greet(1)[0]
	if again := s.greet(1)[0]; again != one {
		t.Error("depth 1 encoded twice")
	}
	whole := s.greet(0)[0]
	for _, depth := range []int{3, 4, 1000} {
		if f := s.greet(depth)[0]; f != whole {
			t.Errorf("depth %d of a 3-level book is not the whole book's frame", depth)
		}
	}
	if two := s.greet(2)[0]; two == whole || two == one {
		t.Error("depth 2 shares another depth's frame")
	}
	if len(s.snaps) != 3 {
		t.Errorf("%d frames cached; want 3 (depths 1, 2, whole)", len(s.snaps))
	}
}
