package perp

import (
	"fmt"
)

// Position is an account's netted position in one perpetual, with its
// isolated margin.
type Position struct {
	// Size is the signed quantity: above zero long, below zero short.
	Size int64
	// Value is the entry value of the open part: the signed notional
	// (price x quantity) of the fills that opened it, less what reductions
	// released. It has the sign of Size, and is 0 when Size is.
	Value int64
	// Margin is the isolated margin the position holds (amount, >= 0).
	Margin int64
}

// Change is what one fill did to a position and its money.
type Change struct {
	// Closed and Opened are the fill's quantity that reduced the position
	// and the quantity that opened or added to it (a flip has both).
	Closed, Opened int64
	// Realized is the PnL of the closed part.
	Realized int64
	// Released is the margin the closed part gave up (the position's
	// margin x closed / size, rounded toward zero).
	Released int64
	// Payout goes to the account's balance: Released + Realized when that
	// is not negative. A larger loss is taken from the margin left; what
	// that cannot cover either is the Shortfall, which the insurance fund
	// covers (only a position past its bankruptcy price has one).
	Payout, Shortfall int64
}

// Split divides a fill of signed quantity into the part that reduces the
// position and the part that opens or adds to it, both as quantities >= 0.
func (p Position) Split(quantity int64) (closing, opening int64) {
	if p.Size != 0 && sign(quantity) == -sign(p.Size) {
		closing = min(abs(quantity), abs(p.Size))
	}
	return closing, abs(quantity) - closing
}

// Reduces reports whether a fill of signed quantity only reduces the
// position (what a reduce-only order may do): the opposite side, and no
// more than the position's size.
func (p Position) Reduces(quantity int64) bool {
	closing, opening := p.Split(quantity)
	return closing > 0 && opening == 0
}

// Trade applies a fill of signed quantity (above zero a buy) at price.
// margin is the initial margin the order brings for the part that opens
// (see Split and InitialMargin); margin brought for a fill that opens
// nothing is paid out again.
func (p Position) Trade(quantity, price, margin int64) (Position, Change, error) {
	if quantity == 0 || price <= 0 || margin < 0 {
		return p, Change{}, fmt.Errorf("%w: fill of %d at %d with margin %d", ErrInvalid, quantity, price, margin)
	}
	var c Change
	c.Closed, c.Opened = p.Split(quantity)
	next := p
	if c.Closed > 0 {
		var err error
		if next, c, err = p.close(c, quantity, price); err != nil {
			return p, Change{}, err
		}
	}
	if c.Opened == 0 {
		c.Payout += margin
		return next, c, nil
	}
	opened := sign(quantity) * c.Opened
	notional, err := Notional(price, opened)
	if err != nil {
		return p, Change{}, err
	}
	if next.Size, err = add(next.Size, opened); err != nil {
		return p, Change{}, err
	}
	if next.Value, err = add(next.Value, notional); err != nil {
		return p, Change{}, err
	}
	if next.Margin, err = add(next.Margin, margin); err != nil {
		return p, Change{}, err
	}
	return next, c, nil
}

// close applies the closing part c.Closed of a fill of quantity at price.
func (p Position) close(c Change, quantity, price int64) (Position, Change, error) {
	closed := sign(quantity) * c.Closed // opposite to p.Size
	notional, err := Notional(price, closed)
	if err != nil {
		return p, c, err
	}
	size := abs(p.Size)
	released, err := mulDiv(p.Value, c.Closed, size, towardZero)
	if err != nil {
		return p, c, err
	}
	// Bought back (closed > 0) for notional a short opened for -released,
	// or sold (closed < 0) for -notional what cost released.
	if c.Realized, err = add(-notional, -released); err != nil {
		return p, c, err
	}
	if c.Released, err = mulDiv(p.Margin, c.Closed, size, towardZero); err != nil {
		return p, c, err
	}
	next := Position{Size: p.Size + closed, Value: p.Value - released, Margin: p.Margin - c.Released}
	cash, err := add(c.Released, c.Realized)
	if err != nil {
		return p, c, err
	}
	if cash >= 0 {
		c.Payout = cash
		return next, c, nil
	}
	taken := min(-cash, next.Margin)
	next.Margin -= taken
	c.Shortfall = -cash - taken
	return next, c, nil
}

// Unrealized is the PnL of closing the whole position at mark:
// size x mark - value.
func (p Position) Unrealized(mark int64) (int64, error) {
	at, err := Notional(mark, p.Size)
	if err != nil {
		return 0, err
	}
	return add(at, -p.Value)
}

