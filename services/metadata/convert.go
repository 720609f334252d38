package metadata

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
)

// The converters between the domain and the contracts, used by the handler
// (requests and responses), the store (values are proto) and the events.

// kindToProto maps a domain kind to the contract's.
func kindToProto(k Kind) commonv1.InstrumentKind {
	switch k {
	case KindSpot:
		return commonv1.InstrumentKind_INSTRUMENT_KIND_SPOT
	case KindPerpetual:
		return commonv1.InstrumentKind_INSTRUMENT_KIND_PERPETUAL
	default:
		return commonv1.InstrumentKind_INSTRUMENT_KIND_UNSPECIFIED
	}
}

// kindFromProto maps the contract's kind to the domain's; 0 is unspecified.
func kindFromProto(k commonv1.InstrumentKind) Kind {
	switch k {
	case commonv1.InstrumentKind_INSTRUMENT_KIND_SPOT:
		return KindSpot
	case commonv1.InstrumentKind_INSTRUMENT_KIND_PERPETUAL:
		return KindPerpetual
	case commonv1.InstrumentKind_INSTRUMENT_KIND_UNSPECIFIED:
		return 0
	default:
		return Kind(-1) // unknown: fails validation and matches no filter
	}
}

// statusToProto maps a domain status to the contract's.
func statusToProto(s Status) commonv1.InstrumentStatus {
	switch s {
	case StatusTrading:
		return commonv1.InstrumentStatus_INSTRUMENT_STATUS_TRADING
	case StatusHalted:
		return commonv1.InstrumentStatus_INSTRUMENT_STATUS_HALTED
	default:
		return commonv1.InstrumentStatus_INSTRUMENT_STATUS_UNSPECIFIED
	}
}

// statusFromProto maps the contract's status to the domain's; 0 is unspecified.
func statusFromProto(s commonv1.InstrumentStatus) Status {
	switch s {
	case commonv1.InstrumentStatus_INSTRUMENT_STATUS_TRADING:
		return StatusTrading
	case commonv1.InstrumentStatus_INSTRUMENT_STATUS_HALTED:
		return StatusHalted
	case commonv1.InstrumentStatus_INSTRUMENT_STATUS_UNSPECIFIED:
		return 0
	default:
		return Status(-1)
	}
}

// instrumentToProto is the contract form of an instrument.
func instrumentToProto(in Instrument) *metadatav1.Instrument {
	return &metadatav1.Instrument{
		Symbol:        in.Symbol,
		Kind:          kindToProto(in.Kind),
		BaseAsset:     in.BaseAsset,
		QuoteAsset:    in.QuoteAsset,
		TickSize:      in.TickSize,
		LotSize:       in.LotSize,
		MinQuantity:   in.MinQuantity,
		MinNotional:   in.MinNotional,
		PriceScale:    in.PriceScale,
		QuantityScale: in.QuantityScale,
		Status:        statusToProto(in.Status),
		StatusReason:  in.StatusReason,
		CreatedAt:     timestamp(in.CreatedAt),
		UpdatedAt:     timestamp(in.UpdatedAt),
		Revision:      in.Revision,
		MakerFeeRate:  in.MakerFeeRate,
		TakerFeeRate:  in.TakerFeeRate,
		Perpetual:     rulesToProto(in.Perpetual),
	}
}

// instrumentFromProto is the domain form of a stored instrument.
func instrumentFromProto(p *metadatav1.Instrument) Instrument {
	return Instrument{
		Symbol:        p.GetSymbol(),
		Kind:          kindFromProto(p.GetKind()),
		BaseAsset:     p.GetBaseAsset(),
		QuoteAsset:    p.GetQuoteAsset(),
		TickSize:      p.GetTickSize(),
		LotSize:       p.GetLotSize(),
		MinQuantity:   p.GetMinQuantity(),
		MinNotional:   p.GetMinNotional(),
		PriceScale:    p.GetPriceScale(),
		QuantityScale: p.GetQuantityScale(),
		Status:        statusFromProto(p.GetStatus()),
		StatusReason:  p.GetStatusReason(),
		CreatedAt:     fromTimestamp(p.GetCreatedAt()),
		UpdatedAt:     fromTimestamp(p.GetUpdatedAt()),
		Revision:      p.GetRevision(),
		MakerFeeRate:  orZero(p.GetMakerFeeRate()), // stored before fees existed: none
		TakerFeeRate:  orZero(p.GetTakerFeeRate()),
		Perpetual:     rulesFromProto(p.GetPerpetual()),
	}
}

