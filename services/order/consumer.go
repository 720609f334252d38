package order

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/streams"
)

// consume starts the durable consumer of engine.event.v1 that keeps order
// states.
func (s *Service) consume(ctx context.Context) (*streams.Consumer, error) {
	return streams.Consume(ctx, s.mesh, streams.TopicEngineEvent, streams.ConsumerConfig{
		Name: s.cfg.ConsumerName, Ordering: streams.PerKey, Concurrency: s.cfg.Concurrency, AckSync: true, Logger: s.log,
		AckWait: s.cfg.AckWait,
		// Only a Permanent failure may skip an event; anything else is the
		// broker away, and retried until it is back.
		MaxDeliver: 1_000_000,
		Resume:     s.resume,
	}, s.onEngineEvent)
}

// resume is the stream sequence of the last engine event applied for the
// instrument: events a crashed instance had fetched but not acknowledged
// are applied from there before later ones (which would make them skipped).
func (s *Service) resume(ctx context.Context, instrument string) (uint64, error) {
	p, err := s.runs.applied(ctx, instrument)
	return p.stream, err
}

// onEngineEvent applies m, and the events of its instrument already
// stored after it (up to Config.ApplyBatch in all), to the orders they
// name, with one write of the bucket (run.go). An event at or below the
// instrument's last applied sequence is skipped, and each order also
// remembers the last sequence applied to it.
func (s *Service) onEngineEvent(ctx context.Context, m *streams.Message[*enginev1.EngineEvent]) error {
	inst := m.Payload.GetInstrumentId()
	if inst == "" {
		inst = m.Key
	}
	applied, err := s.runs.applied(ctx, inst)
	if err != nil {
		return err
	}
	if seq := m.Payload.GetSequence(); seq != 0 && seq <= applied.engine {
		return nil
	}
	events := append([]event{{ev: m.Payload, streamSeq: m.Sequence, at: m.Time}}, s.readAhead(ctx, inst, m.Sequence)...)
	return s.runs.apply(ctx, inst, events)
}

// readAhead returns the events of inst stored after stream sequence seq,
// up to Config.ApplyBatch-1, ending before one that cannot be decoded (its
// own delivery reports it). Failing to read ahead is not an error: the
// delivered event is applied alone.
func (s *Service) readAhead(ctx context.Context, inst string, seq uint64) []event {
	if s.cfg.ApplyBatch < 2 {
		return nil
	}
	stored, err := s.mesh.Range(ctx, streams.TopicEngineEvent, inst, seq+1, s.cfg.ApplyBatch-1)
	if err != nil {
		return nil
	}
	var out []event
	for _, m := range stored {
		ev := &enginev1.EngineEvent{}
		if proto.Unmarshal(m.Data, ev) != nil {
			break
		}
		out = append(out, event{ev: ev, streamSeq: m.Sequence, at: m.Time})
	}
	return out
}

// change is the effect of an event on one order.
type change struct {
	orderID string
	apply   func(o *Order, seq uint64, at time.Time) (bool, error)
}

// changesOf lists the orders an event changes and how.
func changesOf(ev *enginev1.EngineEvent) []change {
	switch e := ev.GetEvent().(type) {
	case *enginev1.EngineEvent_Accepted:
		return []change{{e.Accepted.GetOrderId(), func(o *Order, seq uint64, at time.Time) (bool, error) {
			return o.Accept(seq, at), nil
		}}}
	case *enginev1.EngineEvent_Rejected:
		r := e.Rejected
		if r.GetReason() == commonv1.RejectReason_REJECT_REASON_DUPLICATE_ORDER {
			return nil // a copy of a submit already executed: the order is what the original made it
		}
		return []change{{r.GetOrderId(), func(o *Order, seq uint64, at time.Time) (bool, error) {
			return o.Reject(seq, at, int32(r.GetReason()), r.GetMessage()), nil
		}}}
	case *enginev1.EngineEvent_Cancelled:
		c := e.Cancelled
		return []change{{c.GetOrderId(), func(o *Order, seq uint64, at time.Time) (bool, error) {
			return o.Cancel(seq, at, int32(c.GetReason())), nil
		}}}
	case *enginev1.EngineEvent_Expired:
		x := e.Expired
		return []change{{x.GetOrderId(), func(o *Order, seq uint64, at time.Time) (bool, error) {
			return o.Expire(seq, at, int32(x.GetReason())), nil
		}}}
	case *enginev1.EngineEvent_Trade:
		t := e.Trade
		return []change{
			{t.GetTakerOrderId(), fill(t, t.GetTakerRemainingQuantity())},
			{t.GetMakerOrderId(), fill(t, t.GetMakerRemainingQuantity())},
		}
	}
	return nil // cancel_rejected and unknown events change no order
}

