package book

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// TestSnapshotDeterminism restores a book at several points of a command stream and
// requires the restored book and the original to emit identical events for the rest of
// the stream, and to end in byte-identical snapshots.
func TestSnapshotDeterminism(t *testing.T) {
	t.Parallel()
	const n = 20_000
	g := newCmdGen(7)
	cmds := make([]Command, n)
	for i := range cmds {
		cmds[i] = g.next()
	}
	for _, at := range []int{0, 1, 777, 5_000, 12_345, n} {
		t.Run(fmt.Sprint("at=", at), func(t *testing.T) {
			t.Parallel()
			orig := New()
			var a, b []Event
			for _, c := range cmds[:at] {
				a = orig.Apply(c, a[:0])
			}
			restored, err := roundTrip(orig)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range cmds[at:] {
				a, b = orig.Apply(c, a[:0]), restored.Apply(c, b[:0])
				if !slices.Equal(a, b) || formatEvents(a, "") != formatEvents(b, "") {
					t.Fatalf("command %d: original:\n%srestored:\n%s", at+i, formatEvents(a, "  "), formatEvents(b, "  "))
				}
			}
			if err := restored.Check(); err != nil {
				t.Fatal(err)
			}
			x, _ := orig.Snapshot().MarshalBinary()
			y, _ := restored.Snapshot().MarshalBinary()
			if !bytes.Equal(x, y) {
				t.Fatalf("final snapshots differ: %d and %d bytes", len(x), len(y))
			}
		})
	}
}

// TestSnapshotRoundTrip checks that a snapshot survives encoding and restoring
// unchanged, and that Snapshot lists orders in priority order.
func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	b := newBookFrom(t, `
		buy limit gtc 1@99 acct=a id=b1
		buy limit gtc 2@100 acct=b id=b2 post
		buy limit gtc 4@99 acct=a id=b3
		sell limit gtc 3@101 acct=c id=s1
		sell limit gtc 5@103 acct=c id=s2
		sell limit gtc 5@101 acct=c id=s3
		buy limit ioc 1@101 acct=d id=t`)
	s := b.Snapshot()
	var ids []string
	for _, o := range s.Orders {
		ids = append(ids, o.ID)
	}
	if want := []string{"b2", "b1", "b3", "s1", "s3", "s2"}; !slices.Equal(ids, want) {
		t.Errorf("snapshot order %v, want %v", ids, want)
	}
	data, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var decoded Snapshot
	if err := decoded.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(decoded, s) {
		t.Fatalf("decoded %+v\nwant %+v", decoded, s)
	}
	r, err := Restore(decoded)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Snapshot(); !reflect.DeepEqual(got, s) {
		t.Fatalf("restored book's snapshot %+v\nwant %+v", got, s)
	}
	// Restore takes the orders in any order: arrival numbers fix the queues.
	shuffled := Snapshot{Seq: s.Seq, Orders: slices.Clone(s.Orders)}
	slices.Reverse(shuffled.Orders)
	r, err = Restore(shuffled)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Snapshot(); !reflect.DeepEqual(got, s) {
		t.Fatalf("book restored from reversed orders: %+v\nwant %+v", got, s)
	}
	// The empty book.
	var empty Snapshot
	if data, err = New().Snapshot().MarshalBinary(); err != nil {
		t.Fatal(err)
	}
	if err := empty.UnmarshalBinary(data); err != nil || empty.Seq != 0 || len(empty.Orders) != 0 {
		t.Fatalf("empty: %+v, %v", empty, err)
	}
	if r, err := Restore(empty); err != nil || r.Len() != 0 {
		t.Fatalf("restore empty: %v", err)
	}
}

// TestRestoreInvalid checks that Restore refuses every kind of invalid state.
func TestRestoreInvalid(t *testing.T) {
	t.Parallel()
	valid := func() Snapshot {
		return Snapshot{Seq: 3, Orders: []RestingOrder{
			{ID: "b", Account: "a", Side: Buy, Price: 99, Quantity: 5, Remaining: 5, Seq: 1},
			{ID: "s", Account: "a", Side: Sell, Price: 101, Quantity: 5, Remaining: 2, Seq: 2},
			{ID: "s2", Account: "b", Side: Sell, Price: 101, Quantity: 1, Remaining: 1, Seq: 3},
		}}
	}
	if _, err := Restore(valid()); err != nil {
		t.Fatalf("valid snapshot: %v", err)
	}
	tests := []struct {
		name   string
		change func(s *Snapshot)
	}{
		{"empty id", func(s *Snapshot) { s.Orders[0].ID = "" }},
		{"empty account", func(s *Snapshot) { s.Orders[0].Account = "" }},
		{"bad side", func(s *Snapshot) { s.Orders[0].Side = 0 }},
		{"zero price", func(s *Snapshot) { s.Orders[0].Price = 0 }},
		{"zero remaining", func(s *Snapshot) { s.Orders[0].Remaining = 0 }},
		{"remaining above quantity", func(s *Snapshot) { s.Orders[0].Remaining = 6 }},
		{"zero seq", func(s *Snapshot) { s.Orders[0].Seq = 0 }},
		{"seq beyond book", func(s *Snapshot) { s.Orders[0].Seq = 4 }},
		{"repeated seq", func(s *Snapshot) { s.Orders[2].Seq = 2 }},
		{"repeated id", func(s *Snapshot) { s.Orders[2].ID = "s" }},
		{"crossed", func(s *Snapshot) { s.Orders[0].Price = 101 }},
		{"side total overflows", func(s *Snapshot) {
			s.Orders[1].Quantity, s.Orders[1].Remaining = 1<<62, 1<<62
			s.Orders[2].Quantity, s.Orders[2].Remaining = 1<<62, 1<<62
			s.Orders = append(s.Orders, RestingOrder{ID: "s3", Account: "c", Side: Sell, Price: 102, Quantity: 1 << 62, Remaining: 1 << 62, Seq: 3})
			s.Orders[2].Seq, s.Seq = 4, 4
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := valid()
			tt.change(&s)
			if _, err := Restore(s); !errors.Is(err, ErrInvalidSnapshot) {
				t.Errorf("Restore = %v, want ErrInvalidSnapshot", err)
			}
		})
	}
}

// TestUnmarshalInvalid checks that every truncation and corruption of an encoded
// snapshot is an error, never a panic or a silently different snapshot.
func TestUnmarshalInvalid(t *testing.T) {
	t.Parallel()
	b := newBookFrom(t, `
		buy limit gtc 1@99 acct=a id=b1
		sell limit gtc 300@100000 acct=bb id=s1 post`)
	data, err := b.Snapshot().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(data) {
		var s Snapshot
		if err := s.UnmarshalBinary(data[:n]); !errors.Is(err, ErrInvalidSnapshot) {
			t.Errorf("truncated to %d bytes: %v", n, err)
		}
	}
	corrupt := map[string][]byte{
		"magic":    append([]byte("XXOB"), data[4:]...),
		"version":  append(append([]byte("TXOB"), 2), data[5:]...),
		"trailing": append(slices.Clone(data), 0),
		"flags":    slices.Concat(data[:7], []byte{data[7] | 0x80}, data[8:]),
		"count":    slices.Concat(data[:6], []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, data[7:]),
	}
	for name, d := range corrupt {
		var s Snapshot
		if err := s.UnmarshalBinary(d); !errors.Is(err, ErrInvalidSnapshot) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