// orZero is s, or "0" when s is empty.
func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// rulesToProto is the contract form of a perpetual's rules; nil for nil.
func rulesToProto(r *PerpetualRules) *metadatav1.PerpetualRules {
	if r == nil {
		return nil
	}
	return &metadatav1.PerpetualRules{
		MaxLeverage:           r.MaxLeverage,
		InitialMarginRate:     r.InitialMarginRate,
		MaintenanceMarginRate: r.MaintenanceMarginRate,
		FundingInterval:       durationpb.New(r.FundingInterval),
		FundingRateClamp:      r.FundingRateClamp,
		ImpactNotional:        r.ImpactNotional,
		IndexSymbol:           r.IndexSymbol,
	}
}

// rulesFromProto is the domain form of a perpetual's rules; nil for nil.
// The initial margin rate is derived, so a request's is ignored.
func rulesFromProto(p *metadatav1.PerpetualRules) *PerpetualRules {
	if p == nil {
		return nil
	}
	return &PerpetualRules{
		MaxLeverage:           p.GetMaxLeverage(),
		InitialMarginRate:     p.GetInitialMarginRate(),
		MaintenanceMarginRate: p.GetMaintenanceMarginRate(),
		FundingInterval:       p.GetFundingInterval().AsDuration(),
		FundingRateClamp:      p.GetFundingRateClamp(),
		ImpactNotional:        p.GetImpactNotional(),
		IndexSymbol:           p.GetIndexSymbol(),
	}
}

// specFromProto is the domain form of a create request.
func specFromProto(r *metadatav1.CreateInstrumentRequest) InstrumentSpec {
	return InstrumentSpec{
		Symbol:        r.GetSymbol(),
		Kind:          kindFromProto(r.GetKind()),
		BaseAsset:     r.GetBaseAsset(),
		QuoteAsset:    r.GetQuoteAsset(),
		TickSize:      r.GetTickSize(),
		LotSize:       r.GetLotSize(),
		MinQuantity:   r.GetMinQuantity(),
		MinNotional:   r.GetMinNotional(),
		PriceScale:    r.GetPriceScale(),
		QuantityScale: r.GetQuantityScale(),
		StartHalted:   r.GetStartHalted(),
		MakerFeeRate:  r.GetMakerFeeRate(),
		TakerFeeRate:  r.GetTakerFeeRate(),
		Perpetual:     rulesFromProto(r.GetPerpetual()),
	}
}

// changeFromProto is the domain form of an update request.
func changeFromProto(r *metadatav1.UpdateInstrumentRequest) InstrumentChange {
	return InstrumentChange{
		TickSize:     r.TickSize,
		LotSize:      r.LotSize,
		MinQuantity:  r.MinQuantity,
		MinNotional:  r.MinNotional,
		MakerFeeRate: r.MakerFeeRate,
		TakerFeeRate: r.TakerFeeRate,
		Perpetual:    rulesFromProto(r.GetPerpetual()),
	}
}

// filterFromProto is the domain form of a list request's filters.
func filterFromProto(r *metadatav1.ListInstrumentsRequest) InstrumentFilter {
	return InstrumentFilter{
		Kind:       kindFromProto(r.GetKind()),
		Status:     statusFromProto(r.GetStatus()),
		BaseAsset:  r.GetBaseAsset(),
		QuoteAsset: r.GetQuoteAsset(),
	}
}

// configEntryToProto is the contract form of a configuration entry.
func configEntryToProto(e ConfigEntry) *metadatav1.ConfigEntry {
	return &metadatav1.ConfigEntry{
		Key:       e.Key,
		Value:     e.Value,
		Revision:  e.Revision,
		UpdatedAt: timestamp(e.UpdatedAt),
	}
}

// configEntryFromProto is the domain form of a stored entry at revision.
func configEntryFromProto(p *metadatav1.ConfigEntry, revision uint64) ConfigEntry {
	return ConfigEntry{
		Key:       p.GetKey(),
		Value:     p.GetValue(),
		Revision:  revision,
		UpdatedAt: fromTimestamp(p.GetUpdatedAt()),
	}
}

// configChangeToProto is the payload of md.config.changed.v1.
func configChangeToProto(c ConfigChange) *metadatav1.ConfigChanged {
	return &metadatav1.ConfigChanged{
		Key:       c.Key,
		Value:     c.Value,
		Revision:  c.Revision,
		Deleted:   c.Deleted,
		ChangedAt: timestamp(c.ChangedAt),
		Actor:     c.Actor,
	}
}

// timestamp is t as a proto timestamp; nil for the zero time.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// fromTimestamp is the time of a proto timestamp, in UTC; zero for nil.
func fromTimestamp(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}
