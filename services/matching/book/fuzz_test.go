package book

import (
	"reflect"
	"slices"
	"testing"
)

var (
	fuzzIDs      = []string{"o0", "o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8", "o9", "o10", "o11", "o12", "o13", "o14", "o15"}
	fuzzAccounts = []string{"a", "b", "c", ""}
)

// fuzzCommand decodes 4 bytes into a command over a small space (16 ids, 3 accounts and
// an empty one, 21 prices, small and huge quantities), so that fills, self-trades,
// duplicates, cancels and every rejection are likely.
func fuzzCommand(p []byte) Command {
	b0, b1, b2, b3 := p[0], p[1], p[2], p[3]
	if b0&3 == 3 {
		return Command{
			Kind:         Cancel,
			OrderID:      fuzzIDs[b1&15],
			Account:      fuzzAccounts[b3&3],
			CancelReason: CancelReason(b2 % 4),
		}
	}
	c := Command{
		Kind:                Submit,
		OrderID:             fuzzIDs[(b3>>2)&15],
		Account:             fuzzAccounts[b3&3],
		Side:                Side(1 + (b0>>2)&1),
		Type:                Limit,
		TimeInForce:         TimeInForce((b0 >> 3) & 3),
		PostOnly:            b0&0x40 != 0,
		Price:               90 + int64(b1%21),
		Quantity:            int64(b2 % 16),
		SelfTradePrevention: SelfTradePrevention(b3 >> 6),
	}
	if b0&0x20 != 0 {
		c.Type = Market
		if b0&0x80 == 0 {
			c.Price = 0 // no protection bound
		}
	}
	switch b1 {
	case 255:
		c.Price = 0
	case 254:
		c.Price = -1
	}
	if b2 >= 250 {
		c.Quantity = 1 << 61 // sums of these overflow int64
	}
	if b0&3 == 2 && b1 > 250 {
		c.Kind = CommandKind(b1)
	}
	return c
}

// FuzzBook applies any command stream to a Book and to the reference model: the book
// must never panic, must pass Check after every command, must emit exactly the
// reference's events, and must survive a snapshot round trip.
func FuzzBook(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 5, 3, 0, 4, 5, 3, 1})
	f.Add([]byte{0, 5, 3, 0, 4, 4, 9, 4, 3, 0, 0, 0})
	f.Add([]byte{0x08, 10, 5, 0x40, 0x1c, 12, 7, 0x81, 0x24, 0, 200, 0xc2, 0x2c, 0, 20, 3})
	f.Add([]byte{0, 10, 251, 0, 0, 10, 251, 4, 0, 10, 251, 8})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, ref := New(), &refBook{}
		var got []Event
		for i := 0; i+4 <= len(data); i += 4 {
			c := fuzzCommand(data[i : i+4])
			got = b.Apply(c, got[:0])
			if err := b.Check(); err != nil {
				t.Fatalf("command %d %+v: %v", i/4, c, err)
			}
			if want := ref.apply(c); !slices.Equal(got, want) {
				t.Fatalf("command %d %+v:\ngot:\n%swant:\n%s", i/4, c, formatEvents(got, "  "), formatEvents(want, "  "))
			}
		}
		compareDepth(t, b, ref)
		r, err := roundTrip(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r.Snapshot(), b.Snapshot()) {
			t.Fatal("restored book differs")
		}
	})
}

// FuzzSnapshot decodes arbitrary bytes as a snapshot: decoding and restoring must never
// panic, and whatever restores must pass Check and encode back to the same snapshot.
func FuzzSnapshot(f *testing.F) {
	b := New()
	for _, c := range []Command{
		{Kind: Submit, OrderID: "b1", Account: "a", Side: Buy, Type: Limit, Price: 99, Quantity: 5},
		{Kind: Submit, OrderID: "s1", Account: "b", Side: Sell, Type: Limit, Price: 101, Quantity: 3, PostOnly: true},
		{Kind: Submit, OrderID: "s2", Account: "b", Side: Sell, Type: Limit, Price: 101, Quantity: 2},
	} {
		b.Apply(c, nil)
	}
	data, err := b.Snapshot().MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("TXOB\x01\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Snapshot
		if s.UnmarshalBinary(data) != nil {
			return
		}
		b, err := Restore(s)
		if err != nil {
			return
		}
		if err := b.Check(); err != nil {
			t.Fatal(err)
		}
		again, err := b.Snapshot().MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var s2 Snapshot
		if err := s2.UnmarshalBinary(again); err != nil {
			t.Fatal(err)
		}
		if r, err := Restore(s2); err != nil || !reflect.DeepEqual(r.Snapshot(), b.Snapshot()) {
			t.Fatalf("re-encoded snapshot restores differently: %v", err)
		}
	})
}
