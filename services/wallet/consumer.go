package wallet

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

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

// settle applies engine events: trades move funds, cancels, rejects and
// expiries release what remains of the order's hold. It settles m together
// with the events of its instrument already stored after it (up to
// Config.SettleBatch in all), as one journal write: their own deliveries
// come later and are skipped, as is anything at or before the last
// settled sequence of the instrument (a redelivery or a replay).
func (s *Service) settle(ctx context.Context, m *streams.Message[*enginev1.EngineEvent]) error {
	inst := m.Payload.GetInstrumentId()
	if s.covered(inst) >= m.Sequence {
		return nil
	}
	first, err := s.settlement(ctx, m.Payload, m.Sequence)
	if err != nil {
		return err
	}
	run := append([]settlement{first}, s.readAhead(ctx, inst, m.Sequence)...)
	var accounts []string
	traces := map[uint64]context.Context{}
	for _, st := range run {
		accounts = append(accounts, st.accounts...)
		if st.trace != nil {
			traces[st.seq] = st.trace
		}
	}
	ctx = withEventTraces(ctx, traces)
	var planned int
	err = s.st.update(ctx, accounts, func(tx *Tx) error {
		planned, err = planRun(tx, inst, run)
		return err
	}, func(*Book) {})
	switch {
	case err == nil:
		s.cover(inst, run[planned-1].seq)
		return nil
	case errors.Is(err, ErrPoolShort):
		// Nothing is lost: the event waits until the fund can pay.
		s.log.ErrorContext(ctx, "perpetual settlement waits for the insurance fund: deposit into it",
			"instrument", inst, "event", m.Payload.GetEventId(), "account", s.cfg.InsuranceAccount, "error", err)
		return fmt.Errorf("settle %s event %s: %w", inst, m.Payload.GetEventId(), err)
	case errors.Is(err, ErrInsufficientFunds), errors.Is(err, ErrHoldNotFound),
		errors.Is(err, ErrInvalidArgument), errors.Is(err, ErrOverflow):
		return streams.Permanent(fmt.Errorf("settle %s event %s: %w", inst, m.Payload.GetEventId(), err))
	default:
		return fmt.Errorf("settle %s event %s: %w", inst, m.Payload.GetEventId(), err)
	}
}

// settlement is one engine event ready to plan: what it does to the book
// (nil: no funds move) and the accounts it touches.
type settlement struct {
	seq      uint64
	plan     func(tx *Tx) error
	accounts []string
	// entries bounds the journal entries plan makes.
	entries int
	// trace, for an event read ahead, is its message's context: the
	// entries it causes continue its trace (nil: the delivered event's,
	// the handler's context).
	trace context.Context //nolint:containedctx // an event's own trace, used only while its entries are written
}

// maxRunEntries bounds the journal entries of one settlement write (an
// atomic batch holds 1,000 messages).
const maxRunEntries = 990

// planRun plans the settlements of run in order into tx and returns how
// many it planned. When one after the first fails, tx holds the ones
// before it: the failing event is settled (and refused) on its own
// delivery. Each skips what the journal settled before.
func planRun(tx *Tx, inst string, run []settlement) (int, error) {
	for i, st := range run {
		if st.plan == nil || tx.book.EngineSequence(inst) >= st.seq {
			continue
		}
		if i > 0 && len(tx.Entries)+st.entries > maxRunEntries {
			return i, nil // the rest in the next write
		}
		if err := st.plan(tx); err != nil {
			if i == 0 {
				return 0, err
			}
			tx.Reset()
			return planRun(tx, inst, run[:i])
		}
	}
	return len(run), nil
}

// readAhead returns the settlements of the events of inst stored after
// seq, up to Config.SettleBatch-1, ending before the first that cannot be
// read or converted (its own delivery reports it). Failing to read ahead
// is not an error: the delivered event is settled alone.
func (s *Service) readAhead(ctx context.Context, inst string, seq uint64) []settlement {
	if s.cfg.SettleBatch < 2 {
		return nil
	}
	stored, err := s.streams.Range(ctx, streams.TopicEngineEvent, inst, seq+1, s.cfg.SettleBatch-1)
	if err != nil {
		return nil
	}
	var out []settlement
	for _, m := range stored {
		ev := &enginev1.EngineEvent{}
		if proto.Unmarshal(m.Data, ev) != nil || ev.GetInstrumentId() != inst {
			break
		}
		st, err := s.settlement(ctx, ev, m.Sequence)
		if err != nil {
			break
		}
		st.trace = streams.ContextFrom(ctx, m.Header)
		out = append(out, st)
	}
	return out
}