// Equity is the margin plus the unrealized PnL at mark.
func (p Position) Equity(mark int64) (int64, error) {
	u, err := p.Unrealized(mark)
	if err != nil {
		return 0, err
	}
	return add(p.Margin, u)
}

// Maintenance is the margin the position must keep at mark:
// |size| x mark x rate (millionths), rounded up.
func (p Position) Maintenance(mark, rate int64) (int64, error) {
	n, err := Notional(mark, abs(p.Size))
	if err != nil {
		return 0, err
	}
	return mulDiv(n, rate, RateUnit, awayFromZero)
}

// Liquidatable reports whether the position's equity at mark is below its
// maintenance margin at rate (millionths). A flat position never is.
func (p Position) Liquidatable(mark, rate int64) (bool, error) {
	if p.Size == 0 {
		return false, nil
	}
	eq, err := p.Equity(mark)
	if err != nil {
		return false, err
	}
	mm, err := p.Maintenance(mark, rate)
	if err != nil {
		return false, err
	}
	return eq < mm, nil
}

// LiquidationPrice is the mark price at which the position's equity meets
// its maintenance margin at rate: (value - margin) / (size x (1 -/+ rate)),
// rounded up for a long and down for a short (the side the mark comes
// from). ok is false for a flat position and for a long whose margin
// covers its whole value (no positive price liquidates it).
func (p Position) LiquidationPrice(rate int64) (price int64, ok bool, err error) {
	if p.Size == 0 {
		return 0, false, nil
	}
	num, err := add(p.Value, -p.Margin)
	if err != nil {
		return 0, false, err
	}
	factor := int64(RateUnit) - sign(p.Size)*rate // 1 - rate for a long, 1 + rate for a short
	if factor <= 0 {
		return 0, false, fmt.Errorf("%w: maintenance rate %d", ErrInvalid, rate)
	}
	den, err := mulDiv(p.Size, factor, 1, towardZero)
	if err != nil {
		return 0, false, err
	}
	return priceFrom(num, den)
}

// BankruptcyPrice is the mark price at which the position's equity is
// zero: (value - margin) / size, rounded like LiquidationPrice.
func (p Position) BankruptcyPrice() (price int64, ok bool, err error) {
	if p.Size == 0 {
		return 0, false, nil
	}
	num, err := add(p.Value, -p.Margin)
	if err != nil {
		return 0, false, err
	}
	den, err := mulDiv(p.Size, RateUnit, 1, towardZero)
	if err != nil {
		return 0, false, err
	}
	return priceFrom(num, den)
}

// priceFrom is num x RateUnit / den as a price: den is size x factor
// (millionths), num an amount; a result at or below zero is no price.
func priceFrom(num, den int64) (int64, bool, error) {
	if sign(num) != sign(den) || num == 0 {
		return 0, false, nil
	}
	mode := towardZero // a short's price rounds down
	if den > 0 {
		mode = awayFromZero // a long's rounds up
	}
	price, err := mulDiv(abs(num), RateUnit, abs(den), mode)
	return price, price > 0, err
}

// MaxRemovable is how much margin may leave the position at mark with
// leverage: what stays must cover the initial margin of the position at
// mark, and an unrealized loss counts against it.
func (p Position) MaxRemovable(mark, leverage int64) (int64, error) {
	if p.Size == 0 {
		return p.Margin, nil
	}
	n, err := Notional(mark, p.Size)
	if err != nil {
		return 0, err
	}
	im, err := InitialMargin(n, leverage)
	if err != nil {
		return 0, err
	}
	u, err := p.Unrealized(mark)
	if err != nil {
		return 0, err
	}
	free := p.Margin - im + min(u, 0)
	return max(free, 0), nil
}

// EntryPrice is the average entry price, value / size rounded toward
// zero; ok is false for a flat position.
func (p Position) EntryPrice() (price int64, ok bool, err error) {
	if p.Size == 0 {
		return 0, false, nil
	}
	price, err = mulDiv(abs(p.Value), 1, abs(p.Size), towardZero)
	return price, err == nil, err
}

// WithMargin is the position with delta added to its margin (a removal
// below zero); the margin may not go below zero.
func (p Position) WithMargin(delta int64) (Position, error) {
	m, err := add(p.Margin, delta)
	if err != nil {
		return p, err
	}
	if m < 0 {
		return p, fmt.Errorf("%w: margin %d %+d", ErrInvalid, p.Margin, delta)
	}
	p.Margin = m
	return p, nil
}
