package metadata_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	"github.com/tradex-mesh/tradex/services/metadata"
	"github.com/tradex-mesh/tradex/streams"
)

func TestGetInstrument(t *testing.T) {
	t.Parallel()
	r := newEnv(t).start(t)
	res, err := r.client.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: "BTCUSDT-PERP"})
	if err != nil {
		t.Fatal(err)
	}
	if in := res.GetInstrument(); in.GetSymbol() != "BTCUSDT-PERP" || in.GetKind() != commonv1.InstrumentKind_INSTRUMENT_KIND_PERPETUAL {
		t.Fatalf("GetInstrument = %v", in)
	}
	_, err = r.client.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: "DOGEUSDT"})
	if ce := codeErr(t, err, connect.CodeNotFound); !strings.Contains(ce.Message(), "DOGEUSDT") {
		t.Fatalf("NotFound message %q does not name the symbol", ce.Message())
	}
	_, err = r.client.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: "btc.usdt"})
	wantInvalid(t, err, "symbol")
	_, err = r.client.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{})
	wantInvalid(t, err, "symbol")
}

func TestListInstruments(t *testing.T) {
	t.Parallel()
	r := newEnv(t).start(t)
	if _, err := r.client.HaltInstrument(t.Context(), &metadatav1.HaltInstrumentRequest{Symbol: "ETHUSDT"}); err != nil {
		t.Fatal(err)
	}
	symbols := func(res *metadatav1.ListInstrumentsResponse) string {
		var s []string
		for _, in := range res.GetInstruments() {
			s = append(s, in.GetSymbol())
		}
		return strings.Join(s, ",")
	}
	tests := []struct {
		name string
		req  *metadatav1.ListInstrumentsRequest
		want string
	}{
		{"all", &metadatav1.ListInstrumentsRequest{}, "BTCUSDT,BTCUSDT-PERP,ETHUSDT"},
		{"perpetual", &metadatav1.ListInstrumentsRequest{Kind: commonv1.InstrumentKind_INSTRUMENT_KIND_PERPETUAL}, "BTCUSDT-PERP"},
		{"spot", &metadatav1.ListInstrumentsRequest{Kind: commonv1.InstrumentKind_INSTRUMENT_KIND_SPOT}, "BTCUSDT,ETHUSDT"},
		{"halted", &metadatav1.ListInstrumentsRequest{Status: commonv1.InstrumentStatus_INSTRUMENT_STATUS_HALTED}, "ETHUSDT"},
		{"trading", &metadatav1.ListInstrumentsRequest{Status: commonv1.InstrumentStatus_INSTRUMENT_STATUS_TRADING}, "BTCUSDT,BTCUSDT-PERP"},
		{"base", &metadatav1.ListInstrumentsRequest{BaseAsset: "BTC"}, "BTCUSDT,BTCUSDT-PERP"},
		{"quote", &metadatav1.ListInstrumentsRequest{QuoteAsset: "EUR"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := r.client.ListInstruments(t.Context(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := symbols(res); got != tt.want {
				t.Fatalf("ListInstruments = %q, want %q", got, tt.want)
			}
			if res.GetPage().GetNextPageToken() != "" {
				t.Fatalf("a single page has next token %q", res.GetPage().GetNextPageToken())
			}
		})
	}

	t.Run("paging", func(t *testing.T) {
		t.Parallel()
		var pages []string
		req := &metadatav1.ListInstrumentsRequest{Page: &commonv1.PageRequest{PageSize: 2}}
		for {
			res, err := r.client.ListInstruments(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, symbols(res))
			if res.GetPage().GetNextPageToken() == "" {
				break
			}
			req.Page.PageToken = res.GetPage().GetNextPageToken()
		}
		if got := strings.Join(pages, " | "); got != "BTCUSDT,BTCUSDT-PERP | ETHUSDT" {
			t.Fatalf("pages %q", got)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		t.Parallel()
		_, err := r.client.ListInstruments(t.Context(), &metadatav1.ListInstrumentsRequest{Page: &commonv1.PageRequest{PageSize: -1}})
		wantInvalid(t, err, "page.page_size")
		_, err = r.client.ListInstruments(t.Context(), &metadatav1.ListInstrumentsRequest{Page: &commonv1.PageRequest{PageToken: "garbage!"}})
		wantInvalid(t, err, "page.page_token")
		cfg, err := r.client.ListConfig(t.Context(), &metadatav1.ListConfigRequest{Page: &commonv1.PageRequest{PageSize: 1}})
		if err != nil {
			t.Fatal(err)
		}
		if tok := cfg.GetPage().GetNextPageToken(); tok != "" {
			t.Fatalf("empty config list has a next page %q", tok)
		}
		_, err = r.client.ListInstruments(t.Context(), &metadatav1.ListInstrumentsRequest{Kind: commonv1.InstrumentKind(42)})
		wantInvalid(t, err, "kind")
		_, err = r.client.ListInstruments(t.Context(), &metadatav1.ListInstrumentsRequest{Status: commonv1.InstrumentStatus(42)})
		wantInvalid(t, err, "status")
	})
}

// solUSDT is a valid create request.
func solUSDT() *metadatav1.CreateInstrumentRequest {
	return &metadatav1.CreateInstrumentRequest{
		Symbol: "SOLUSDT", Kind: commonv1.InstrumentKind_INSTRUMENT_KIND_SPOT, BaseAsset: "SOL", QuoteAsset: "USDT",
		TickSize: "0.010", LotSize: "0.01", MinNotional: "1.5", PriceScale: 3,
	}
}

func TestCreateInstrument(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	created := collect[*metadatav1.InstrumentCreated](t, e.js, streams.TopicInstrumentCreated)
	r := e.start(t, func(c *metadata.Config, d *metadata.Deps) {
		d.Actor = func(context.Context) string { return "admin-7" }
	})
	r.clock.Advance(time.Hour)

	res, err := r.client.CreateInstrument(t.Context(), solUSDT())
	if err != nil {
		t.Fatal(err)
	}
	in := res.GetInstrument()
	// Decimals in their shortest form; quantity_scale taken from lot_size;
	// min_quantity defaults to lot_size.
	if in.GetTickSize() != "0.01" || in.GetLotSize() != "0.01" || in.GetMinQuantity() != "0.01" || in.GetMinNotional() != "1.5" ||
		in.GetPriceScale() != 3 || in.GetQuantityScale() != 2 || in.GetRevision() != 1 ||
		in.GetStatus() != commonv1.InstrumentStatus_INSTRUMENT_STATUS_TRADING || !in.GetCreatedAt().AsTime().Equal(epoch.Add(time.Hour)) {
		t.Fatalf("created %v", in)
	}
	got, err := r.client.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: "SOLUSDT"})
	if err != nil || !proto.Equal(got.GetInstrument(), in) {
		t.Fatalf("GetInstrument = %v, %v; want %v", got, err, in)
	}

	msgs := created.wait(t, 4) // three seeded, then SOLUSDT
	i := slices.IndexFunc(msgs, func(m *streams.Message[*metadatav1.InstrumentCreated]) bool { return m.Key == "SOLUSDT" })
	if i < 0 {
		t.Fatal("no created event for SOLUSDT")
	}
	m := msgs[i]
	if m.ID != "instrument:SOLUSDT:1" || m.Subject != "md.instrument.created.v1.SOLUSDT" ||
		!proto.Equal(m.Payload.GetInstrument(), in) || m.Payload.GetActor() != "admin-7" {
		t.Fatalf("event %s on %s: %v", m.ID, m.Subject, m.Payload)
	}

	_, err = r.client.CreateInstrument(t.Context(), solUSDT())
	wantCode(t, err, connect.CodeAlreadyExists)
	_, err = r.client.CreateInstrument(t.Context(), &metadatav1.CreateInstrumentRequest{
		Symbol: "BTCUSDT", Kind: commonv1.InstrumentKind_INSTRUMENT_KIND_SPOT, BaseAsset: "BTC", QuoteAsset: "USDT", TickSize: "1", LotSize: "1",
	})
	wantCode(t, err, connect.CodeAlreadyExists)

	halted := solUSDT()
	halted.Symbol, halted.StartHalted = "SOLUSDC", true
	halted.QuoteAsset = "USDC"
	res, err = r.client.CreateInstrument(t.Context(), halted)
	if err != nil || res.GetInstrument().GetStatus() != commonv1.InstrumentStatus_INSTRUMENT_STATUS_HALTED {
		t.Fatalf("start halted: %v, %v", res, err)
	}
	if n := created.wait(t, 5); n[4].Payload.GetInstrument().GetStatus() != commonv1.InstrumentStatus_INSTRUMENT_STATUS_HALTED {
		t.Fatalf("created event of a halted instrument: %v", n[4].Payload)
	}
}

func TestCreateInstrumentInvalid(t *testing.T) {
	t.Parallel()
	r := newEnv(t).start(t)
	tests := []struct {
		name  string
		edit  func(*metadatav1.CreateInstrumentRequest)
		field string
	}{
		{"empty symbol", func(r *metadatav1.CreateInstrumentRequest) { r.Symbol = "" }, "symbol"},
		{"lower-case symbol", func(r *metadatav1.CreateInstrumentRequest) { r.Symbol = "solusdt" }, "symbol"},
		{"symbol with a dot", func(r *metadatav1.CreateInstrumentRequest) { r.Symbol = "SOL.USDT" }, "symbol"},
		{"symbol with a space", func(r *metadatav1.CreateInstrumentRequest) { r.Symbol = "SOL USDT" }, "symbol"},
		{"symbol with a wildcard", func(r *metadatav1.CreateInstrumentRequest) { r.Symbol = "SOL*" }, "symbol"},
		{"symbol ending in a dash", func(r *metadatav1.CreateInstrumentRequest) { r.Symbol = "SOL-" }, "symbol"},
		{"long symbol", func(r *metadatav1.CreateInstrumentRequest) { r.Symbol = strings.Repeat("A", 33) }, "symbol"},
		{"no kind", func(r *metadatav1.CreateInstrumentRequest) { r.Kind = 0 }, "kind"},
		{"unknown kind", func(r *metadatav1.CreateInstrumentRequest) { r.Kind = 9 }, "kind"},
		{"no base", func(r *metadatav1.CreateInstrumentRequest) { r.BaseAsset = "" }, "base_asset"},
		{"lower-case quote", func(r *metadatav1.CreateInstrumentRequest) { r.QuoteAsset = "usdt" }, "quote_asset"},
		{"same assets", func(r *metadatav1.CreateInstrumentRequest) { r.QuoteAsset = "SOL" }, "quote_asset"},
		{"tick beyond scale", func(r *metadatav1.CreateInstrumentRequest) { r.TickSize = "0.0001" }, "tick_size"},
		{"tick zero", func(r *metadatav1.CreateInstrumentRequest) { r.TickSize = "0" }, "tick_size"},
		{"tick negative", func(r *metadatav1.CreateInstrumentRequest) { r.TickSize = "-0.01" }, "tick_size"},
		{"tick exponent", func(r *metadatav1.CreateInstrumentRequest) { r.TickSize = "1e-2" }, "tick_size"},
		{"tick empty", func(r *metadatav1.CreateInstrumentRequest) { r.TickSize = "" }, "tick_size"},
		{"lot garbage", func(r *metadatav1.CreateInstrumentRequest) { r.LotSize = "abc" }, "lot_size"},
		{"min quantity below lot", func(r *metadatav1.CreateInstrumentRequest) {
			r.LotSize, r.QuantityScale, r.MinQuantity = "0.1", 2, "0.05"
		}, "min_quantity"},
		{"min quantity beyond scale", func(r *metadatav1.CreateInstrumentRequest) { r.LotSize, r.MinQuantity = "0.1", "0.05" }, "min_quantity"},
		{"min quantity off lot", func(r *metadatav1.CreateInstrumentRequest) {
			r.LotSize, r.QuantityScale, r.MinQuantity = "0.1", 2, "0.15"
		}, "min_quantity"},
		{"min notional negative", func(r *metadatav1.CreateInstrumentRequest) { r.MinNotional = "-1" }, "min_notional"},
		{"min notional beyond scale", func(r *metadatav1.CreateInstrumentRequest) { r.MinNotional = "0.000001" }, "min_notional"},
		{"price scale", func(r *metadatav1.CreateInstrumentRequest) { r.PriceScale = 19 }, "price_scale"},
		{"negative scale", func(r *metadatav1.CreateInstrumentRequest) { r.QuantityScale = -1 }, "quantity_scale"},
		{"scales too large together", func(r *metadatav1.CreateInstrumentRequest) { r.PriceScale, r.QuantityScale = 10, 9 }, "quantity_scale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := solUSDT()
			tt.edit(req)
			_, err := r.client.CreateInstrument(t.Context(), req)
			wantInvalid(t, err, tt.field)
		})
	}
}