// fill is the effect of trade t on one of its orders, left with remaining.
func fill(t *enginev1.Trade, remaining string) func(o *Order, seq uint64, at time.Time) (bool, error) {
	return func(o *Order, seq uint64, at time.Time) (bool, error) {
		qty, err1 := decimal.Parse(t.GetQuantity(), o.QuantityScale)
		rem, err2 := decimal.Parse(remaining, o.QuantityScale)
		price, err3 := decimal.Parse(t.GetPrice(), o.PriceScale)
		if err := errors.Join(err1, err2, err3); err != nil {
			return false, streams.Permanent(fmt.Errorf("trade %s of order %s: %w", t.GetTradeId(), o.ID, err))
		}
		notional, err := decimal.Mul(price, o.PriceScale, qty, o.QuantityScale, o.PriceScale+o.QuantityScale)
		if err != nil {
			return false, streams.Permanent(fmt.Errorf("trade %s of order %s: %w", t.GetTradeId(), o.ID, err))
		}
		return o.Fill(seq, at, qty, notional, rem), nil
	}
}

// recover reads order id from its submit command at inputSeq of
// engine.order.v1; found is false when that command is not its submit (or
// is not there at all). A failed read is returned, not taken for a missing
// command: the consumer retries the event instead of acknowledging it with
// its order never recovered.
func (s *Service) recover(ctx context.Context, id string, inputSeq uint64) (o Order, found bool, err error) {
	if strings.HasPrefix(id, "liquidation:") || strings.HasPrefix(id, "funding:") {
		return Order{}, false, nil // the engine's own orders and the funding ticks have no record
	}
	if inputSeq == 0 {
		s.log.WarnContext(ctx, "engine event for an unknown order", "order_id", id)
		return Order{}, false, nil
	}
	raw, err := s.commands.Get(ctx, streams.TopicOrderCommand, inputSeq)
	if errors.Is(err, streams.ErrNotFound) {
		s.log.WarnContext(ctx, "engine event for an unknown order, command not found", "order_id", id, "input_sequence", inputSeq, "err", err)
		return Order{}, false, nil
	}
	if err != nil {
		return Order{}, false, fmt.Errorf("read command %d of order %s: %w", inputSeq, id, err)
	}
	var cmd enginev1.OrderCommand
	if err := proto.Unmarshal(raw.Data, &cmd); err != nil || cmd.GetSubmit().GetOrderId() != id {
		s.log.WarnContext(ctx, "engine event for an unknown order", "order_id", id, "input_sequence", inputSeq)
		return Order{}, false, nil
	}
	o, err = fromSubmit(&cmd, raw.Header.Get(HeaderClientOrderID))
	if err != nil {
		return Order{}, false, streams.Permanent(err)
	}
	return o, true, nil
}

// fromSubmit is the order a submit command placed, as PlaceOrder stored it
// (without its hold, which only PlaceOrder uses).
func fromSubmit(cmd *enginev1.OrderCommand, clientID string) (Order, error) {
	sub := cmd.GetSubmit()
	ps, qs := sub.GetPriceScale(), sub.GetQuantityScale()
	qty, err := decimal.Parse(sub.GetQuantity(), qs)
	if err != nil {
		return Order{}, fmt.Errorf("submit %s quantity: %w", sub.GetOrderId(), err)
	}
	var price int64
	if sub.GetPrice() != "" {
		if price, err = decimal.Parse(sub.GetPrice(), ps); err != nil {
			return Order{}, fmt.Errorf("submit %s price: %w", sub.GetOrderId(), err)
		}
	}
	maker, taker, err := feeRates(sub.GetMakerFeeRate(), sub.GetTakerFeeRate())
	if err != nil {
		return Order{}, fmt.Errorf("submit %s: %w", sub.GetOrderId(), err)
	}
	var margin int64
	if sub.GetLeverage() != 0 {
		if margin, err = decimal.Parse(sub.GetMargin(), ps+qs); err != nil {
			return Order{}, fmt.Errorf("submit %s margin: %w", sub.GetOrderId(), err)
		}
	}
	at := cmd.GetSentAt().AsTime()
	return Order{
		MakerFeeRate: maker, TakerFeeRate: taker,
		Leverage: sub.GetLeverage(), Margin: margin, ReduceOnly: sub.GetReduceOnly(),
		ID: sub.GetOrderId(), ClientOrderID: clientID, Account: sub.GetAccountId(), Instrument: cmd.GetInstrumentId(),
		Side: Side(sub.GetSide()), Type: Type(sub.GetType()), TimeInForce: TimeInForce(sub.GetTimeInForce()),
		PostOnly: sub.GetPostOnly(), SelfTradePrevention: int32(sub.GetSelfTradePrevention()),
		PriceScale: ps, QuantityScale: qs, Price: price, Quantity: qty, Remaining: qty,
		Status: StatusNew, CreatedAt: at, UpdatedAt: at, Revision: 1,
	}, nil
}
