package metadata_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tradex-mesh/tradex/services/metadata"
)

func spec() metadata.InstrumentSpec {
	return metadata.InstrumentSpec{
		Symbol: "BTCUSDT", Kind: metadata.KindSpot, BaseAsset: "BTC", QuoteAsset: "USDT",
		TickSize: "0.01", LotSize: "0.00001", MinNotional: "5",
	}
}

func TestNewInstrument(t *testing.T) {
	t.Parallel()
	in, err := metadata.NewInstrument(spec(), epoch)
	if err != nil {
		t.Fatal(err)
	}
	want := metadata.Instrument{
		Symbol: "BTCUSDT", Kind: metadata.KindSpot, BaseAsset: "BTC", QuoteAsset: "USDT",
		TickSize: "0.01", LotSize: "0.00001", MinQuantity: "0.00001", MinNotional: "5",
		PriceScale: 2, QuantityScale: 5, Status: metadata.StatusTrading,
		CreatedAt: epoch, UpdatedAt: epoch, Revision: 1, MakerFeeRate: "0", TakerFeeRate: "0",
	}
	if in != want {
		t.Fatalf("NewInstrument =\n%+v\nwant\n%+v", in, want)
	}
	if in.NotionalScale() != 7 {
		t.Fatalf("notional scale %d", in.NotionalScale())
	}

	s := spec()
	s.TickSize, s.PriceScale, s.MinNotional, s.StartHalted = "0.50", 4, "", true
	in, err = metadata.NewInstrument(s, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if in.TickSize != "0.5" || in.PriceScale != 4 || in.MinNotional != "0" || in.Status != metadata.StatusHalted {
		t.Fatalf("NewInstrument = %+v", in)
	}

	s = spec()
	s.TickSize = "0." + strings.Repeat("0", 18) + "1" // 19 digits, no scale given
	_, err = metadata.NewInstrument(s, epoch)
	var fe *metadata.FieldError
	if !errors.As(err, &fe) || fe.Field != "tick_size" || !errors.Is(err, metadata.ErrInvalidArgument) {
		t.Fatalf("19-digit tick: %v, want a tick_size FieldError", err)
	}
}

func TestInstrumentUpdate(t *testing.T) {
	t.Parallel()
	in, err := metadata.NewInstrument(spec(), epoch)
	if err != nil {
		t.Fatal(err)
	}
	later := epoch.Add(time.Hour)
	str := func(s string) *string { return &s }

	next, changed, err := in.Update(metadata.InstrumentChange{TickSize: str("0.1"), MinQuantity: str("0.0001")}, later)
	if err != nil {
		t.Fatal(err)
	}
	if next.TickSize != "0.1" || next.MinQuantity != "0.0001" || next.Revision != 2 || next.UpdatedAt != later || next.CreatedAt != epoch ||
		strings.Join(changed, ",") != "tick_size,min_quantity" {
		t.Fatalf("Update = %+v, %v", next, changed)
	}

	same, changed, err := in.Update(metadata.InstrumentChange{TickSize: str("0.01"), MinNotional: str("5.00")}, later)
	if err != nil || same != in || changed != nil {
		t.Fatalf("Update to the same value = %+v, %v, %v; want no change", same, changed, err)
	}

	_, _, err = in.Update(metadata.InstrumentChange{MinNotional: str("-1")}, later)
	var fe *metadata.FieldError
	if !errors.As(err, &fe) || fe.Field != "min_notional" {
		t.Fatalf("negative min notional: %v", err)
	}

	halted, changed, err := in.Halt("audit", later)
	if err != nil || halted.Status != metadata.StatusHalted || halted.StatusReason != "audit" || strings.Join(changed, ",") != "status,status_reason" {
		t.Fatalf("Halt = %+v, %v, %v", halted, changed, err)
	}
	again, changed, err := halted.Halt("again", later)
	if err != nil || again != halted || changed != nil {
		t.Fatalf("Halt twice = %+v, %v, %v", again, changed, err)
	}
	resumed, changed, err := halted.Resume("ok", later)
	if err != nil || resumed.Status != metadata.StatusTrading || resumed.StatusReason != "" || resumed.Revision != 3 || len(changed) != 2 {
		t.Fatalf("Resume = %+v, %v, %v", resumed, changed, err)
	}
}

func TestCheckRevision(t *testing.T) {
	t.Parallel()
	three := uint64(3)
	if err := metadata.CheckRevision("x", 3, nil); err != nil {
		t.Fatal(err)
	}
	if err := metadata.CheckRevision("x", 3, &three); err != nil {
		t.Fatal(err)
	}
	if err := metadata.CheckRevision("x", 4, &three); !errors.Is(err, metadata.ErrRevisionMismatch) {
		t.Fatalf("CheckRevision = %v", err)
	}
}

func TestValidateConfigKey(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"a", "risk.max_order_notional", "gateway.rate-limit.rps", "x1.y2.z3", strings.Repeat("a", 128)} {
		if err := metadata.ValidateConfigKey(key); err != nil {
			t.Errorf("ValidateConfigKey(%q) = %v", key, err)
		}
	}
	for _, key := range []string{"", "A", "a..b", ".a", "a.", "a b", "a:b", "a*", "a>", "a/b", "é", strings.Repeat("a", 129)} {
		if err := metadata.ValidateConfigKey(key); err == nil {
			t.Errorf("ValidateConfigKey(%q) accepted", key)
		}
	}
}

func TestConfigTopicKey(t *testing.T) {
	t.Parallel()
	if got := metadata.ConfigTopicKey("risk.max_order_notional"); got != "risk:max_order_notional" {
		t.Fatalf("ConfigTopicKey = %q", got)
	}
	if got := metadata.ConfigTopicKey("plain"); got != "plain" {
		t.Fatalf("ConfigTopicKey = %q", got)
	}
}

func TestEventIDs(t *testing.T) {
	t.Parallel()
	if got := metadata.InstrumentEventID("BTCUSDT-PERP", 12); got != "instrument:BTCUSDT-PERP:12" {
		t.Fatalf("InstrumentEventID = %q", got)
	}
	if got := metadata.ConfigEventID("risk.max", 7); got != "config:risk.max:7" {
		t.Fatalf("ConfigEventID = %q", got)
	}
}

func TestKindAndStatusNames(t *testing.T) {
	t.Parallel()
	got := []string{metadata.KindSpot.String(), metadata.KindPerpetual.String(), metadata.Kind(9).String(),
		metadata.StatusTrading.String(), metadata.StatusHalted.String(), metadata.Status(9).String()}
	if strings.Join(got, ",") != "spot,perpetual,Kind(9),trading,halted,Status(9)" {
		t.Fatalf("names %v", got)
	}
}
