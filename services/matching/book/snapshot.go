package book

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Snapshot is the whole state of a Book that matters for what it does next: its resting
// orders, with their arrival numbers, and the last arrival number handed out. A book
// restored from a snapshot yields exactly the events the original would have for the
// same commands.
//
// Snapshot is a plain value; MarshalBinary and UnmarshalBinary give it a compact,
// versioned binary form for storage.
type Snapshot struct {
	// Seq is the last arrival number the book handed out.
	Seq uint64
	// Orders are the resting orders. Book.Snapshot lists the bids best first, then the
	// asks best first, each level oldest first; Restore accepts any order, since the
	// arrival numbers fix the queues.
	Orders []RestingOrder
}

// Snapshot returns the book's state. The strings are shared with the book, which never
// changes a string it holds.
func (b *Book) Snapshot() Snapshot {
	s := Snapshot{Seq: b.seq, Orders: make([]RestingOrder, 0, len(b.index))}
	for _, l := range [...]*ladder{&b.bids, &b.asks} {
		for lv := l.best(); lv != nil; lv = lv.next[0] {
			for o := lv.head; o != nil; o = o.next {
				s.Orders = append(s.Orders, o.view())
			}
		}
	}
	return s
}

// Restore returns a book holding the state s describes, sized for at least its orders
// and levels (opts may ask for more). It returns an error wrapping
// ErrInvalidSnapshot if s is not the state of a valid book: an order with an empty id or
// account, a bad side, a price or quantity out of range, an arrival number that is zero,
// repeated or beyond s.Seq, a repeated id, a side whose total overflows, or a crossed
// book.
func Restore(s Snapshot, opts ...Option) (*Book, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	orders := slices.Clone(s.Orders)
	slices.SortFunc(orders, func(a, b RestingOrder) int { return cmp.Compare(a.Seq, b.Seq) })
	b := New(append([]Option{WithCapacity(len(orders)), WithLevelCapacity(levelCount(orders))}, opts...)...)
	b.seq = s.Seq
	for i := range orders {
		r := &orders[i]
		if i > 0 && orders[i-1].Seq == r.Seq {
			return nil, fmt.Errorf("%w: orders %q and %q share seq %d", ErrInvalidSnapshot, orders[i-1].ID, r.ID, r.Seq)
		}
		if _, dup := b.index[r.ID]; dup {
			return nil, fmt.Errorf("%w: order %q appears twice", ErrInvalidSnapshot, r.ID)
		}
		l := b.ladderOf(r.Side)
		if l.total > math.MaxInt64-r.Remaining {
			return nil, fmt.Errorf("%w: %s total overflows", ErrInvalidSnapshot, r.Side)
		}
		o := b.orders.get()
		o.id, o.account, o.side, o.postOnly = r.ID, r.Account, r.Side, r.PostOnly
		o.price, o.quantity, o.remaining, o.seq = r.Price, r.Quantity, r.Remaining, r.Seq
		l.push(l.levelAt(r.Price), o)
		b.index[o.id] = o
	}
	if err := b.Check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSnapshot, err)
	}
	return b, nil
}

// levelCount returns the number of distinct price levels of orders.
func levelCount(orders []RestingOrder) int {
	type key struct {
		side  Side
		price int64
	}
	seen := make(map[key]struct{})
	for _, o := range orders {
		seen[key{o.Side, o.Price}] = struct{}{}
	}
	return len(seen)
}

// validate checks each order of s on its own.
func (s *Snapshot) validate() error {
	for i := range s.Orders {
		r := &s.Orders[i]
		switch {
		case r.ID == "" || r.Account == "":
			return fmt.Errorf("%w: order %d: empty id or account", ErrInvalidSnapshot, i)
		case !r.Side.valid():
			return fmt.Errorf("%w: order %q: side %d", ErrInvalidSnapshot, r.ID, r.Side)
		case r.Price <= 0:
			return fmt.Errorf("%w: order %q: price %d", ErrInvalidSnapshot, r.ID, r.Price)
		case r.Remaining <= 0 || r.Remaining > r.Quantity:
			return fmt.Errorf("%w: order %q: remaining %d of %d", ErrInvalidSnapshot, r.ID, r.Remaining, r.Quantity)
		case r.Seq == 0 || r.Seq > s.Seq:
			return fmt.Errorf("%w: order %q: seq %d, book seq %d", ErrInvalidSnapshot, r.ID, r.Seq, s.Seq)
		}
	}
	return nil
}