func TestCreateInstrumentPrecisionErrorSaysSo(t *testing.T) {
	t.Parallel()
	r := newEnv(t).start(t)
	req := solUSDT()
	req.TickSize = "0.0001"
	_, err := r.client.CreateInstrument(t.Context(), req)
	ce := codeErr(t, err, connect.CodeInvalidArgument)
	if !strings.Contains(ce.Message(), "more fractional digits than the scale") || !strings.Contains(ce.Message(), "scale 3") {
		t.Fatalf("message %q", ce.Message())
	}
}

func TestUpdateInstrument(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	updated := collect[*metadatav1.InstrumentUpdated](t, e.js, streams.TopicInstrumentUpdated)
	r := e.start(t)
	r.clock.Advance(time.Minute)

	res, err := r.client.UpdateInstrument(t.Context(), &metadatav1.UpdateInstrumentRequest{
		Symbol: "BTCUSDT", TickSize: proto.String("0.10"), MinNotional: proto.String("10"), ExpectedRevision: proto.Uint64(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	in := res.GetInstrument()
	if in.GetTickSize() != "0.1" || in.GetMinNotional() != "10" || in.GetLotSize() != "0.00001" || in.GetRevision() != 2 ||
		!in.GetUpdatedAt().AsTime().Equal(epoch.Add(time.Minute)) || !in.GetCreatedAt().AsTime().Equal(epoch) {
		t.Fatalf("updated %v", in)
	}
	m := updated.wait(t, 1)[0]
	if m.ID != "instrument:BTCUSDT:2" || m.Key != "BTCUSDT" || !proto.Equal(m.Payload.GetInstrument(), in) ||
		m.Payload.GetPrevious().GetTickSize() != "0.01" || m.Payload.GetPrevious().GetRevision() != 1 ||
		strings.Join(m.Payload.GetChangedFields().GetPaths(), ",") != "tick_size,min_notional" || m.Payload.GetActor() != "metadata" {
		t.Fatalf("event %s: %v", m.ID, m.Payload)
	}

	// The same values again (in another spelling) change nothing and
	// publish nothing; neither does an empty update.
	for _, req := range []*metadatav1.UpdateInstrumentRequest{
		{Symbol: "BTCUSDT", TickSize: proto.String("0.1"), MinNotional: proto.String("10.000")},
		{Symbol: "BTCUSDT"},
	} {
		res, err = r.client.UpdateInstrument(t.Context(), req)
		if err != nil || res.GetInstrument().GetRevision() != 2 {
			t.Fatalf("no-op update = %v, %v", res, err)
		}
	}

	_, err = r.client.UpdateInstrument(t.Context(), &metadatav1.UpdateInstrumentRequest{Symbol: "BTCUSDT", LotSize: proto.String("0.001"), ExpectedRevision: proto.Uint64(1)})
	if ce := codeErr(t, err, connect.CodeAborted); !strings.Contains(ce.Message(), "revision 2, expected 1") {
		t.Fatalf("Aborted message %q", ce.Message())
	}
	_, err = r.client.UpdateInstrument(t.Context(), &metadatav1.UpdateInstrumentRequest{Symbol: "BTCUSDT", LotSize: proto.String("0.000001")})
	wantInvalid(t, err, "lot_size")
	// A new lot that the min quantity is not a multiple of.
	_, err = r.client.UpdateInstrument(t.Context(), &metadatav1.UpdateInstrumentRequest{Symbol: "BTCUSDT", LotSize: proto.String("0.001")})
	wantInvalid(t, err, "min_quantity")
	_, err = r.client.UpdateInstrument(t.Context(), &metadatav1.UpdateInstrumentRequest{Symbol: "NOPE", TickSize: proto.String("1")})
	wantCode(t, err, connect.CodeNotFound)
	_, err = r.client.UpdateInstrument(t.Context(), &metadatav1.UpdateInstrumentRequest{Symbol: "no pe"})
	wantInvalid(t, err, "symbol")

	res, err = r.client.UpdateInstrument(t.Context(), &metadatav1.UpdateInstrumentRequest{
		Symbol: "BTCUSDT", LotSize: proto.String("0.001"), MinQuantity: proto.String("0.002"),
	})
	if err != nil || res.GetInstrument().GetRevision() != 3 {
		t.Fatalf("lot and min quantity together = %v, %v", res, err)
	}
	m = updated.wait(t, 2)[1]
	if m.ID != "instrument:BTCUSDT:3" || strings.Join(m.Payload.GetChangedFields().GetPaths(), ",") != "lot_size,min_quantity" {
		t.Fatalf("second event %s: %v", m.ID, m.Payload)
	}
	if n := streamMsgs(t, e.js, streams.TopicInstrumentUpdated); n != 2 {
		t.Fatalf("%d updated events stored, want 2", n)
	}
}

func TestHaltAndResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	updated := collect[*metadatav1.InstrumentUpdated](t, e.js, streams.TopicInstrumentUpdated)
	r := e.start(t)

	halt, err := r.client.HaltInstrument(t.Context(), &metadatav1.HaltInstrumentRequest{Symbol: "ETHUSDT", Reason: "maintenance", ExpectedRevision: proto.Uint64(1)})
	if err != nil {
		t.Fatal(err)
	}
	if in := halt.GetInstrument(); in.GetStatus() != commonv1.InstrumentStatus_INSTRUMENT_STATUS_HALTED || in.GetStatusReason() != "maintenance" || in.GetRevision() != 2 {
		t.Fatalf("halted %v", in)
	}
	again, err := r.client.HaltInstrument(t.Context(), &metadatav1.HaltInstrumentRequest{Symbol: "ETHUSDT", Reason: "other"})
	if err != nil || !proto.Equal(again.GetInstrument(), halt.GetInstrument()) {
		t.Fatalf("halting a halted instrument = %v, %v; want it unchanged", again, err)
	}
	_, err = r.client.ResumeInstrument(t.Context(), &metadatav1.ResumeInstrumentRequest{Symbol: "ETHUSDT", ExpectedRevision: proto.Uint64(1)})
	wantCode(t, err, connect.CodeAborted)
	_, err = r.client.HaltInstrument(t.Context(), &metadatav1.HaltInstrumentRequest{Symbol: "ETHUSDT", ExpectedRevision: proto.Uint64(1)})
	wantCode(t, err, connect.CodeAborted)
	resume, err := r.client.ResumeInstrument(t.Context(), &metadatav1.ResumeInstrumentRequest{Symbol: "ETHUSDT", Reason: "done", ExpectedRevision: proto.Uint64(2)})
	if err != nil {
		t.Fatal(err)
	}
	if in := resume.GetInstrument(); in.GetStatus() != commonv1.InstrumentStatus_INSTRUMENT_STATUS_TRADING || in.GetStatusReason() != "" || in.GetRevision() != 3 {
		t.Fatalf("resumed %v", in)
	}
	resumed, err := r.client.ResumeInstrument(t.Context(), &metadatav1.ResumeInstrumentRequest{Symbol: "ETHUSDT"})
	if err != nil || resumed.GetInstrument().GetRevision() != 3 {
		t.Fatalf("resuming a trading instrument = %v, %v", resumed, err)
	}
	_, err = r.client.HaltInstrument(t.Context(), &metadatav1.HaltInstrumentRequest{Symbol: "NOPE"})
	wantCode(t, err, connect.CodeNotFound)
	_, err = r.client.ResumeInstrument(t.Context(), &metadatav1.ResumeInstrumentRequest{Symbol: "NOPE"})
	wantCode(t, err, connect.CodeNotFound)
	_, err = r.client.HaltInstrument(t.Context(), &metadatav1.HaltInstrumentRequest{Symbol: "BTCUSDT", Reason: strings.Repeat("x", 257)})
	wantInvalid(t, err, "reason")

	msgs := updated.wait(t, 2)
	h, u := msgs[0], msgs[1]
	if h.ID != "instrument:ETHUSDT:2" || strings.Join(h.Payload.GetChangedFields().GetPaths(), ",") != "status,status_reason" || h.Payload.GetReason() != "maintenance" {
		t.Fatalf("halt event %s: %v", h.ID, h.Payload)
	}
	if u.ID != "instrument:ETHUSDT:3" || strings.Join(u.Payload.GetChangedFields().GetPaths(), ",") != "status,status_reason" || u.Payload.GetReason() != "done" ||
		u.Payload.GetPrevious().GetStatus() != commonv1.InstrumentStatus_INSTRUMENT_STATUS_HALTED {
		t.Fatalf("resume event %s: %v", u.ID, u.Payload)
	}
	if n := streamMsgs(t, e.js, streams.TopicInstrumentUpdated); n != 2 {
		t.Fatalf("%d updated events stored, want 2 (no-ops publish nothing)", n)
	}
}

func TestConfigRPCs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	changed := collect[*metadatav1.ConfigChanged](t, e.js, streams.TopicConfigChanged)
	r := e.start(t)
	ctx := t.Context()

	_, err := r.client.GetConfig(ctx, &metadatav1.GetConfigRequest{Key: "risk.max_order_notional"})
	wantCode(t, err, connect.CodeNotFound)

	set, err := r.client.SetConfig(ctx, &metadatav1.SetConfigRequest{Key: "risk.max_order_notional", Value: "1000000", ExpectedRevision: proto.Uint64(0)})
	if err != nil {
		t.Fatal(err)
	}
	first := set.GetEntry()
	if first.GetKey() != "risk.max_order_notional" || first.GetValue() != "1000000" || first.GetRevision() == 0 || !first.GetUpdatedAt().AsTime().Equal(epoch) {
		t.Fatalf("set %v", first)
	}
	got, err := r.client.GetConfig(ctx, &metadatav1.GetConfigRequest{Key: "risk.max_order_notional"})
	if err != nil || !proto.Equal(got.GetEntry(), first) {
		t.Fatalf("GetConfig = %v, %v; want %v", got, err, first)
	}

	_, err = r.client.SetConfig(ctx, &metadatav1.SetConfigRequest{Key: "risk.max_order_notional", Value: "2", ExpectedRevision: proto.Uint64(0)})
	wantCode(t, err, connect.CodeAborted)
	_, err = r.client.SetConfig(ctx, &metadatav1.SetConfigRequest{Key: "risk.max_order_notional", Value: "2", ExpectedRevision: proto.Uint64(first.GetRevision() + 100)})
	wantCode(t, err, connect.CodeAborted)
	set, err = r.client.SetConfig(ctx, &metadatav1.SetConfigRequest{Key: "risk.max_order_notional", Value: "2000000", ExpectedRevision: proto.Uint64(first.GetRevision())})
	if err != nil || set.GetEntry().GetRevision() <= first.GetRevision() {
		t.Fatalf("conditional set = %v, %v", set, err)
	}
	second := set.GetEntry()
	for _, k := range []string{"risk.max_open_orders", "fees.maker", "gateway.rate_limit.rps"} {
		if _, err := r.client.SetConfig(ctx, &metadatav1.SetConfigRequest{Key: k, Value: "5"}); err != nil {
			t.Fatal(err)
		}
	}

	list, err := r.client.ListConfig(ctx, &metadatav1.ListConfigRequest{Prefix: "risk."})
	if err != nil {
		t.Fatal(err)
	}
	if keys := configKeys(list.GetEntries()); keys != "risk.max_open_orders,risk.max_order_notional" {
		t.Fatalf("ListConfig(risk.) = %s", keys)
	}
	var pages []string
	req := &metadatav1.ListConfigRequest{Page: &commonv1.PageRequest{PageSize: 3}}
	for {
		res, err := r.client.ListConfig(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, configKeys(res.GetEntries()))
		if res.GetPage().GetNextPageToken() == "" {
			break
		}
		req.Page.PageToken = res.GetPage().GetNextPageToken()
	}
	if got := strings.Join(pages, " | "); got != "fees.maker,gateway.rate_limit.rps,risk.max_open_orders | risk.max_order_notional" {
		t.Fatalf("pages %s", got)
	}
	inst, err := r.client.ListInstruments(ctx, &metadatav1.ListInstrumentsRequest{Page: &commonv1.PageRequest{PageSize: 1}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.client.ListConfig(ctx, &metadatav1.ListConfigRequest{Page: &commonv1.PageRequest{PageToken: inst.GetPage().GetNextPageToken()}})
	wantInvalid(t, err, "page.page_token")

	_, err = r.client.DeleteConfig(ctx, &metadatav1.DeleteConfigRequest{Key: "risk.max_order_notional", ExpectedRevision: proto.Uint64(first.GetRevision())})
	wantCode(t, err, connect.CodeAborted)
	if _, err := r.client.DeleteConfig(ctx, &metadatav1.DeleteConfigRequest{Key: "risk.max_order_notional", ExpectedRevision: proto.Uint64(second.GetRevision())}); err != nil {
		t.Fatal(err)
	}
	_, err = r.client.GetConfig(ctx, &metadatav1.GetConfigRequest{Key: "risk.max_order_notional"})
	wantCode(t, err, connect.CodeNotFound)
	if _, err := r.client.DeleteConfig(ctx, &metadatav1.DeleteConfigRequest{Key: "risk.max_order_notional"}); err != nil {
		t.Fatalf("deleting a key that is not set: %v", err)
	}
	_, err = r.client.DeleteConfig(ctx, &metadatav1.DeleteConfigRequest{Key: "risk.max_order_notional", ExpectedRevision: proto.Uint64(5)})
	wantCode(t, err, connect.CodeAborted)
	// Set after delete, create-only: the key does not exist any more.
	if _, err := r.client.SetConfig(ctx, &metadatav1.SetConfigRequest{Key: "risk.max_order_notional", Value: "3", ExpectedRevision: proto.Uint64(0)}); err != nil {
		t.Fatalf("create after delete: %v", err)
	}

	msgs := changed.wait(t, 7) // 2 sets, 3 other sets, 1 delete, 1 set
	m := msgs[0]
	if m.ID != "config:risk.max_order_notional:"+itoa(first.GetRevision()) || m.Subject != "md.config.changed.v1.risk:max_order_notional" ||
		m.Payload.GetKey() != "risk.max_order_notional" || m.Payload.GetValue() != "1000000" || m.Payload.GetRevision() != first.GetRevision() ||
		m.Payload.GetDeleted() || m.Payload.GetActor() != "metadata" || !m.Payload.GetChangedAt().AsTime().Equal(epoch) {
		t.Fatalf("first config event %s on %s: %v", m.ID, m.Subject, m.Payload)
	}
	del := msgs[5]
	if !del.Payload.GetDeleted() || del.Payload.GetValue() != "" || del.Payload.GetRevision() <= second.GetRevision() ||
		del.ID != "config:risk.max_order_notional:"+itoa(del.Payload.GetRevision()) {
		t.Fatalf("delete event %s: %v", del.ID, del.Payload)
	}
	if n := streamMsgs(t, e.js, streams.TopicConfigChanged); n != 7 {
		t.Fatalf("%d config events stored, want 7 (deleting a missing key publishes nothing)", n)
	}
}

func TestConfigRPCsInvalid(t *testing.T) {
	t.Parallel()
	r := newEnv(t).start(t, func(c *metadata.Config, _ *metadata.Deps) { c.MaxConfigValueBytes = 8 })
	ctx := t.Context()
	for _, key := range []string{"", "Risk.max", "risk..max", ".risk", "risk.", "risk max", "risk:max", "risk.*", "risk.>", strings.Repeat("a", 129)} {
		_, err := r.client.SetConfig(ctx, &metadatav1.SetConfigRequest{Key: key, Value: "1"})
		wantInvalid(t, err, "key")
		_, err = r.client.GetConfig(ctx, &metadatav1.GetConfigRequest{Key: key})
		wantInvalid(t, err, "key")
		_, err = r.client.DeleteConfig(ctx, &metadatav1.DeleteConfigRequest{Key: key})
		wantInvalid(t, err, "key")
	}
	_, err := r.client.SetConfig(ctx, &metadatav1.SetConfigRequest{Key: "a", Value: "123456789"})
	wantInvalid(t, err, "value")
	_, err = r.client.ListConfig(ctx, &metadatav1.ListConfigRequest{Prefix: "RISK"})
	wantInvalid(t, err, "prefix")
	_, err = r.client.ListConfig(ctx, &metadatav1.ListConfigRequest{Page: &commonv1.PageRequest{PageSize: -5}})
	wantInvalid(t, err, "page.page_size")
}

func configKeys(entries []*metadatav1.ConfigEntry) string {
	var keys []string
	for _, e := range entries {
		keys = append(keys, e.GetKey())
	}
	return strings.Join(keys, ",")
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

// watch reads a WatchConfig stream in the background.
type watch struct {
	msgs   chan *metadatav1.WatchConfigResponse
	done   chan error
	cancel context.CancelFunc
}

func startWatch(t *testing.T, client metadatav1connect.MetadataServiceClient, prefix string) *watch {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := client.WatchConfig(ctx, &metadatav1.WatchConfigRequest{Prefix: prefix})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w := &watch{msgs: make(chan *metadatav1.WatchConfigResponse, 100), done: make(chan error, 1), cancel: cancel}
	go func() {
		defer close(w.msgs)
		for stream.Receive() {
			w.msgs <- stream.Msg()
		}
		w.done <- stream.Err()
		_ = stream.Close()
	}()
	t.Cleanup(cancel)
	return w
}

// next returns the next message, failing the test if none comes in time.
func (w *watch) next(t *testing.T) *metadatav1.WatchConfigResponse {
	t.Helper()
	select {
	case m, ok := <-w.msgs:
		if !ok {
			t.Fatalf("stream ended: %v", <-w.done)
		}
		return m
	case <-time.After(waitTimeout):
		t.Fatalf("no stream message after %s", waitTimeout)
		return nil
	}
}

func TestWatchConfig(t *testing.T) {
	t.Parallel()
	r := newEnv(t).start(t)
	for name, client := range map[string]metadatav1connect.MetadataServiceClient{"connect": r.client, "grpc": r.grpcClient()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			prefix := name + "."
			set := func(key, value string) *metadatav1.ConfigEntry {
				t.Helper()
				res, err := r.client.SetConfig(ctx, &metadatav1.SetConfigRequest{Key: prefix + key, Value: value})
				if err != nil {
					t.Fatal(err)
				}
				return res.GetEntry()
			}
			a := set("a", "1")
			b := set("b", "2")
			set("gone", "x")
			if _, err := r.client.DeleteConfig(ctx, &metadatav1.DeleteConfigRequest{Key: prefix + "gone"}); err != nil {
				t.Fatal(err)
			}
			if _, err := r.client.SetConfig(ctx, &metadatav1.SetConfigRequest{Key: "other." + name, Value: "no"}); err != nil {
				t.Fatal(err)
			}

			w := startWatch(t, client, prefix)
			got := []*metadatav1.ConfigEntry{w.next(t).GetCurrent(), w.next(t).GetCurrent()}
			slices.SortFunc(got, func(x, y *metadatav1.ConfigEntry) int { return strings.Compare(x.GetKey(), y.GetKey()) })
			if !proto.Equal(got[0], a) || !proto.Equal(got[1], b) {
				t.Fatalf("current entries %v, want %v and %v", got, a, b)
			}
			end := w.next(t).GetSnapshotEnd()
			if end == nil || end.GetSequence() < b.GetRevision() {
				t.Fatalf("want snapshot_end at or after revision %d, got %v", b.GetRevision(), end)
			}

			// Changes arrive one by one while the stream stays open.
			r.clock.Advance(time.Second)
			c := set("c", "3")
			ch := w.next(t).GetChanged()
			if ch.GetKey() != prefix+"c" || ch.GetValue() != "3" || ch.GetRevision() != c.GetRevision() || ch.GetDeleted() ||
				!ch.GetChangedAt().AsTime().Equal(c.GetUpdatedAt().AsTime()) {
				t.Fatalf("changed %v, want %v", ch, c)
			}
			if _, err := r.client.SetConfig(ctx, &metadatav1.SetConfigRequest{Key: "other." + name, Value: "still no"}); err != nil {
				t.Fatal(err)
			}
			if _, err := r.client.DeleteConfig(ctx, &metadatav1.DeleteConfigRequest{Key: prefix + "a"}); err != nil {
				t.Fatal(err)
			}
			ch = w.next(t).GetChanged()
			if ch.GetKey() != prefix+"a" || !ch.GetDeleted() || ch.GetValue() != "" || ch.GetRevision() <= c.GetRevision() {
				t.Fatalf("changed %v, want the delete of %sa (other keys filtered out)", ch, prefix)
			}

			w.cancel()
			select {
			case err := <-w.done:
				if connect.CodeOf(err) != connect.CodeCanceled {
					t.Fatalf("stream ended with %v, want Canceled", err)
				}
			case <-time.After(waitTimeout):
				t.Fatal("stream did not end after the client cancelled")
			}
		})
	}
}

func TestWatchConfigEmptyAndInvalid(t *testing.T) {
	t.Parallel()
	r := newEnv(t).start(t)
	w := startWatch(t, r.client, "")
	if end := w.next(t).GetSnapshotEnd(); end == nil {
		t.Fatal("an empty bucket's watch must start with snapshot_end")
	}

	stream, err := r.client.WatchConfig(t.Context(), &metadatav1.WatchConfigRequest{Prefix: "Bad Prefix"})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if stream.Receive() {
		t.Fatalf("invalid prefix streamed %v", stream.Msg())
	}
	wantInvalid(t, stream.Err(), "prefix")
}

func TestWatchConfigEndsWithUnavailableWhenTheServiceStops(t *testing.T) {
	t.Parallel()
	r := newEnv(t).start(t)
	w := startWatch(t, r.client, "")
	if w.next(t).GetSnapshotEnd() == nil {
		t.Fatal("want snapshot_end first")
	}
	r.stop()
	select {
	case err := <-w.done:
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Fatalf("stream ended with %v, want Unavailable", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("stream did not end when the service stopped")
	}
}

func TestCanceledCallsAreNotInternal(t *testing.T) {
	t.Parallel()
	r := newEnv(t).start(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := r.svc.InProcess().GetInstrument(ctx, &metadatav1.GetInstrumentRequest{Symbol: "BTCUSDT"})
	if err != nil && connect.CodeOf(err) != connect.CodeCanceled && !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled call failed with %v", err)
	}
	if strings.Contains(r.logs.String(), "metadata request failed") {
		t.Fatalf("a cancelled call was logged as a failure:\n%s", r.logs)
	}
}
