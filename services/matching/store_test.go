package matching

import (
	"encoding/binary"
	"errors"
	"maps"
	"testing"

	"github.com/tradex-mesh/tradex/internal/perp"
)

// A snapshot keeps the instrument's state, its mark price and last trade
// among it; a version 2 snapshot (before marks) still reads, its mark
// starting afresh.
func TestSnapshotEncoding(t *testing.T) {
	t.Parallel()
	st := newInstrument("BTCUSDT")
	for i, cmd := range []struct{ side, price string }{{"sell", "101"}, {"buy", "101"}, {"buy", "99"}} {
		side := buy
		if cmd.side == "sell" {
			side = sell
		}
		st.apply(input{sequence: uint64(10 + i), cmd: submit("BTCUSDT", cmd.side+cmd.price+string(rune('a'+i)), "acc"+string(rune('a'+i)), side, limit, gtc, cmd.price, "1")})
	}
	st.positions["alice"], st.positions["bob"] = perp.Position{Size: -3, Value: -30303, Margin: 101}, perp.Position{Size: 3, Value: 30303, Margin: 99}
	st.perpOrders["resting-a"] = &perpOrder{account: "alice", leverage: 20, margin: 500, quantity: 7, filled: 2, taken: 142}
	st.fees["resting-a"], st.fees["resting-b"] = &orderFees{maker: 200, taker: 500}, &orderFees{taker: 1}
	st.fees["resting-a"].charge(10100, 3, 200)
	mark, ok := st.mark.Price()
	if !ok || st.lastTrade != 10100 {
		t.Fatalf("before: mark %d (%t), last trade %d", mark, ok, st.lastTrade)
	}
	data, err := encodeSnapshot(st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot("BTCUSDT", data)
	if err != nil {
		t.Fatal(err)
	}
	if got.mark != st.mark || got.lastTrade != st.lastTrade || got.lastInput != 12 || got.sequence != st.sequence ||
		!maps.Equal(got.positions, st.positions) ||
		!maps.EqualFunc(got.perpOrders, st.perpOrders, func(a, b *perpOrder) bool { return *a == *b }) ||
		!maps.EqualFunc(got.fees, st.fees, func(a, b *orderFees) bool {
			return a.maker == b.maker && a.taker == b.taker && a.owed.Cmp(&b.owed) == 0 && a.charged.Cmp(&b.charged) == 0
		}) ||
		got.priceScale != 2 || got.quantityScale != 5 || got.book.Len() != 1 {
		t.Fatalf("decoded %+v, want the state encoded", got)
	}

	// By hand: a version, the header, the memory, the prices (from version
	// 3), the book.
	encode := func(version byte, prices ...uint64) []byte {
		b := []byte{version}
		for _, v := range []uint64{12, st.sequence, 2, 5, 1} {
			b = binary.AppendUvarint(b, v)
		}
		b = st.executed.appendBinary(b)
		for _, p := range prices {
			b = binary.AppendUvarint(b, p)
		}
		b, err := st.book.Snapshot().AppendBinary(b)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if v3, err := decodeSnapshot("BTCUSDT", encode(3, 10094, 10100)); err != nil || len(v3.fees) != 0 || v3.fees == nil || v3.lastTrade != 10100 {
		t.Fatalf("version 3: %+v, %v; want no fee rates and the prices", v3, err)
	}
	old, err := decodeSnapshot("BTCUSDT", encode(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := old.mark.Price(); ok || old.lastTrade != 0 || old.book.Len() != 1 || old.lastInput != 12 {
		t.Fatalf("version 2 decoded %+v, want no mark and the book", old)
	}
	for name, bad := range map[string][]byte{
		"unknown version":         encode(snapshotVersion+1, 1, 1),
		"v5 without its sections": encode(5, 1, 1),
		"a mark past int64":       encode(3, 1<<63, 1),
		"no prices":               encode(3),
	} {
		if _, err := decodeSnapshot("BTCUSDT", bad); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: %v, want ErrBadSnapshot", name, err)
		}
	}
}
