package wallet

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// A perpetual's money (docs/perpetuals.md): the matching engine keeps the
// positions and says, per engine event, what each account's position
// became and what moved; the wallet moves it. Margins live in the
// instrument's margin account (Config.MarginAccountPrefix), not in the
// accounts: realized gains are paid from it while the losses that pay for
// them are still margin of open positions, so only the pooled margins can
// pay them. It holds the sum of the open positions' equities; the
// insurance fund's account pays the shortfalls of bankrupt positions into
// it and takes funding's roundings from it.

// PositionState is an account's position in one perpetual as the engine
// keeps it: Size at the instrument's quantity scale (a decimal string: the
// wallet keeps no instrument scales), Value and Margin in units of the
// quote asset.
type PositionState struct {
	Instrument    string
	Size          string
	Value, Margin int64
}

// closed reports whether the state is a flat position.
func (p PositionState) closed() bool { return strings.Trim(p.Size, "-0.") == "" }

// Position is an account's open position as the wallet records it.
type Position struct {
	Account, Asset string
	PositionState
	// Revision is the account's journal sequence of its last change.
	Revision  uint64
	UpdatedAt time.Time
}

// ErrPoolShort means a perpetual's margin account or the insurance fund cannot
// pay what a settlement asks (the fund is exhausted: auto-deleveraging is
// out of scope). The settlement waits and is retried: an operator's
// deposit into the insurance fund lets it through.
var ErrPoolShort = errors.New("perpetual margin pool short")

// PositionMove is what one engine event did to one account's position:
// the order hold its margin and fee come from ("" for none: a
// liquidation's or a takeover's), what the account gets back, what the
// insurance fund pays for it, and the position after. Amounts are in
// units of the quote asset.
type PositionMove struct {
	Account, Order string
	// Role names the move in entry ids ("taker", "maker", ...): unique
	// within the event.
	Role string
	// FromOrder is the margin taken from the order's hold; Fee the fee
	// paid from it.
	FromOrder, Fee int64
	// Payout goes from the margin account to the account's balance.
	Payout int64
	// Shortfall is paid by the insurance fund into the margin account.
	Shortfall int64
	// Filled: the order has nothing left; the rest of its hold is released.
	Filled bool
	After  PositionState
}

// PositionSettlement is one engine event of a perpetual: its moves, and
// for funding what the margin account pays the insurance fund (negative:
// receives from it).
type PositionSettlement struct {
	EventID, Instrument, TradeID string
	EngineSequence               uint64
	Asset                        string
	MarginAccount                string
	InsuranceAccount             string
	FeeAccount                   string
	Moves                        []PositionMove
	Insurance                    int64
}

// entriesOf bounds the journal entries a settlement with n moves makes:
// per move margin, fee, payout, leftover release and position; the margin
// account, the fund and the fee account once.
func entriesOf(moves int) int { return 5*moves + 3 }

// SettlePositions applies a perpetual's engine event: margins and fees
// from the orders' holds, shortfalls from the insurance fund, payouts to
// the accounts, all through the instrument's margin account, whose
// balance must stay >= 0 (ErrPoolShort), then the positions' new states.
func (t *Tx) SettlePositions(ps PositionSettlement) error {
	cause := Entry{Instrument: ps.Instrument, EngineEventID: ps.EventID, EngineSequence: ps.EngineSequence, TradeID: ps.TradeID}
	var pool, fund, fees int64 // the margin account's, the fund's and the fee account's changes
	for _, m := range ps.Moves {
		if m.FromOrder < 0 || m.Fee < 0 || m.Payout < 0 || m.Shortfall < 0 {
			return invalid("position", fmt.Sprintf("%s of %s: negative amount", m.Role, ps.EventID))
		}
		if m.FromOrder > 0 {
			c := cause
			c.Reason = ReasonMargin
			if err := t.payFromHold(m.Account, m.Order, ps.Asset, m.FromOrder, c, m.Role+"-margin"); err != nil {
				return err
			}
			pool += m.FromOrder
		}
		if m.Fee > 0 {
			c := cause
			c.Reason = ReasonFee
			if err := t.payFromHold(m.Account, m.Order, ps.Asset, m.Fee, c, m.Role+"-fee"); err != nil {
				return err
			}
			fees += m.Fee
		}
		pool += m.Shortfall - m.Payout
		fund -= m.Shortfall
	}
	pool -= ps.Insurance
	fund += ps.Insurance
	if fund < 0 { // paid into the pool first, so that the pool can pay
		if err := t.poolChange(cause, ps.InsuranceAccount, ps.Asset, fund, "insurance"); err != nil {
			return err
		}
	}
	if err := t.poolChange(cause, ps.MarginAccount, ps.Asset, pool, "margin-pool"); err != nil {
		return err
	}
	if fund > 0 {
		if err := t.poolChange(cause, ps.InsuranceAccount, ps.Asset, fund, "insurance"); err != nil {
			return err
		}
	}
	if fees > 0 {
		if ps.FeeAccount == "" {
			return invalid("trade.fee", "a fee with no fee account")
		}
		e := cause
		e.EventID, e.Account, e.Asset, e.Reason = ps.EventID+"-fee", ps.FeeAccount, ps.Asset, ReasonFee
		if _, err := t.change(e, fees, 0); err != nil {
			return err
		}
	}
	for _, m := range ps.Moves {
		if err := t.closeMove(cause, ps, m); err != nil {
			return err
		}
	}
	return nil
}

