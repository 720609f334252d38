package metadata

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tradex-mesh/tradex/internal/decimal"
)

// Kind is the kind of contract an instrument is.
type Kind int

// Kinds of instruments.
const (
	// KindSpot exchanges the base asset for the quote asset.
	KindSpot Kind = iota + 1
	// KindPerpetual is a perpetual futures contract.
	KindPerpetual
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindSpot:
		return "spot"
	case KindPerpetual:
		return "perpetual"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// Status says whether an instrument trades.
type Status int

// Statuses of instruments.
const (
	// StatusTrading accepts and matches orders.
	StatusTrading Status = iota + 1
	// StatusHalted refuses new orders until the instrument resumes.
	StatusHalted
)

// String names the status.
func (s Status) String() string {
	switch s {
	case StatusTrading:
		return "trading"
	case StatusHalted:
		return "halted"
	default:
		return fmt.Sprintf("Status(%d)", int(s))
	}
}

// Instrument is a tradable market and its trading rules. Decimal fields are
// held in their shortest text form ("0.01", "5"), which is unique per value
// at the instrument's scales.
type Instrument struct {
	Symbol        string
	Kind          Kind
	BaseAsset     string
	QuoteAsset    string
	TickSize      string
	LotSize       string
	MinQuantity   string
	MinNotional   string
	PriceScale    int32
	QuantityScale int32
	Status        Status
	StatusReason  string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// Revision starts at 1 and grows by one with every change.
	Revision uint64
	// MakerFeeRate and TakerFeeRate are the fees of a trade's maker and
	// taker, fractions of its value at RateScale ("0.0002"); "0" for none.
	MakerFeeRate, TakerFeeRate string
	// Perpetual is a perpetual's contract rules; nil for spot.
	Perpetual *PerpetualRules
}

// PerpetualRules are the contract rules of a linear perpetual, margined in
// the quote asset with isolated margin. Rates are decimal texts at
// RateScale in their shortest form.
type PerpetualRules struct {
	// MaxLeverage is the highest leverage an account may choose, 1 to
	// MaxLeverage.
	MaxLeverage int32
	// InitialMarginRate is 1 / MaxLeverage rounded up at RateScale; it is
	// derived, never set.
	InitialMarginRate string
	// MaintenanceMarginRate is what a position must keep, above zero and
	// below InitialMarginRate.
	MaintenanceMarginRate string
	// FundingInterval is how often funding is settled: from a minute to a
	// day, and a whole number of intervals make a day, so that intervals
	// start at the same times every day (UTC).
	FundingInterval time.Duration
	// FundingRateClamp bounds the funding rate of an interval either way,
	// 0 to MaxFundingRateClamp.
	FundingRateClamp string
	// ImpactNotional is the value (quote asset, at the notional scale)
	// the impact bid and ask take from the book.
	ImpactNotional string
	// IndexSymbol is the spot instrument (of the same assets) whose mid
	// price is the index; empty for none.
	IndexSymbol string
}

// Limits of the contract rules and fees.
const (
	// RateScale is the scale of every rate: millionths.
	RateScale = 6
	// MaxLeverage is the highest max leverage a perpetual may allow.
	MaxLeverage = 200
	// MaxFeeRate and MaxFundingRateClamp bound fee rates and funding
	// rates.
	MaxFeeRate          = "0.1"
	MaxFundingRateClamp = "0.1"
)

// NotionalScale is the scale of price times quantity, and of MinNotional.
func (in Instrument) NotionalScale() int32 { return in.PriceScale + in.QuantityScale }

// InstrumentSpec describes an instrument to create.
type InstrumentSpec struct {
	// Symbol: upper-case letters, digits and '-', starting and ending with
	// a letter or digit, at most MaxSymbolLen bytes ("BTCUSDT-PERP").
	Symbol string
	// Kind is KindSpot or KindPerpetual.
	Kind Kind
	// BaseAsset and QuoteAsset: upper-case letters and digits, at most
	// MaxAssetLen bytes, different from each other.
	BaseAsset, QuoteAsset string
	// TickSize and LotSize are positive decimals within PriceScale and
	// QuantityScale.
	TickSize, LotSize string
	// MinQuantity is a positive multiple of LotSize; empty means LotSize.
	MinQuantity string
	// MinNotional is a decimal of zero or more within PriceScale +
	// QuantityScale; empty means "0".
	MinNotional string
	// PriceScale and QuantityScale are the digits of prices and quantities,
	// 0 to 18 each and at most 18 together (so that a notional fits the
	// fixed-point range). Zero means the digits of TickSize (LotSize).
	PriceScale, QuantityScale int32
	// StartHalted creates the instrument halted instead of trading.
	StartHalted bool
	// MakerFeeRate and TakerFeeRate: empty means "0".
	MakerFeeRate, TakerFeeRate string
	// Perpetual is required for KindPerpetual and refused for KindSpot.
	Perpetual *PerpetualRules
}

// Limits of instrument fields.
const (
	MaxSymbolLen = 32
	MaxAssetLen  = 16
	MaxReasonLen = 256
)

// NewInstrument checks spec and returns the instrument it describes, at
// revision 1, created at now.
func NewInstrument(spec InstrumentSpec, now time.Time) (Instrument, error) {
	if err := ValidateSymbol(spec.Symbol); err != nil {
		return Instrument{}, invalid("symbol", err)
	}
	if spec.Kind != KindSpot && spec.Kind != KindPerpetual {
		return Instrument{}, invalidf("kind", "must be spot or perpetual, got %s", spec.Kind)
	}
	if err := validateAsset(spec.BaseAsset); err != nil {
		return Instrument{}, invalid("base_asset", err)
	}
	if err := validateAsset(spec.QuoteAsset); err != nil {
		return Instrument{}, invalid("quote_asset", err)
	}
	if spec.BaseAsset == spec.QuoteAsset {
		return Instrument{}, invalidf("quote_asset", "must differ from base_asset %s", spec.BaseAsset)
	}
	in := Instrument{
		Symbol:        spec.Symbol,
		Kind:          spec.Kind,
		BaseAsset:     spec.BaseAsset,
		QuoteAsset:    spec.QuoteAsset,
		TickSize:      spec.TickSize,
		LotSize:       spec.LotSize,
		MinQuantity:   spec.MinQuantity,
		MinNotional:   spec.MinNotional,
		PriceScale:    orDigits(spec.PriceScale, spec.TickSize),
		QuantityScale: orDigits(spec.QuantityScale, spec.LotSize),
		Status:        StatusTrading,
		CreatedAt:     now,
		UpdatedAt:     now,
		Revision:      1,
		MakerFeeRate:  spec.MakerFeeRate,
		TakerFeeRate:  spec.TakerFeeRate,
		Perpetual:     spec.Perpetual.clone(),
	}
	if in.MinQuantity == "" {
		in.MinQuantity = in.LotSize
	}
	if in.MinNotional == "" {
		in.MinNotional = "0"
	}
	if spec.StartHalted {
		in.Status = StatusHalted
	}
	return in.withRules()
}

// orDigits is scale, or when it is zero the number of fractional digits of
// the decimal text s.
func orDigits(scale int32, s string) int32 {
	if scale != 0 {
		return scale
	}
	_, frac, _ := strings.Cut(s, ".")
	// More digits than MaxScale fail when s is parsed at MaxScale, naming s.
	return int32(min(len(frac), decimal.MaxScale))
}

// withRules checks the scales and the trading rules and returns the
// instrument with its decimals in their shortest form. Scales are 0 to
// MaxScale, and so is their sum, the notional scale.
func (in Instrument) withRules() (Instrument, error) {
	if in.PriceScale < 0 || in.PriceScale > decimal.MaxScale {
		return Instrument{}, invalidf("price_scale", "must be 0 to %d, got %d", decimal.MaxScale, in.PriceScale)
	}
	if in.QuantityScale < 0 || in.QuantityScale > decimal.MaxScale {
		return Instrument{}, invalidf("quantity_scale", "must be 0 to %d, got %d", decimal.MaxScale, in.QuantityScale)
	}
	tick, err := positive("tick_size", in.TickSize, in.PriceScale)
	if err != nil {
		return Instrument{}, err
	}
	lot, err := positive("lot_size", in.LotSize, in.QuantityScale)
	if err != nil {
		return Instrument{}, err
	}
	if in.NotionalScale() > decimal.MaxScale {
		return Instrument{}, invalidf("quantity_scale", "price_scale + quantity_scale must be at most %d, got %d + %d",
			decimal.MaxScale, in.PriceScale, in.QuantityScale)
	}
	minQty, err := positive("min_quantity", in.MinQuantity, in.QuantityScale)
	if err != nil {
		return Instrument{}, err
	}
	if minQty < lot || !decimal.IsMultiple(minQty, lot) {
		return Instrument{}, invalidf("min_quantity", "must be a multiple of lot_size %s, got %s", in.LotSize, in.MinQuantity)
	}
	minNotional, err := decimal.ParseNonNegative(in.MinNotional, in.NotionalScale())
	if err != nil {
		return Instrument{}, invalid("min_notional", err)
	}
	in.TickSize = decimal.FormatTrim(tick, in.PriceScale)
	in.LotSize = decimal.FormatTrim(lot, in.QuantityScale)
	in.MinQuantity = decimal.FormatTrim(minQty, in.QuantityScale)
	in.MinNotional = decimal.FormatTrim(minNotional, in.NotionalScale())
	if in.MakerFeeRate, err = rate("maker_fee_rate", in.MakerFeeRate, MaxFeeRate); err != nil {
		return Instrument{}, err
	}
	if in.TakerFeeRate, err = rate("taker_fee_rate", in.TakerFeeRate, MaxFeeRate); err != nil {
		return Instrument{}, err
	}
	switch {
	case in.Kind == KindPerpetual && in.Perpetual == nil:
		return Instrument{}, invalidf("perpetual", "a perpetual needs its contract rules (max_leverage, maintenance_margin_rate, funding_interval, funding_rate_clamp, impact_notional)")
	case in.Kind != KindPerpetual && in.Perpetual != nil:
		return Instrument{}, invalidf("perpetual", "only a perpetual has contract rules; %s is %s", in.Symbol, in.Kind)
	case in.Perpetual != nil:
		rules, err := in.Perpetual.checked(in)
		if err != nil {
			return Instrument{}, err
		}
		in.Perpetual = &rules
	}
	return in, nil
}

// rate parses a rate ("" is "0") at RateScale, from zero to most, and
// returns its shortest form.
func rate(field, s, most string) (string, error) {
	if s == "" {
		s = "0"
	}
	v, err := decimal.ParseNonNegative(s, RateScale)
	if err != nil {
		return "", invalid(field, err)
	}
	if limit, _ := decimal.Parse(most, RateScale); v > limit {
		return "", invalidf(field, "must be at most %s, got %s", most, s)
	}
	return decimal.FormatTrim(v, RateScale), nil
}

// rateUnit is 1 at RateScale.
const rateUnit = 1_000_000

// checked returns the rules with their derived and shortest forms, or why
// they cannot be in's.
func (r PerpetualRules) checked(in Instrument) (PerpetualRules, error) {
	if r.MaxLeverage < 1 || r.MaxLeverage > MaxLeverage {
		return PerpetualRules{}, invalidf("perpetual.max_leverage", "must be 1 to %d, got %d", MaxLeverage, r.MaxLeverage)
	}
	initial := (rateUnit + int64(r.MaxLeverage) - 1) / int64(r.MaxLeverage)
	r.InitialMarginRate = decimal.FormatTrim(initial, RateScale)
	mm, err := decimal.Parse(r.MaintenanceMarginRate, RateScale)
	if err != nil {
		return PerpetualRules{}, invalid("perpetual.maintenance_margin_rate", err)
	}
	if mm <= 0 || mm >= initial {
		return PerpetualRules{}, invalidf("perpetual.maintenance_margin_rate",
			"must be above 0 and below the initial margin rate %s (1 / max_leverage), got %s", r.InitialMarginRate, r.MaintenanceMarginRate)
	}
	r.MaintenanceMarginRate = decimal.FormatTrim(mm, RateScale)
	if d := r.FundingInterval; d < time.Minute || d > 24*time.Hour || (24*time.Hour)%d != 0 {
		return PerpetualRules{}, invalidf("perpetual.funding_interval", "must be from 1m to 24h and divide a day evenly (1h, 4h, 8h...), got %s", d)
	}
	if r.FundingRateClamp, err = rate("perpetual.funding_rate_clamp", r.FundingRateClamp, MaxFundingRateClamp); err != nil {
		return PerpetualRules{}, err
	}
	impact, err := positive("perpetual.impact_notional", r.ImpactNotional, in.NotionalScale())
	if err != nil {
		return PerpetualRules{}, err
	}
	r.ImpactNotional = decimal.FormatTrim(impact, in.NotionalScale())
	if r.IndexSymbol != "" {
		if err := ValidateSymbol(r.IndexSymbol); err != nil {
			return PerpetualRules{}, invalid("perpetual.index_symbol", err)
		}
		if r.IndexSymbol == in.Symbol {
			return PerpetualRules{}, invalidf("perpetual.index_symbol", "must name a spot instrument, not %s itself", in.Symbol)
		}
	}
	return r, nil
}

// clone is a copy of r, nil for nil.
func (r *PerpetualRules) clone() *PerpetualRules {
	if r == nil {
		return nil
	}
	c := *r
	return &c
}

// positive parses s at scale and requires it above zero.
func positive(field, s string, scale int32) (int64, error) {
	v, err := decimal.Parse(s, scale)
	if err != nil {
		return 0, invalid(field, err)
	}
	if v <= 0 {
		return 0, invalidf(field, "must be positive, got %s", s)
	}
	return v, nil
}

// ValidateSymbol accepts 1 to MaxSymbolLen upper-case letters, digits and
// '-', starting and ending with a letter or digit.
func ValidateSymbol(symbol string) error {
	switch {
	case symbol == "":
		return errors.New("is required")
	case len(symbol) > MaxSymbolLen:
		return fmt.Errorf("must be at most %d characters, got %d", MaxSymbolLen, len(symbol))
	case symbol[0] == '-' || symbol[len(symbol)-1] == '-':
		return fmt.Errorf("%q must start and end with a letter or digit", symbol)
	}
	for i := 0; i < len(symbol); i++ {
		if c := symbol[i]; !isUpperAlnum(c) && c != '-' {
			return fmt.Errorf("%q: only A-Z, 0-9 and '-' are allowed", symbol)
		}
	}
	return nil
}

// validateAsset accepts 1 to MaxAssetLen upper-case letters and digits.
func validateAsset(asset string) error {
	switch {
	case asset == "":
		return errors.New("is required")
	case len(asset) > MaxAssetLen:
		return fmt.Errorf("must be at most %d characters, got %d", MaxAssetLen, len(asset))
	}
	for i := 0; i < len(asset); i++ {
		if !isUpperAlnum(asset[i]) {
			return fmt.Errorf("%q: only A-Z and 0-9 are allowed", asset)
		}
	}
	return nil
}

func isUpperAlnum(c byte) bool { return ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') }

// InstrumentChange is an update of trading rules; nil fields stay as they are.
type InstrumentChange struct {
	TickSize, LotSize, MinQuantity, MinNotional *string
	MakerFeeRate, TakerFeeRate                  *string
	// Perpetual replaces a perpetual's contract rules, all of them.
	Perpetual *PerpetualRules
}

// Update applies ch and returns the changed instrument at the next
// revision and the names of the fields whose value changed (proto field
// names, as in InstrumentUpdated.changed_fields). A change to the same
// values changes nothing: it returns in and no fields.
func (in Instrument) Update(ch InstrumentChange, now time.Time) (Instrument, []string, error) {
	next := in
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&next.TickSize, ch.TickSize)
	set(&next.LotSize, ch.LotSize)
	set(&next.MinQuantity, ch.MinQuantity)
	set(&next.MinNotional, ch.MinNotional)
	set(&next.MakerFeeRate, ch.MakerFeeRate)
	set(&next.TakerFeeRate, ch.TakerFeeRate)
	if ch.Perpetual != nil {
		next.Perpetual = ch.Perpetual.clone()
	}
	next, err := next.withRules()
	if err != nil {
		return Instrument{}, nil, err
	}
	return in.advance(next, now)
}

// Halt stops trading with reason. Halting a halted instrument changes
// nothing.
func (in Instrument) Halt(reason string, now time.Time) (Instrument, []string, error) {
	if len(reason) > MaxReasonLen {
		return Instrument{}, nil, invalidf("reason", "must be at most %d bytes, got %d", MaxReasonLen, len(reason))
	}
	if in.Status == StatusHalted {
		return in, nil, nil
	}
	next := in
	next.Status, next.StatusReason = StatusHalted, reason
	return in.advance(next, now)
}

// Resume reopens trading. Resuming a trading instrument changes nothing;
// reason is the event's, not kept on the instrument.
func (in Instrument) Resume(reason string, now time.Time) (Instrument, []string, error) {
	if len(reason) > MaxReasonLen {
		return Instrument{}, nil, invalidf("reason", "must be at most %d bytes, got %d", MaxReasonLen, len(reason))
	}
	if in.Status == StatusTrading {
		return in, nil, nil
	}
	next := in
	next.Status, next.StatusReason = StatusTrading, ""
	return in.advance(next, now)
}

// advance stamps next as the revision after in, unless nothing changed.
func (in Instrument) advance(next Instrument, now time.Time) (Instrument, []string, error) {
	changed := ChangedFields(in, next)
	if len(changed) == 0 {
		return in, nil, nil
	}
	next.Revision = in.Revision + 1
	next.UpdatedAt = now
	return next, changed, nil
}

// ChangedFields names the fields that differ between two revisions of an
// instrument, as proto field names in field-number order; revision and
// updated_at, which always change, are left out.
func ChangedFields(prev, next Instrument) []string {
	var out []string
	add := func(name string, differ bool) {
		if differ {
			out = append(out, name)
		}
	}
	add("kind", prev.Kind != next.Kind)
	add("base_asset", prev.BaseAsset != next.BaseAsset)
	add("quote_asset", prev.QuoteAsset != next.QuoteAsset)
	add("tick_size", prev.TickSize != next.TickSize)
	add("lot_size", prev.LotSize != next.LotSize)
	add("min_quantity", prev.MinQuantity != next.MinQuantity)
	add("min_notional", prev.MinNotional != next.MinNotional)
	add("price_scale", prev.PriceScale != next.PriceScale)
	add("quantity_scale", prev.QuantityScale != next.QuantityScale)
	add("status", prev.Status != next.Status)
	add("status_reason", prev.StatusReason != next.StatusReason)
	add("maker_fee_rate", prev.MakerFeeRate != next.MakerFeeRate)
	add("taker_fee_rate", prev.TakerFeeRate != next.TakerFeeRate)
	add("perpetual", !equalRules(prev.Perpetual, next.Perpetual))
	return out
}

// equalRules reports whether two instruments' contract rules are the same.
func equalRules(a, b *PerpetualRules) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// InstrumentFilter selects instruments in a list; zero fields match all.
type InstrumentFilter struct {
	Kind       Kind
	Status     Status
	BaseAsset  string
	QuoteAsset string
}

// Match reports whether in passes the filter.
func (f InstrumentFilter) Match(in Instrument) bool {
	return (f.Kind == 0 || f.Kind == in.Kind) &&
		(f.Status == 0 || f.Status == in.Status) &&
		(f.BaseAsset == "" || f.BaseAsset == in.BaseAsset) &&
		(f.QuoteAsset == "" || f.QuoteAsset == in.QuoteAsset)
}

// CheckRevision fails with ErrRevisionMismatch when expected is set and is
// not the current revision.
func CheckRevision(what string, current uint64, expected *uint64) error {
	if expected != nil && *expected != current {
		return fmt.Errorf("%s is at revision %d, expected %d: %w", what, current, *expected, ErrRevisionMismatch)
	}
	return nil
}

// ConfigEntry is one runtime configuration value.
type ConfigEntry struct {
	Key   string
	Value string
	// Revision is the entry's position in the configuration store; it grows
	// with every change of any key.
	Revision  uint64
	UpdatedAt time.Time
}

// ConfigChange is a set or delete of a configuration key, as announced on
// md.config.changed.v1.
type ConfigChange struct {
	Key       string
	Value     string
	Revision  uint64
	Deleted   bool
	ChangedAt time.Time
	Actor     string
}

// MaxConfigKeyLen bounds a configuration key; it is also the longest topic key.
const MaxConfigKeyLen = 128

// ValidateConfigKey accepts lower-case dot-separated words
// ("risk.max_order_notional"): each word is one or more of a-z, 0-9, '_'
// and '-'; at most MaxConfigKeyLen bytes in all.
func ValidateConfigKey(key string) error {
	if key == "" {
		return errors.New("is required")
	}
	if len(key) > MaxConfigKeyLen {
		return fmt.Errorf("must be at most %d characters, got %d", MaxConfigKeyLen, len(key))
	}
	for word := range strings.SplitSeq(key, ".") {
		if word == "" {
			return fmt.Errorf("%q: words separated by single dots, without a leading or trailing dot", key)
		}
		for i := 0; i < len(word); i++ {
			if !isConfigKeyChar(word[i]) {
				return fmt.Errorf("%q: only a-z, 0-9, '_', '-' and '.' between words are allowed", key)
			}
		}
	}
	return nil
}

// ValidateConfigPrefix accepts "" or the start of a configuration key.
func ValidateConfigPrefix(prefix string) error {
	if len(prefix) > MaxConfigKeyLen {
		return fmt.Errorf("must be at most %d characters, got %d", MaxConfigKeyLen, len(prefix))
	}
	for i := 0; i < len(prefix); i++ {
		if c := prefix[i]; !isConfigKeyChar(c) && c != '.' {
			return fmt.Errorf("%q: only a-z, 0-9, '_', '-' and '.' are allowed", prefix)
		}
	}
	return nil
}

func isConfigKeyChar(c byte) bool {
	return ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '_' || c == '-'
}

// ConfigTopicKey is the partition key of a configuration key on
// md.config.changed.v1. A topic key is one subject token, so the dots
// between words become ':' ("risk.max_order_notional" is published under
// "risk:max_order_notional"); ':' never occurs in a configuration key, so
// the mapping is one to one. The event payload carries the key itself.
func ConfigTopicKey(key string) string { return strings.ReplaceAll(key, ".", ":") }

// page returns the items after the token key, at most size, and the token
// of the next page ("" on the last page). keyOf gives an item's sort key;
// items are sorted by it.
func page[T any](items []T, keyOf func(T) string, after string, size int) ([]T, string) {
	start, _ := slices.BinarySearchFunc(items, after, func(it T, k string) int { return strings.Compare(keyOf(it), k) })
	if after != "" && start < len(items) && keyOf(items[start]) == after {
		start++
	}
	items = items[start:]
	if len(items) <= size {
		return items, ""
	}
	return items[:size], keyOf(items[size-1])
}
