package instruments_test

import (
	"errors"
	"testing"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/internal/instruments"
)

// btcusdt has the seeded BTCUSDT rules: tick 0.01, lot 0.00001, minimum
// value 5 USDT.
func btcusdt(t *testing.T) instruments.Rules {
	t.Helper()
	r, err := instruments.NewRules(&metadatav1.Instrument{
		Symbol: "BTCUSDT", TickSize: "0.01", LotSize: "0.00001", MinQuantity: "0.0001", MinNotional: "5",
		PriceScale: 2, QuantityScale: 5, Status: commonv1.InstrumentStatus_INSTRUMENT_STATUS_TRADING, Revision: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNewRules(t *testing.T) {
	t.Parallel()
	r := btcusdt(t)
	want := instruments.Rules{Symbol: "BTCUSDT", Trading: true, PriceScale: 2, QuantityScale: 5,
		TickSize: 1, LotSize: 1, MinQuantity: 10, MinNotional: 50000000, Revision: 4}
	if r != want || r.NotionalScale() != 7 {
		t.Fatalf("NewRules = %+v, want %+v", r, want)
	}
	for _, bad := range []*metadatav1.Instrument{
		{Symbol: "X", TickSize: "0.001", LotSize: "1", MinQuantity: "1", MinNotional: "0", PriceScale: 2},
		{Symbol: "X", TickSize: "0", LotSize: "1", MinQuantity: "1", MinNotional: "0", PriceScale: 2},
		{Symbol: "X", TickSize: "1", LotSize: "-1", MinQuantity: "1", MinNotional: "0"},
	} {
		if _, err := instruments.NewRules(bad); err == nil {
			t.Errorf("NewRules(%v) accepted", bad)
		}
	}
}

func TestRulesChecks(t *testing.T) {
	t.Parallel()
	r := btcusdt(t)
	price := func(s string) int64 {
		v, err := r.ParsePrice(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	qty := func(s string) int64 {
		v, err := r.ParseQuantity(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"price on tick", r.CheckPrice(price("50000.01")), nil},
		{"price zero", r.CheckPrice(0), instruments.ErrPriceTick},
		{"quantity on lot", r.CheckQuantity(qty("10.5")), nil},
		{"quantity below minimum", r.CheckQuantity(qty("0.00005")), instruments.ErrMinQuantity},
		{"quantity negative", r.CheckQuantity(-1), instruments.ErrQuantityLot},
		{"notional enough", r.CheckNotional(price("50000"), qty("0.0001")), nil},
		{"notional too small", r.CheckNotional(price("40000"), qty("0.0001")), instruments.ErrMinNotional},
		{"notional overflow", r.CheckNotional(1<<62, 1<<62), decimal.ErrRange},
		{"trading", r.CheckTrading(), nil},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) || (tt.want == nil && tt.err != nil) {
			t.Errorf("%s: %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if _, err := r.ParsePrice("1.001"); !errors.Is(err, decimal.ErrPrecision) {
		t.Errorf("ParsePrice beyond the scale: %v", err)
	}
	if _, err := r.ParseQuantity("x"); !errors.Is(err, decimal.ErrSyntax) {
		t.Errorf("ParseQuantity garbage: %v", err)
	}

	// With a coarser tick and lot, off-grid values fail.
	coarse, err := instruments.NewRules(&metadatav1.Instrument{
		Symbol: "BTCUSDT-PERP", TickSize: "0.5", LotSize: "0.01", MinQuantity: "0.01", MinNotional: "0", PriceScale: 1, QuantityScale: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := coarse.CheckPrice(1001); !errors.Is(err, instruments.ErrPriceTick) {
		t.Errorf("100.1 on tick 0.5: %v", err)
	}
	if err := coarse.CheckQuantity(15); !errors.Is(err, instruments.ErrQuantityLot) {
		t.Errorf("0.015 on lot 0.01: %v", err)
	}
	if err := coarse.CheckTrading(); !errors.Is(err, instruments.ErrHalted) {
		t.Errorf("an instrument without trading status: %v", err)
	}
}