// The binary form: the magic "TXOB", a version byte, then uvarints (u) and varints (v):
//
//	u Seq, u len(Orders), then per order:
//	  byte side | postOnly<<2, v Price, v Quantity, v Remaining, u Seq,
//	  u len(ID), ID, u len(Account), Account
const (
	snapshotMagic   = "TXOB"
	snapshotVersion = 1
	flagPostOnly    = 1 << 2
	// minOrderBytes is the smallest encoded order, to bound the count a decoder trusts.
	minOrderBytes = 9
)

// AppendBinary appends the binary form of s to dst (encoding.BinaryAppender). It does
// not validate s; Restore does.
func (s Snapshot) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, snapshotMagic...)
	dst = append(dst, snapshotVersion)
	dst = binary.AppendUvarint(dst, s.Seq)
	dst = binary.AppendUvarint(dst, uint64(len(s.Orders)))
	for i := range s.Orders {
		r := &s.Orders[i]
		flags := byte(r.Side) & 3
		if r.PostOnly {
			flags |= flagPostOnly
		}
		dst = append(dst, flags)
		dst = binary.AppendVarint(dst, r.Price)
		dst = binary.AppendVarint(dst, r.Quantity)
		dst = binary.AppendVarint(dst, r.Remaining)
		dst = binary.AppendUvarint(dst, r.Seq)
		dst = binary.AppendUvarint(dst, uint64(len(r.ID)))
		dst = append(dst, r.ID...)
		dst = binary.AppendUvarint(dst, uint64(len(r.Account)))
		dst = append(dst, r.Account...)
	}
	return dst, nil
}

// MarshalBinary returns the binary form of s (encoding.BinaryMarshaler).
func (s Snapshot) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(nil)
}

// UnmarshalBinary sets s from its binary form (encoding.BinaryUnmarshaler). It returns
// an error wrapping ErrInvalidSnapshot if data is not a complete snapshot of a known
// version; it checks the encoding, not the book (Restore does).
func (s *Snapshot) UnmarshalBinary(data []byte) error {
	d := decoder{data: string(data)} // one copy; every id and account shares it
	if d.bytes(len(snapshotMagic)) != snapshotMagic {
		return fmt.Errorf("%w: bad magic", ErrInvalidSnapshot)
	}
	if v := d.byte(); v != snapshotVersion {
		return fmt.Errorf("%w: version %d", ErrInvalidSnapshot, v)
	}
	seq := d.uvarint()
	n := d.uvarint()
	if d.err || n > d.left()/minOrderBytes {
		return fmt.Errorf("%w: truncated header", ErrInvalidSnapshot)
	}
	orders := make([]RestingOrder, n)
	for i := range orders {
		r := &orders[i]
		flags := d.byte()
		r.Side, r.PostOnly = Side(flags&3), flags&flagPostOnly != 0
		r.Price, r.Quantity, r.Remaining = d.varint(), d.varint(), d.varint()
		r.Seq = d.uvarint()
		r.ID = d.bytes(d.length())
		r.Account = d.bytes(d.length())
		if d.err || flags&^(3|flagPostOnly) != 0 {
			return fmt.Errorf("%w: order %d: truncated or bad flags", ErrInvalidSnapshot, i)
		}
	}
	if d.off != len(d.data) {
		return fmt.Errorf("%w: %d trailing bytes", ErrInvalidSnapshot, len(d.data)-d.off)
	}
	*s = Snapshot{Seq: seq, Orders: orders}
	return nil
}

// decoder reads the binary form; after the first error every read returns zero and err
// stays set.
type decoder struct {
	data string
	off  int
	err  bool
}

func (d *decoder) byte() byte {
	if d.err || d.off >= len(d.data) {
		d.err = true
		return 0
	}
	d.off++
	return d.data[d.off-1]
}

func (d *decoder) bytes(n int) string {
	if d.err || n < 0 || n > len(d.data)-d.off {
		d.err = true
		return ""
	}
	d.off += n
	return d.data[d.off-n : d.off]
}

func (d *decoder) uvarint() uint64 {
	if d.err {
		return 0
	}
	v, n := binary.Uvarint([]byte(d.data[d.off:min(len(d.data), d.off+binary.MaxVarintLen64)]))
	if n <= 0 {
		d.err = true
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// left returns how many bytes are left to read.
func (d *decoder) left() uint64 {
	return uint64(len(d.data) - d.off) //nolint:gosec // off never passes len(data)
}

// length reads a string length, or fails if it exceeds what is left.
func (d *decoder) length() int {
	n := d.uvarint()
	if n > d.left() {
		d.err = true
		return 0
	}
	return int(n) //nolint:gosec // bounded by len(d.data) above
}
