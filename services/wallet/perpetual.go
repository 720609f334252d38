package wallet

import (
	"context"
	"errors"
	"fmt"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/streams"
)

// perpetualSettlement converts a perpetual's engine event that moves
// positions (a trade, funding, a takeover) into the wallet's terms, with
// amounts at the quote asset's scale.
func (s *Service) perpetualSettlement(ctx context.Context, ev *enginev1.EngineEvent, seq uint64) (settlement, error) {
	inst, err := s.insts.Get(ctx, ev.GetInstrumentId())
	if err != nil {
		return settlement{}, fmt.Errorf("instrument %s: %w", ev.GetInstrumentId(), err)
	}
	if err := checkPerpetual(inst); err != nil {
		return settlement{}, streams.Permanent(fmt.Errorf("event %s: %w", ev.GetEventId(), err))
	}
	c := perpConverter{ev: ev, notional: inst.GetPriceScale() + inst.GetQuantityScale(), scale: s.cfg.scale(inst.GetQuoteAsset())}
	ps := PositionSettlement{
		EventID: ev.GetEventId(), Instrument: ev.GetInstrumentId(), EngineSequence: seq, Asset: inst.GetQuoteAsset(),
		MarginAccount: s.cfg.MarginAccountPrefix + ev.GetInstrumentId(), InsuranceAccount: s.cfg.InsuranceAccount,
		FeeAccount: s.cfg.FeeAccountPrefix + ev.GetInstrumentId(),
	}
	switch e := ev.GetEvent().(type) {
	case *enginev1.EngineEvent_Trade:
		ps.TradeID = e.Trade.GetTradeId()
		ps.Moves, err = c.trade(e.Trade, inst)
	case *enginev1.EngineEvent_Funding:
		ps.Moves, ps.Insurance, err = c.funding(e.Funding)
	case *enginev1.EngineEvent_TakenOver:
		ps.Moves, err = c.takeover(e.TakenOver)
	case *enginev1.EngineEvent_MarginAdjusted:
		// An add comes from the command's hold (its id is the command id).
		var m PositionMove
		m, err = c.change("margin_adjusted.position", e.MarginAdjusted.GetPosition(), e.MarginAdjusted.GetAccountId(), ev.GetCommandId(), "margin")
		m.Filled = true
		ps.Moves = []PositionMove{m}
	}
	if err != nil {
		return settlement{}, streams.Permanent(fmt.Errorf("event %s: %w", ev.GetEventId(), err))
	}
	accounts := []string{ps.MarginAccount, ps.InsuranceAccount, ps.FeeAccount}
	for _, m := range ps.Moves {
		accounts = append(accounts, m.Account)
	}
	return settlement{seq: seq, plan: func(tx *Tx) error { return tx.SettlePositions(ps) }, accounts: accounts,
		entries: entriesOf(len(ps.Moves))}, nil
}

// movesPositions reports whether ev is a perpetual's event that changes
// positions.
func movesPositions(ev *enginev1.EngineEvent) bool {
	switch e := ev.GetEvent().(type) {
	case *enginev1.EngineEvent_Trade:
		return e.Trade.GetTakerPosition() != nil || e.Trade.GetMakerPosition() != nil
	case *enginev1.EngineEvent_Funding, *enginev1.EngineEvent_TakenOver, *enginev1.EngineEvent_MarginAdjusted:
		return true
	}
	return false
}

// perpConverter reads one engine event's amounts: at the notional scale
// there, at the quote asset's scale here.
type perpConverter struct {
	ev              *enginev1.EngineEvent
	notional, scale int32
}

// amount reads a signed amount; field names it in errors.
func (c perpConverter) amount(field, text string) (int64, error) {
	if text == "" {
		return 0, nil
	}
	v, err := decimal.Parse(text, c.notional)
	if err == nil {
		v, err = decimal.Rescale(v, c.notional, c.scale)
	}
	if err != nil {
		return 0, invalid(field, err.Error())
	}
	return v, nil
}

// change reads a PositionChange into a move of acct's order.
func (c perpConverter) change(field string, pc *enginev1.PositionChange, acct, order, role string) (PositionMove, error) {
	if pc == nil {
		return PositionMove{}, invalid(field, "missing: a perpetual's trade needs both sides' positions")
	}
	m := PositionMove{Account: acct, Order: order, Role: role, After: PositionState{Size: pc.GetSize()}}
	var err error
	for _, f := range []struct {
		name, text string
		into       *int64
	}{
		{"margin_from_order", pc.GetMarginFromOrder(), &m.FromOrder}, {"payout", pc.GetPayout(), &m.Payout},
		{"shortfall", pc.GetShortfall(), &m.Shortfall}, {"entry_value", pc.GetEntryValue(), &m.After.Value},
		{"margin", pc.GetMargin(), &m.After.Margin},
	} {
		if *f.into, err = c.amount(field+"."+f.name, f.text); err != nil {
			return PositionMove{}, err
		}
	}
	if pc.GetSize() == "" {
		return PositionMove{}, invalid(field+".size", "missing")
	}
	return m, nil
}

