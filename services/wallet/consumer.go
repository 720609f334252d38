package wallet

import (
	"context"
	"errors"
	"fmt"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/streams"
)

// consume starts settling engine.event.v1: one instrument's events in
// order, acked synchronously after their journal entries are stored. Each
// instrument first catches up from the last event the journal settled, so
// that the events a crashed instance had fetched but not acknowledged are
// settled before later ones (settle skips anything at or before that).
func (s *Service) consume(ctx context.Context) (*streams.Consumer, error) {
	return streams.Consume(ctx, s.streams, streams.TopicEngineEvent,
		streams.ConsumerConfig{
			Name: s.cfg.ConsumerName, Ordering: streams.PerKey, Concurrency: s.cfg.Concurrency,
			AckSync: true, AckWait: s.cfg.AckWait, Logger: s.log, Resume: s.settled,
			// Only a Permanent failure may skip an event (funds would be
			// lost); anything else is the broker away, retried until back.
			MaxDeliver: 1_000_000,
		}, s.settle)
}

// settled is the stream sequence of the last engine event of instrument
// whose settlement is in the journal.
func (s *Service) settled(_ context.Context, instrument string) (uint64, error) {
	var seq uint64
	s.st.read(func(b *Book) { seq = b.EngineSequence(instrument) })
	return seq, nil
}

// settle applies one engine event: trades move funds, cancels, rejects and
// expiries release what remains of the order's hold. An event at or before
// the last applied sequence of its instrument is skipped.
func (s *Service) settle(ctx context.Context, m *streams.Message[*enginev1.EngineEvent]) error {
	ev := m.Payload
	inst := ev.GetInstrumentId()
	cause := Entry{Instrument: inst, EngineEventID: ev.GetEventId(), EngineSequence: m.Sequence}
	var (
		plan     func(tx *Tx) error
		accounts []string
	)
	switch e := ev.GetEvent().(type) {
	case *enginev1.EngineEvent_Trade:
		tr, err := s.trade(ctx, ev, e.Trade, m.Sequence)
		if err != nil {
			return err
		}
		plan, accounts = func(tx *Tx) error { return tx.Settle(tr) }, []string{tr.BuyAccount, tr.SellAccount}
	case *enginev1.EngineEvent_Cancelled:
		plan, accounts = s.releaseOrder(e.Cancelled.GetAccountId(), e.Cancelled.GetOrderId(), cause), []string{e.Cancelled.GetAccountId()}
	case *enginev1.EngineEvent_Rejected:
		if e.Rejected.GetReason() == commonv1.RejectReason_REJECT_REASON_DUPLICATE_ORDER {
			// A copy of a submit already executed (a retry after the
			// duplicate window): the hold is the original order's, which
			// is working or settled on its own.
			return nil
		}
		plan, accounts = s.releaseOrder(e.Rejected.GetAccountId(), e.Rejected.GetOrderId(), cause), []string{e.Rejected.GetAccountId()}
	case *enginev1.EngineEvent_Expired:
		plan, accounts = s.releaseOrder(e.Expired.GetAccountId(), e.Expired.GetOrderId(), cause), []string{e.Expired.GetAccountId()}
	default:
		return nil // accepted, cancel rejected: no funds move
	}
	err := s.st.update(ctx, accounts, func(tx *Tx) error {
		if tx.book.EngineSequence(inst) >= m.Sequence {
			return nil // applied before: a redelivery or a replay
		}
		return plan(tx)
	}, func(*Book) {})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrInsufficientFunds), errors.Is(err, ErrHoldNotFound),
		errors.Is(err, ErrInvalidArgument), errors.Is(err, ErrOverflow):
		return streams.Permanent(fmt.Errorf("settle %s event %s: %w", inst, ev.GetEventId(), err))
	default:
		return fmt.Errorf("settle %s event %s: %w", inst, ev.GetEventId(), err)
	}
}

// releaseOrder plans the release of what remains of an order's hold; an
// order without a hold (rejected before it was held) releases nothing.
func (s *Service) releaseOrder(acct, order string, cause Entry) func(tx *Tx) error {
	return func(tx *Tx) error {
		if _, ok := tx.book.Hold(acct, order); !ok {
			return nil
		}
		cause.EventID = cause.EngineEventID + "-release"
		_, err := tx.Release(acct, order, -1, cause)
		return err
	}
}

// trade converts an engine trade to the domain, with the instrument's
// assets and amounts at the assets' scales. quote = price * quantity.
func (s *Service) trade(ctx context.Context, ev *enginev1.EngineEvent, t *enginev1.Trade, seq uint64) (Trade, error) {
	inst, err := s.insts.Get(ctx, ev.GetInstrumentId())
	if err != nil {
		return Trade{}, fmt.Errorf("instrument %s: %w", ev.GetInstrumentId(), err)
	}
	bad := func(field string, err error) error {
		return streams.Permanent(fmt.Errorf("trade %s: %w", ev.GetEventId(), invalid(field, err.Error())))
	}
	ps, qs := inst.GetPriceScale(), inst.GetQuantityScale()
	base, quote := inst.GetBaseAsset(), inst.GetQuoteAsset()
	price, err := decimal.ParseNonNegative(t.GetPrice(), ps)
	if err != nil {
		return Trade{}, bad("trade.price", err)
	}
	qty, err := decimal.ParseNonNegative(t.GetQuantity(), qs)
	if err != nil {
		return Trade{}, bad("trade.quantity", err)
	}
	baseAmt, err := decimal.Rescale(qty, qs, s.cfg.scale(base))
	if err != nil {
		return Trade{}, bad("trade.quantity", err)
	}
	quoteAmt, err := decimal.Mul(price, ps, qty, qs, s.cfg.scale(quote))
	if err != nil {
		return Trade{}, bad("trade.price", err)
	}
	takerDone, err := isZero(t.GetTakerRemainingQuantity(), qs)
	if err != nil {
		return Trade{}, bad("trade.taker_remaining_quantity", err)
	}
	makerDone, err := isZero(t.GetMakerRemainingQuantity(), qs)
	if err != nil {
		return Trade{}, bad("trade.maker_remaining_quantity", err)
	}
	tr := Trade{
		EventID: ev.GetEventId(), Instrument: ev.GetInstrumentId(), EngineSequence: seq,
		TradeID: t.GetTradeId(), BaseAsset: base, QuoteAsset: quote, Base: baseAmt, Quote: quoteAmt,
	}
	taker := [2]string{t.GetTakerAccountId(), t.GetTakerOrderId()}
	maker := [2]string{t.GetMakerAccountId(), t.GetMakerOrderId()}
	buy, sell, buyDone, sellDone := taker, maker, takerDone, makerDone
	switch t.GetTakerSide() {
	case commonv1.Side_SIDE_BUY:
	case commonv1.Side_SIDE_SELL:
		buy, sell, buyDone, sellDone = maker, taker, makerDone, takerDone
	default:
		return Trade{}, bad("trade.taker_side", errors.New("must be buy or sell"))
	}
	tr.BuyAccount, tr.BuyOrder, tr.BuyFilled = buy[0], buy[1], buyDone
	tr.SellAccount, tr.SellOrder, tr.SellFilled = sell[0], sell[1], sellDone
	return tr, nil
}

func isZero(text string, scale int32) (bool, error) {
	if text == "" {
		return false, nil
	}
	v, err := decimal.ParseNonNegative(text, scale)
	return v == 0, err
}
