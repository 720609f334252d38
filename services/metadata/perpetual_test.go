package metadata_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/services/metadata"
	"github.com/tradex-mesh/tradex/streams"
)

// perpSpec is BTCUSDT-PERP's spec with the seed's contract rules, written
// the long way round (the service stores the shortest forms).
func perpSpec() metadata.InstrumentSpec {
	return metadata.InstrumentSpec{
		Symbol: "BTCUSDT-PERP", Kind: metadata.KindPerpetual, BaseAsset: "BTC", QuoteAsset: "USDT",
		TickSize: "0.1", LotSize: "0.001", MinNotional: "5", MakerFeeRate: "0.000200", TakerFeeRate: "0.0005",
		Perpetual: &metadata.PerpetualRules{
			MaxLeverage: 50, MaintenanceMarginRate: "0.0050", FundingInterval: 8 * time.Hour,
			FundingRateClamp: "0.007500", ImpactNotional: "10000.00", IndexSymbol: "BTCUSDT",
			InitialMarginRate: "0.9", // derived: a request's is ignored
		},
	}
}

func TestPerpetualRules(t *testing.T) {
	t.Parallel()
	in, err := metadata.NewInstrument(perpSpec(), epoch)
	if err != nil {
		t.Fatal(err)
	}
	want := metadata.PerpetualRules{
		MaxLeverage: 50, InitialMarginRate: "0.02", MaintenanceMarginRate: "0.005", FundingInterval: 8 * time.Hour,
		FundingRateClamp: "0.0075", ImpactNotional: "10000", IndexSymbol: "BTCUSDT",
	}
	if in.Perpetual == nil || *in.Perpetual != want || in.MakerFeeRate != "0.0002" || in.TakerFeeRate != "0.0005" {
		t.Fatalf("NewInstrument: fees %s/%s, rules %+v; want 0.0002/0.0005, %+v", in.MakerFeeRate, in.TakerFeeRate, in.Perpetual, want)
	}
	odd := perpSpec()
	odd.Perpetual.MaxLeverage, odd.Perpetual.MaintenanceMarginRate = 3, "0.3"
	if in, err := metadata.NewInstrument(odd, epoch); err != nil || in.Perpetual.InitialMarginRate != "0.333334" {
		t.Fatalf("max leverage 3: initial margin rate %v, %v; want 0.333334 (rounded up)", in.Perpetual, err)
	}

	for _, tc := range []struct {
		name, field string
		edit        func(*metadata.InstrumentSpec)
	}{
		{"a perpetual without rules", "perpetual", func(s *metadata.InstrumentSpec) { s.Perpetual = nil }},
		{"a spot instrument with rules", "perpetual", func(s *metadata.InstrumentSpec) { s.Kind = metadata.KindSpot }},
		{"leverage 0", "perpetual.max_leverage", func(s *metadata.InstrumentSpec) { s.Perpetual.MaxLeverage = 0 }},
		{"leverage 201", "perpetual.max_leverage", func(s *metadata.InstrumentSpec) { s.Perpetual.MaxLeverage = 201 }},
		{"no maintenance margin", "perpetual.maintenance_margin_rate", func(s *metadata.InstrumentSpec) { s.Perpetual.MaintenanceMarginRate = "0" }},
		{"maintenance at the initial rate", "perpetual.maintenance_margin_rate", func(s *metadata.InstrumentSpec) { s.Perpetual.MaintenanceMarginRate = "0.02" }},
		{"maintenance with 7 digits", "perpetual.maintenance_margin_rate", func(s *metadata.InstrumentSpec) { s.Perpetual.MaintenanceMarginRate = "0.0050001" }},
		{"funding every 30 s", "perpetual.funding_interval", func(s *metadata.InstrumentSpec) { s.Perpetual.FundingInterval = 30 * time.Second }},
		{"funding every 7 h (not a day's divisor)", "perpetual.funding_interval", func(s *metadata.InstrumentSpec) { s.Perpetual.FundingInterval = 7 * time.Hour }},
		{"funding every 2 days", "perpetual.funding_interval", func(s *metadata.InstrumentSpec) { s.Perpetual.FundingInterval = 48 * time.Hour }},
		{"a clamp over 10%", "perpetual.funding_rate_clamp", func(s *metadata.InstrumentSpec) { s.Perpetual.FundingRateClamp = "0.11" }},
		{"a negative clamp", "perpetual.funding_rate_clamp", func(s *metadata.InstrumentSpec) { s.Perpetual.FundingRateClamp = "-0.01" }},
		{"no impact notional", "perpetual.impact_notional", func(s *metadata.InstrumentSpec) { s.Perpetual.ImpactNotional = "" }},
		{"an impact notional past the notional scale", "perpetual.impact_notional", func(s *metadata.InstrumentSpec) { s.Perpetual.ImpactNotional = "1.00001" }},
		{"itself as its index", "perpetual.index_symbol", func(s *metadata.InstrumentSpec) { s.Perpetual.IndexSymbol = "BTCUSDT-PERP" }},
		{"an index that is no symbol", "perpetual.index_symbol", func(s *metadata.InstrumentSpec) { s.Perpetual.IndexSymbol = "btc usdt" }},
		{"a negative maker fee", "maker_fee_rate", func(s *metadata.InstrumentSpec) { s.MakerFeeRate = "-0.0001" }},
		{"a taker fee over 10%", "taker_fee_rate", func(s *metadata.InstrumentSpec) { s.TakerFeeRate = "0.2" }},
		{"a fee with 7 digits", "taker_fee_rate", func(s *metadata.InstrumentSpec) { s.TakerFeeRate = "0.0000001" }},
	} {
		s := perpSpec()
		tc.edit(&s)
		_, err := metadata.NewInstrument(s, epoch)
		var fe *metadata.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, metadata.ErrInvalidArgument) {
			t.Errorf("%s: %v, want an InvalidArgument naming %s", tc.name, err, tc.field)
		}
	}

	// An update replaces the rules as a whole, and names what changed.
	rules := *in.Perpetual
	rules.MaxLeverage = 20
	fee := "0.0001"
	next, changed, err := in.Update(metadata.InstrumentChange{Perpetual: &rules, MakerFeeRate: &fee}, epoch.Add(time.Hour))
	if err != nil || next.Perpetual.InitialMarginRate != "0.05" || next.MakerFeeRate != "0.0001" || strings.Join(changed, ",") != "maker_fee_rate,perpetual" {
		t.Fatalf("Update: %+v %v, %v", next.Perpetual, changed, err)
	}
	if in.Perpetual.MaxLeverage != 50 {
		t.Fatal("Update changed the instrument it was called on")
	}
}