// trade reads a perpetual's trade: both sides' moves, with their fees and
// whether their orders are done.
func (c perpConverter) trade(t *enginev1.Trade, inst *metadatav1.Instrument) ([]PositionMove, error) {
	taker, err := c.change("trade.taker_position", t.GetTakerPosition(), t.GetTakerAccountId(), t.GetTakerOrderId(), "taker")
	if err != nil {
		return nil, err
	}
	maker, err := c.change("trade.maker_position", t.GetMakerPosition(), t.GetMakerAccountId(), t.GetMakerOrderId(), "maker")
	if err != nil {
		return nil, err
	}
	if taker.Fee, err = c.fee("trade.taker_fee", t.GetTakerFee()); err != nil {
		return nil, err
	}
	if maker.Fee, err = c.fee("trade.maker_fee", t.GetMakerFee()); err != nil {
		return nil, err
	}
	qs := inst.GetQuantityScale()
	if taker.Filled, err = isZero(t.GetTakerRemainingQuantity(), qs); err != nil {
		return nil, invalid("trade.taker_remaining_quantity", err.Error())
	}
	if maker.Filled, err = isZero(t.GetMakerRemainingQuantity(), qs); err != nil {
		return nil, invalid("trade.maker_remaining_quantity", err.Error())
	}
	return []PositionMove{taker, maker}, nil
}

func (c perpConverter) fee(field, text string) (int64, error) {
	v, err := c.amount(field, text)
	if err == nil && v < 0 {
		err = invalid(field, "must not be negative")
	}
	return v, err
}

// funding reads a funding settlement: each payment changes a margin inside
// the margin account (no funds move for it); the margin account pays the
// fund the event's insurance amount.
func (c perpConverter) funding(f *enginev1.FundingSettled) ([]PositionMove, int64, error) {
	insurance, err := c.amount("funding.insurance", f.GetInsurance())
	if err != nil {
		return nil, 0, err
	}
	moves := make([]PositionMove, 0, len(f.GetPayments()))
	for i, p := range f.GetPayments() {
		margin, err := c.amount(fmt.Sprintf("funding.payments[%d].margin", i), p.GetMargin())
		if err != nil {
			return nil, 0, err
		}
		value, err := c.amount(fmt.Sprintf("funding.payments[%d].entry_value", i), p.GetEntryValue())
		if err != nil {
			return nil, 0, err
		}
		if p.GetSize() == "" {
			return nil, 0, invalid(fmt.Sprintf("funding.payments[%d].size", i), "missing")
		}
		moves = append(moves, PositionMove{Account: p.GetAccountId(), Role: "funding-" + p.GetAccountId(),
			After: PositionState{Size: p.GetSize(), Value: value, Margin: margin}})
	}
	return moves, insurance, nil
}

// takeover reads a liquidation's takeover: the account's close and the
// insurance fund's open, at the bankruptcy price.
func (c perpConverter) takeover(o *enginev1.PositionTakenOver) ([]PositionMove, error) {
	user, err := c.change("taken_over.position", o.GetPosition(), o.GetAccountId(), "", "liquidated")
	if err != nil {
		return nil, err
	}
	fund, err := c.change("taken_over.insurance_position", o.GetInsurancePosition(), o.GetInsuranceAccountId(), "", "insurance-fund")
	if err != nil {
		return nil, err
	}
	if user.FromOrder != 0 || fund.FromOrder != 0 {
		return nil, invalid("taken_over", "a takeover takes no order margin")
	}
	return []PositionMove{user, fund}, nil
}

// errNotPerpetual: a position change on an instrument that is not a
// perpetual.
var errNotPerpetual = errors.New("position change on an instrument that is not a perpetual")

// checkPerpetual refuses position changes of a spot instrument.
func checkPerpetual(inst *metadatav1.Instrument) error {
	if inst.GetKind() != commonv1.InstrumentKind_INSTRUMENT_KIND_PERPETUAL {
		return fmt.Errorf("%w: %s is %s", errNotPerpetual, inst.GetSymbol(), inst.GetKind())
	}
	return nil
}
