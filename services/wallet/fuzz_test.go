package wallet

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
)

// noHeader is a journal message without headers.
type noHeader struct{}

func (noHeader) Get(string) string { return "" }

// FuzzDecodeEntry: whatever bytes a journal message holds, decoding it
// gives an entry or an error wrapping ErrCorruptJournal (the rebuild
// stops and says where), never a panic.
func FuzzDecodeEntry(f *testing.F) {
	good, err := proto.Marshal(&walletv1.BalanceChanged{EventId: "e1", AccountId: "alice", Asset: "USDT",
		Available: "100", Held: "0", AvailableDelta: "100", HeldDelta: "0"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff})
	bad, err := proto.Marshal(&walletv1.BalanceChanged{Available: "1e9", Held: "-x"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bad)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := decodeEntry(data, noHeader{}, 1, func(string) int32 { return 8 })
		if err != nil && !errors.Is(err, ErrCorruptJournal) {
			t.Fatalf("decodeEntry(%x) = %v, want ErrCorruptJournal", data, err)
		}
	})
}
