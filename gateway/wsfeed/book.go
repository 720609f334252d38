package wsfeed

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
)

// errGap is a delta that does not follow the book the hub holds.
var errGap = errors.New("book delta out of sequence")

// level is one price of a book side.
type level struct{ price, qty string }

// book is the L2 book of one instrument as the hub keeps it: the upstream
// snapshot with every delta after it applied.
type book struct {
	seq  uint64
	time *timestamppb.Timestamp
	bids []level // highest price first
	asks []level // lowest price first
}

// reset replaces the book with a snapshot.
func (b *book) reset(s *marketdatav1.BookSnapshot) {
	b.seq, b.time = s.GetSeq(), s.GetTime()
	b.bids = b.bids[:0]
	b.asks = b.asks[:0]
	for _, l := range s.GetBids() {
		b.bids = setLevel(b.bids, l, true)
	}
	for _, l := range s.GetAsks() {
		b.asks = setLevel(b.asks, l, false)
	}
}

// apply applies a delta whose prev_seq is the book's seq; any other delta
// is errGap and changes nothing.
func (b *book) apply(d *marketdatav1.BookDelta) error {
	if d.GetPrevSeq() != b.seq {
		return fmt.Errorf("%w: prev_seq %d, book at %d", errGap, d.GetPrevSeq(), b.seq)
	}
	for _, l := range d.GetBids() {
		b.bids = setLevel(b.bids, l, true)
	}
	for _, l := range d.GetAsks() {
		b.asks = setLevel(b.asks, l, false)
	}
	b.seq, b.time = d.GetSeq(), d.GetTime()
	return nil
}

// snapshot returns the book with at most depth levels a side (0: all).
func (b *book) snapshot(symbol string, depth int) *marketdatav1.BookSnapshot {
	return &marketdatav1.BookSnapshot{
		InstrumentId: symbol,
		Bids:         levels(b.bids, depth),
		Asks:         levels(b.asks, depth),
		Seq:          b.seq,
		Time:         b.time,
	}
}

func levels(side []level, depth int) []*marketdatav1.BookLevel {
	if depth > 0 && depth < len(side) {
		side = side[:depth]
	}
	out := make([]*marketdatav1.BookLevel, len(side))
	for i, l := range side {
		out[i] = &marketdatav1.BookLevel{Price: l.price, Quantity: l.qty}
	}
	return out
}

// setLevel sets a level's total on a side kept best first (bids: highest
// first); a zero quantity removes the level.
func setLevel(side []level, l *marketdatav1.BookLevel, bids bool) []level {
	i, found := slices.BinarySearchFunc(side, l.GetPrice(), func(have level, price string) int {
		c := compareDecimal(have.price, price)
		if bids {
			return -c
		}
		return c
	})
	switch {
	case isZero(l.GetQuantity()):
		if found {
			side = slices.Delete(side, i, i+1)
		}
	case found:
		side[i].qty = l.GetQuantity()
	default:
		side = slices.Insert(side, i, level{price: l.GetPrice(), qty: l.GetQuantity()})
	}
	return side
}

// compareDecimal compares two non-negative decimal strings ("50000.5",
// "050000.50") by value.
func compareDecimal(a, b string) int {
	ai, af, _ := strings.Cut(a, ".")
	bi, bf, _ := strings.Cut(b, ".")
	ai, bi = strings.TrimLeft(ai, "0"), strings.TrimLeft(bi, "0")
	if c := len(ai) - len(bi); c != 0 {
		return c
	}
	if c := strings.Compare(ai, bi); c != 0 {
		return c
	}
	af, bf = strings.TrimRight(af, "0"), strings.TrimRight(bf, "0")
	return strings.Compare(af, bf) // equal-length prefixes of digits compare as text
}

// isZero reports whether a decimal string is zero ("0", "0.000").
func isZero(s string) bool {
	return strings.Trim(s, "0.") == ""
}
