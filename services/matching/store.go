package matching

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"

	"github.com/tradex-mesh/tradex/internal/perp"
	"github.com/tradex-mesh/tradex/services/matching/book"
	"github.com/tradex-mesh/tradex/streams"
)

// snapshotVersion is the first byte of an encoded snapshot: 6 holds a
// perpetual order's fee limit and the last funding interval settled; 5 (read still) a perpetual's positions and
// its resting orders' margins; 4
// the resting orders' fees without them; 3 the mark price and the last
// trade price without fees (no resting order charges one); 2 the command
// memory without the prices (the mark starts afresh); 1 no memory.
const snapshotVersion = 6

// snapshotBucket is what the snapshots need of their KV bucket; *streams.KV is one.
type snapshotBucket interface {
	Get(ctx context.Context, key string) (streams.Entry, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
}

// snapshots keeps the latest book snapshot of each instrument in a KV bucket, keyed by
// instrument.
type snapshots struct {
	kv snapshotBucket
}

// openSnapshots opens the catalog's bucket cfg.SnapshotBucket, creating it if need be.
func openSnapshots(ctx context.Context, client *streams.Client, cfg Config) (*snapshots, error) {
	kv, err := client.KV(ctx, cfg.SnapshotBucket)
	if err != nil {
		return nil, fmt.Errorf("open snapshot bucket %s: %w", cfg.SnapshotBucket, err)
	}
	return &snapshots{kv: kv}, nil
}

// load returns the instrument's latest snapshot, or false if it has none.
func (s *snapshots) load(ctx context.Context, inst string) (*instrument, bool, error) {
	e, err := s.kv.Get(ctx, inst)
	if errors.Is(err, streams.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("load snapshot of %s: %w", inst, err)
	}
	st, err := decodeSnapshot(inst, e.Value)
	if err != nil {
		return nil, false, err
	}
	return st, true, nil
}

// save stores st as the instrument's latest snapshot.
func (s *snapshots) save(ctx context.Context, st *instrument) error {
	data, err := encodeSnapshot(st)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, st.id, data); err != nil {
		return fmt.Errorf("save snapshot of %s: %w", st.id, err)
	}
	return nil
}

// encodeSnapshot writes: version, last input sequence, output sequence, price scale,
// quantity scale, scaled flag (uvarints), the command memory, the mark price and the
// last trade price (uvarints), then the book's binary snapshot.
func encodeSnapshot(st *instrument) ([]byte, error) {
	b := []byte{snapshotVersion}
	b = binary.AppendUvarint(b, st.lastInput)
	b = binary.AppendUvarint(b, st.sequence)
	b = binary.AppendUvarint(b, uint64(st.priceScale))    //nolint:gosec // scales are 0..18
	b = binary.AppendUvarint(b, uint64(st.quantityScale)) //nolint:gosec // scales are 0..18
	scaled := uint64(0)
	if st.scaled {
		scaled = 1
	}
	b = binary.AppendUvarint(b, scaled)
	b = st.executed.appendBinary(b)
	mark, _ := st.mark.Price()
	b = binary.AppendUvarint(b, uint64(mark))         //nolint:gosec // a price is not negative
	b = binary.AppendUvarint(b, uint64(st.lastTrade)) //nolint:gosec // a price is not negative
	b = binary.AppendUvarint(b, uint64(len(st.fees)))
	for _, id := range slices.Sorted(maps.Keys(st.fees)) {
		f := st.fees[id]
		b = appendText(b, id)
		b = binary.AppendUvarint(b, uint64(f.maker)) //nolint:gosec // rates are 0 to RateUnit
		b = binary.AppendUvarint(b, uint64(f.taker)) //nolint:gosec // rates are 0 to RateUnit
		b = appendText(b, f.owed.String())
		b = appendText(b, f.charged.String())
		limit := ""
		if f.limit != nil {
			limit = f.limit.String()
		}
		b = appendText(b, limit)
	}
	b = binary.AppendUvarint(b, uint64(len(st.positions)))
	for _, acct := range slices.Sorted(maps.Keys(st.positions)) {
		p := st.positions[acct]
		b = appendText(b, acct)
		b = binary.AppendVarint(b, p.Size)
		b = binary.AppendVarint(b, p.Value)
		b = binary.AppendVarint(b, p.Margin)
	}
	b = binary.AppendUvarint(b, uint64(len(st.perpOrders)))
	for _, id := range slices.Sorted(maps.Keys(st.perpOrders)) {
		o := st.perpOrders[id]
		b = appendText(b, id)
		b = appendText(b, o.account)
		for _, v := range []int64{int64(o.leverage), o.margin, o.quantity, o.filled, o.taken} {
			b = binary.AppendVarint(b, v)
		}
	}
	b = binary.AppendVarint(b, st.mmr)
	b = binary.AppendVarint(b, st.lastFunding)
	out, err := st.book.Snapshot().AppendBinary(b)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot of %s: %w", st.id, err)
	}
	return out, nil
}

