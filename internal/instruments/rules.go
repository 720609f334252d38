package instruments

import (
	"errors"
	"fmt"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
)

// Errors of the rule checks, told apart with errors.Is.
var (
	// ErrHalted: the instrument does not trade now.
	ErrHalted = errors.New("instrument halted")
	// ErrPriceTick: the price is not a positive multiple of the tick size.
	ErrPriceTick = errors.New("price not on the tick size")
	// ErrQuantityLot: the quantity is not a positive multiple of the lot size.
	ErrQuantityLot = errors.New("quantity not on the lot size")
	// ErrMinQuantity: the quantity is below the minimum.
	ErrMinQuantity = errors.New("quantity below the minimum")
	// ErrMinNotional: price times quantity is below the minimum order value.
	ErrMinNotional = errors.New("order value below the minimum")
)

// Rules are an instrument's trading rules as fixed-point integers: prices
// at PriceScale, quantities at QuantityScale, order values at
// NotionalScale (their sum).
type Rules struct {
	Symbol        string
	Trading       bool
	PriceScale    int32
	QuantityScale int32
	TickSize      int64
	LotSize       int64
	MinQuantity   int64
	MinNotional   int64
	Revision      uint64
}

// NewRules parses the decimal rules of in.
func NewRules(in *metadatav1.Instrument) (Rules, error) {
	r := Rules{
		Symbol:        in.GetSymbol(),
		Trading:       in.GetStatus() == commonv1.InstrumentStatus_INSTRUMENT_STATUS_TRADING,
		PriceScale:    in.GetPriceScale(),
		QuantityScale: in.GetQuantityScale(),
		Revision:      in.GetRevision(),
	}
	var err error
	parse := func(field, s string, scale int32, dst *int64) {
		if err != nil {
			return
		}
		if *dst, err = decimal.ParseNonNegative(s, scale); err != nil {
			err = fmt.Errorf("instrument %s %s: %w", r.Symbol, field, err)
		}
	}
	parse("tick_size", in.GetTickSize(), r.PriceScale, &r.TickSize)
	parse("lot_size", in.GetLotSize(), r.QuantityScale, &r.LotSize)
	parse("min_quantity", in.GetMinQuantity(), r.QuantityScale, &r.MinQuantity)
	parse("min_notional", in.GetMinNotional(), r.NotionalScale(), &r.MinNotional)
	if err != nil {
		return Rules{}, err
	}
	if r.TickSize <= 0 || r.LotSize <= 0 {
		return Rules{}, fmt.Errorf("instrument %s: tick size and lot size must be positive", r.Symbol)
	}
	return r, nil
}

// NotionalScale is the scale of price times quantity.
func (r Rules) NotionalScale() int32 { return r.PriceScale + r.QuantityScale }

// ParsePrice reads a decimal price at the price scale.
func (r Rules) ParsePrice(s string) (int64, error) {
	v, err := decimal.Parse(s, r.PriceScale)
	if err != nil {
		return 0, fmt.Errorf("%s price: %w", r.Symbol, err)
	}
	return v, nil
}

// ParseQuantity reads a decimal quantity at the quantity scale.
func (r Rules) ParseQuantity(s string) (int64, error) {
	v, err := decimal.Parse(s, r.QuantityScale)
	if err != nil {
		return 0, fmt.Errorf("%s quantity: %w", r.Symbol, err)
	}
	return v, nil
}

// CheckTrading fails with ErrHalted unless the instrument trades.
func (r Rules) CheckTrading() error {
	if !r.Trading {
		return fmt.Errorf("%s: %w", r.Symbol, ErrHalted)
	}
	return nil
}

// CheckPrice fails with ErrPriceTick unless price (at PriceScale) is a
// positive multiple of the tick size.
func (r Rules) CheckPrice(price int64) error {
	if price <= 0 || !decimal.IsMultiple(price, r.TickSize) {
		return fmt.Errorf("%s price %s, tick size %s: %w", r.Symbol,
			decimal.FormatTrim(price, r.PriceScale), decimal.FormatTrim(r.TickSize, r.PriceScale), ErrPriceTick)
	}
	return nil
}

// CheckQuantity fails with ErrQuantityLot unless qty (at QuantityScale) is
// a positive multiple of the lot size, and with ErrMinQuantity when it is
// below the minimum.
func (r Rules) CheckQuantity(qty int64) error {
	if qty <= 0 || !decimal.IsMultiple(qty, r.LotSize) {
		return fmt.Errorf("%s quantity %s, lot size %s: %w", r.Symbol,
			decimal.FormatTrim(qty, r.QuantityScale), decimal.FormatTrim(r.LotSize, r.QuantityScale), ErrQuantityLot)
	}
	if qty < r.MinQuantity {
		return fmt.Errorf("%s quantity %s, minimum %s: %w", r.Symbol,
			decimal.FormatTrim(qty, r.QuantityScale), decimal.FormatTrim(r.MinQuantity, r.QuantityScale), ErrMinQuantity)
	}
	return nil
}

// Notional is price times qty at NotionalScale; exact, or an error wrapping
// decimal.ErrRange when it does not fit.
func (r Rules) Notional(price, qty int64) (int64, error) {
	return decimal.Mul(price, r.PriceScale, qty, r.QuantityScale, r.NotionalScale())
}

// CheckNotional fails with ErrMinNotional when price times qty is below the
// minimum order value.
func (r Rules) CheckNotional(price, qty int64) error {
	n, err := r.Notional(price, qty)
	if err != nil {
		return fmt.Errorf("%s order value: %w", r.Symbol, err)
	}
	if n < r.MinNotional {
		return fmt.Errorf("%s order value %s, minimum %s: %w", r.Symbol,
			decimal.FormatTrim(n, r.NotionalScale()), decimal.FormatTrim(r.MinNotional, r.NotionalScale()), ErrMinNotional)
	}
	return nil
}