// settlement converts an engine event of stream sequence seq.
func (s *Service) settlement(ctx context.Context, ev *enginev1.EngineEvent, seq uint64) (settlement, error) {
	if mark := ev.GetMarkPrice(); mark != "" {
		s.noteMark(ev.GetInstrumentId(), mark, seq)
	}
	cause := Entry{Instrument: ev.GetInstrumentId(), EngineEventID: ev.GetEventId(), EngineSequence: seq}
	release := func(acct, order string) (settlement, error) {
		return settlement{seq: seq, plan: s.releaseOrder(acct, order, cause), accounts: []string{acct}, entries: 1}, nil
	}
	if movesPositions(ev) {
		return s.perpetualSettlement(ctx, ev, seq)
	}
	switch e := ev.GetEvent().(type) {
	case *enginev1.EngineEvent_Trade:
		tr, err := s.trade(ctx, ev, e.Trade, seq)
		if err != nil {
			return settlement{}, err
		}
		accounts := []string{tr.BuyAccount, tr.SellAccount}
		if tr.BuyFee > 0 || tr.SellFee > 0 {
			accounts = append(accounts, tr.FeeAccount) // written too: locked with the others
		}
		return settlement{seq: seq, plan: func(tx *Tx) error { return tx.Settle(tr) }, accounts: accounts, entries: 9}, nil
	case *enginev1.EngineEvent_Cancelled:
		return release(e.Cancelled.GetAccountId(), e.Cancelled.GetOrderId())
	case *enginev1.EngineEvent_Rejected:
		if e.Rejected.GetReason() == commonv1.RejectReason_REJECT_REASON_DUPLICATE_ORDER {
			// A copy of a submit already executed (a retry after the
			// duplicate window): the hold is the original order's, which
			// is working or settled on its own.
			return settlement{seq: seq}, nil
		}
		return release(e.Rejected.GetAccountId(), e.Rejected.GetOrderId())
	case *enginev1.EngineEvent_Expired:
		return release(e.Expired.GetAccountId(), e.Expired.GetOrderId())
	default:
		return settlement{seq: seq}, nil // accepted, cancel rejected: no funds move
	}
}

// mark is the last mark price the wallet saw for an instrument, at the
// engine event of sequence seq.
type mark struct {
	price string
	seq   uint64
}

// noteMark keeps the mark price of the latest engine event of inst.
func (s *Service) noteMark(inst, price string, seq uint64) {
	s.coverMu.Lock()
	defer s.coverMu.Unlock()
	if m := s.marks[inst]; seq > m.seq {
		s.marks[inst] = mark{price: price, seq: seq}
	}
}

// markOf is the last mark price seen for inst: from the engine events
// settled since the start, else from the instrument's last engine event
// (the last of a command, which carries the mark); "" when there is none.
func (s *Service) markOf(ctx context.Context, inst string) string {
	s.coverMu.Lock()
	m := s.marks[inst]
	s.coverMu.Unlock()
	if m.price != "" {
		return m.price
	}
	last, err := s.streams.Last(ctx, streams.TopicEngineEvent, inst)
	if err != nil {
		return ""
	}
	ev := &enginev1.EngineEvent{}
	if proto.Unmarshal(last.Data, ev) != nil || ev.GetMarkPrice() == "" {
		return ""
	}
	s.noteMark(inst, ev.GetMarkPrice(), last.Sequence)
	return ev.GetMarkPrice()
}

// covered is the last engine sequence of inst this instance settled or
// found nothing to settle in; cover raises it after a commit.
func (s *Service) covered(inst string) uint64 {
	s.coverMu.Lock()
	defer s.coverMu.Unlock()
	var settled uint64
	s.st.read(func(b *Book) { settled = b.EngineSequence(inst) })
	return max(s.through[inst], settled)
}

func (s *Service) cover(inst string, seq uint64) {
	s.coverMu.Lock()
	defer s.coverMu.Unlock()
	s.through[inst] = max(s.through[inst], seq)
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
	var fees [2]int64 // taker's, maker's
	for i, f := range []struct{ field, text string }{{"trade.taker_fee", t.GetTakerFee()}, {"trade.maker_fee", t.GetMakerFee()}} {
		if f.text == "" {
			continue
		}
		v, err := decimal.ParseNonNegative(f.text, ps+qs)
		if err == nil {
			v, err = decimal.Rescale(v, ps+qs, s.cfg.scale(quote))
		}
		if err != nil {
			return Trade{}, bad(f.field, err)
		}
		fees[i] = v
	}
	tr := Trade{
		EventID: ev.GetEventId(), Instrument: ev.GetInstrumentId(), EngineSequence: seq,
		TradeID: t.GetTradeId(), BaseAsset: base, QuoteAsset: quote, Base: baseAmt, Quote: quoteAmt,
		FeeAccount: s.cfg.FeeAccountPrefix + ev.GetInstrumentId(),
	}
	taker := [2]string{t.GetTakerAccountId(), t.GetTakerOrderId()}
	maker := [2]string{t.GetMakerAccountId(), t.GetMakerOrderId()}
	buy, sell, buyDone, sellDone := taker, maker, takerDone, makerDone
	tr.BuyFee, tr.SellFee = fees[0], fees[1]
	switch t.GetTakerSide() {
	case commonv1.Side_SIDE_BUY:
	case commonv1.Side_SIDE_SELL:
		buy, sell, buyDone, sellDone = maker, taker, makerDone, takerDone
		tr.BuyFee, tr.SellFee = fees[1], fees[0]
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

// eventTracesKey is the context key of the traces of a settlement run's
// events read ahead, by engine sequence.
type eventTracesKey struct{}

// withEventTraces returns ctx carrying the traces of a run's events read
// ahead: the journal write puts each entry in its event's trace.
func withEventTraces(ctx context.Context, traces map[uint64]context.Context) context.Context {
	if len(traces) == 0 {
		return ctx
	}
	return context.WithValue(ctx, eventTracesKey{}, traces)
}

// eventTrace is the trace of the engine event of sequence seq when it was
// read ahead in the run of ctx, else nil.
func eventTrace(ctx context.Context, seq uint64) context.Context {
	traces, _ := ctx.Value(eventTracesKey{}).(map[uint64]context.Context)
	return traces[seq]
}