// decodeSnapshot reads what encodeSnapshot wrote.
func decodeSnapshot(inst string, data []byte) (*instrument, error) {
	if len(data) == 0 || data[0] < 1 || data[0] > snapshotVersion {
		return nil, fmt.Errorf("%w: %s: unknown version", ErrBadSnapshot, inst)
	}
	rest := data[1:]
	var fields [5]uint64
	for i := range fields {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return nil, fmt.Errorf("%w: %s: truncated header", ErrBadSnapshot, inst)
		}
		fields[i], rest = v, rest[n:]
	}
	if fields[2] > 18 || fields[3] > 18 || fields[4] > 1 {
		return nil, fmt.Errorf("%w: %s: bad header", ErrBadSnapshot, inst)
	}
	var executed commandMemory
	if data[0] >= 2 {
		var err error
		if rest, err = executed.readBinary(rest); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadSnapshot, inst, err)
		}
	}
	var prices [2]uint64 // mark, last trade
	if data[0] >= 3 {
		for i := range prices {
			v, n := binary.Uvarint(rest)
			if n <= 0 || v > math.MaxInt64 {
				return nil, fmt.Errorf("%w: %s: bad mark or last trade price", ErrBadSnapshot, inst)
			}
			prices[i], rest = v, rest[n:]
		}
	}
	fees := map[string]*orderFees{}
	if data[0] >= 4 {
		var err error
		if rest, err = readFees(rest, fees, data[0] >= 6); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadSnapshot, inst, err)
		}
	}
	positions, perpOrders := map[string]perp.Position{}, map[string]*perpOrder{}
	var mmr, lastFunding int64
	if data[0] >= 5 {
		var err error
		if rest, mmr, err = readPerp(rest, positions, perpOrders); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadSnapshot, inst, err)
		}
	}
	if data[0] >= 6 {
		v, n := binary.Varint(rest)
		if n <= 0 {
			return nil, fmt.Errorf("%w: %s: bad last funding", ErrBadSnapshot, inst)
		}
		lastFunding, rest = v, rest[n:]
	}
	var snap book.Snapshot
	if err := snap.UnmarshalBinary(rest); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadSnapshot, inst, err)
	}
	b, err := book.Restore(snap)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadSnapshot, inst, err)
	}
	liq := newLiqIndex()
	liq.rebuild(positions, mmr)
	return &instrument{
		liq: liq, id: inst, book: b, lastInput: fields[0], sequence: fields[1],
		priceScale: int32(fields[2]), quantityScale: int32(fields[3]), scaled: fields[4] == 1, //nolint:gosec // checked above
		executed: executed, mark: perp.MarkAt(int64(prices[0])), lastTrade: int64(prices[1]), //nolint:gosec // checked above
		fees: fees, positions: positions, perpOrders: perpOrders, mmr: mmr, lastFunding: lastFunding,
	}, nil
}

// reader reads what encodeSnapshot wrote, field by field.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("truncated")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("truncated")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) text() string {
	size := r.uvarint()
	if r.err != nil || size > uint64(len(r.b)) {
		r.fail("bad text")
		return ""
	}
	s := string(r.b[:size])
	r.b = r.b[size:]
	return s
}

func (r *reader) fail(why string) {
	if r.err == nil {
		r.err = errors.New(why)
	}
}

// readPerp reads a perpetual's positions and resting orders' margins and
// returns the rest.
func readPerp(b []byte, positions map[string]perp.Position, orders map[string]*perpOrder) ([]byte, int64, error) {
	r := &reader{b: b}
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		acct := r.text()
		p := perp.Position{Size: r.varint(), Value: r.varint(), Margin: r.varint()}
		if r.err == nil && (p.Margin < 0 || (p.Size == 0) != (p.Value == 0) || (p.Size > 0) != (p.Value > 0)) {
			return nil, 0, fmt.Errorf("position of %s is inconsistent: %+v", acct, p)
		}
		positions[acct] = p
	}
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		id, acct := r.text(), r.text()
		o := &perpOrder{account: acct}
		lev := r.varint()
		o.margin, o.quantity, o.filled, o.taken = r.varint(), r.varint(), r.varint(), r.varint()
		if r.err == nil && (lev < 1 || lev > 1<<31-1 || o.margin < 0 || o.quantity <= 0 || o.filled < 0 || o.taken < 0 || o.taken > o.margin) {
			return nil, 0, fmt.Errorf("margin of order %s is inconsistent", id)
		}
		o.leverage = int32(lev) //nolint:gosec // checked above
		orders[id] = o
	}
	mmr := r.varint()
	if r.err == nil && (mmr < 0 || mmr >= perp.RateUnit) {
		return nil, 0, fmt.Errorf("maintenance margin rate %d out of range", mmr)
	}
	if r.err != nil {
		return nil, 0, fmt.Errorf("positions: %w", r.err)
	}
	return r.b, mmr, nil
}

// appendText appends s, its length first.
func appendText(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// readFees reads what encodeSnapshot wrote of the orders' fees into fees
// and returns the rest.
func readFees(b []byte, fees map[string]*orderFees, limits bool) ([]byte, error) {
	r := &reader{b: b}
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		id := r.text()
		f := &orderFees{}
		for _, rate := range []*int64{&f.maker, &f.taker} {
			v := r.uvarint()
			if v > perp.RateUnit {
				return nil, fmt.Errorf("fee rate %d of order %s out of range", v, id)
			}
			*rate = int64(v)
		}
		for _, amount := range []*big.Int{&f.owed, &f.charged} {
			text := r.text()
			if r.err != nil {
				break
			}
			if _, ok := amount.SetString(text, 10); !ok || amount.Sign() < 0 {
				return nil, fmt.Errorf("fees of order %s: %q is no amount", id, text)
			}
		}
		if text := ""; limits {
			text = r.text()
			if text != "" && r.err == nil {
				f.limit = new(big.Int)
				if _, ok := f.limit.SetString(text, 10); !ok || f.limit.Sign() < 0 {
					return nil, fmt.Errorf("fee limit of order %s: %q is no amount", id, text)
				}
			}
		}
		fees[id] = f
	}
	if r.err != nil {
		return nil, fmt.Errorf("fees: %w", r.err)
	}
	return r.b, nil
}