// closeMove pays a move out, releases its order's leftover and records
// the position after it.
func (t *Tx) closeMove(cause Entry, ps PositionSettlement, m PositionMove) error {
	if m.Payout > 0 {
		e := cause
		e.EventID, e.Account, e.Asset, e.Reason, e.OrderID = ps.EventID+"-"+m.Role+"-payout", m.Account, ps.Asset, ReasonMargin, m.Order
		if _, err := t.change(e, m.Payout, 0); err != nil {
			return err
		}
	}
	if m.Filled && m.Order != "" {
		if _, ok := t.hold(m.Account, m.Order); ok {
			rel := cause
			rel.TradeID, rel.EventID = "", ps.EventID+"-"+m.Role+"-leftover"
			if _, err := t.Release(m.Account, m.Order, -1, rel); err != nil {
				return err
			}
		}
	}
	e := cause
	e.EventID, e.Account, e.Asset, e.Reason, e.OrderID = ps.EventID+"-"+m.Role+"-position", m.Account, ps.Asset, ReasonPosition, m.Order
	after := m.After
	after.Instrument = ps.Instrument
	e.Position = &after
	_, err := t.change(e, 0, 0)
	return err
}

// poolChange moves delta into (or out of) a margin or insurance account; a
// pool that cannot pay is ErrPoolShort.
func (t *Tx) poolChange(cause Entry, acct, asset string, delta int64, role string) error {
	if delta == 0 {
		return nil
	}
	if acct == "" {
		return invalid("position", "no margin or insurance account configured")
	}
	e := cause
	e.EventID, e.Account, e.Asset, e.Reason = cause.EngineEventID+"-"+role, acct, asset, ReasonInsurance
	if role == "margin-pool" {
		e.Reason = ReasonMargin
	}
	if _, err := t.change(e, delta, 0); err != nil {
		if errors.Is(err, ErrInsufficientFunds) {
			return fmt.Errorf("%w: %s cannot pay %d units of %s for %s", ErrPoolShort, acct, -delta, asset, cause.EngineEventID)
		}
		return err
	}
	return nil
}

// Position returns acct's open position in instrument.
func (b *Book) Position(acct, instrument string) (Position, bool) {
	p, ok := b.positions[key(acct, instrument)]
	if !ok {
		return Position{}, false
	}
	return *p, true
}

// Positions returns the open positions of acct ("" for every account),
// ordered by account then instrument.
func (b *Book) Positions(acct string) []Position {
	var out []Position
	for _, p := range b.positions {
		if acct == "" || p.Account == acct {
			out = append(out, *p)
		}
	}
	slices.SortFunc(out, func(x, y Position) int {
		return cmp.Or(cmp.Compare(x.Account, y.Account), cmp.Compare(x.Instrument, y.Instrument))
	})
	return out
}

// applyPosition records the position state a POSITION entry carries.
func (b *Book) applyPosition(e Entry) {
	if e.Reason != ReasonPosition || e.Position == nil {
		return
	}
	k := key(e.Account, e.Position.Instrument)
	if e.Position.closed() {
		delete(b.positions, k)
		return
	}
	b.positions[k] = &Position{Account: e.Account, Asset: e.Asset, PositionState: *e.Position, Revision: e.Sequence, UpdatedAt: e.Time}
}