// The service checks the index against the instruments it has, and serves
// and publishes the rules.
func TestPerpetualIndexAndRulesOverConnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.start(t)
	req := func(index string) *metadatav1.CreateInstrumentRequest {
		return &metadatav1.CreateInstrumentRequest{
			Symbol: "ETHUSDT-PERP", Kind: commonv1.InstrumentKind_INSTRUMENT_KIND_PERPETUAL, BaseAsset: "ETH", QuoteAsset: "USDT",
			TickSize: "0.01", LotSize: "0.001", PriceScale: 2, QuantityScale: 3, TakerFeeRate: "0.0004",
			Perpetual: &metadatav1.PerpetualRules{
				MaxLeverage: 20, MaintenanceMarginRate: "0.01", FundingInterval: durationpb.New(4 * time.Hour),
				FundingRateClamp: "0.005", ImpactNotional: "5000", IndexSymbol: index,
			},
		}
	}
	for _, tc := range []struct{ index, want string }{
		{"SOLUSDT", "perpetual.index_symbol: no instrument SOLUSDT"},
		{"BTCUSDT", "perpetual.index_symbol: BTCUSDT must be a spot instrument of ETH/USDT"},
		{"BTCUSDT-PERP", "perpetual.index_symbol: BTCUSDT-PERP must be a spot instrument of ETH/USDT"},
	} {
		_, err := r.client.CreateInstrument(t.Context(), req(tc.index))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("index %s: %v, want %q", tc.index, err, tc.want)
		}
	}
	res, err := r.client.CreateInstrument(t.Context(), req("ETHUSDT"))
	if err != nil {
		t.Fatal(err)
	}
	got := res.GetInstrument()
	if p := got.GetPerpetual(); p.GetInitialMarginRate() != "0.05" || p.GetFundingInterval().AsDuration() != 4*time.Hour ||
		got.GetTakerFeeRate() != "0.0004" || got.GetMakerFeeRate() != "0" {
		t.Fatalf("created %v", got)
	}
	read, err := r.client.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: "ETHUSDT-PERP"})
	if err != nil || !proto.Equal(read.GetInstrument(), got) {
		t.Fatalf("GetInstrument: %v, %v; want %v", read.GetInstrument(), err, got)
	}
	_, err = r.client.UpdateInstrument(t.Context(), &metadatav1.UpdateInstrumentRequest{Symbol: "BTCUSDT", Perpetual: got.GetPerpetual()})
	if err == nil || !strings.Contains(err.Error(), "perpetual: only a perpetual has contract rules") {
		t.Fatalf("rules on a spot instrument: %v", err)
	}
}

// A perpetual stored before instruments had contract rules gets the
// seed's at the next start, announced as an update of "perpetual"; one with
// rules keeps its own.
func TestSeedGivesAStoredPerpetualItsRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	updated := collect[*metadatav1.InstrumentUpdated](t, e.js, streams.TopicInstrumentUpdated)
	first := e.start(t)
	first.stop()
	instruments, err := e.js.KeyValue(t.Context(), "tradex_instruments")
	if err != nil {
		t.Fatal(err)
	}
	entry, err := instruments.Get(t.Context(), "BTCUSDT-PERP")
	if err != nil {
		t.Fatal(err)
	}
	old := &metadatav1.Instrument{}
	if err := proto.Unmarshal(entry.Value(), old); err != nil {
		t.Fatal(err)
	}
	old.Perpetual, old.MakerFeeRate, old.TakerFeeRate = nil, "", "" // as an older version stored it
	put(t, instruments, "BTCUSDT-PERP", old)

	second := e.start(t)
	u := updated.wait(t, 1)[0]
	if u.Key != "BTCUSDT-PERP" || strings.Join(u.Payload.GetChangedFields().GetPaths(), ",") != "perpetual" ||
		u.Payload.GetInstrument().GetPerpetual().GetMaxLeverage() != 50 || u.Payload.GetReason() != "contract rules seeded" {
		t.Fatalf("update %s: %v", u.ID, u.Payload)
	}
	if !strings.Contains(second.logs.String(), "contract rules seeded") {
		t.Fatalf("no log of the seeded rules:\n%s", second.logs)
	}
	second.stop()
	third := e.start(t)
	res, err := third.client.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: "BTCUSDT-PERP"})
	if err != nil || res.GetInstrument().GetRevision() != old.GetRevision()+1 {
		t.Fatalf("after another start: %v, %v; want revision %d (seeded once)", res.GetInstrument(), err, old.GetRevision()+1)
	}
}
