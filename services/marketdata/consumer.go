package marketdata

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/services/marketdata/market"
	"github.com/tradex-mesh/tradex/streams"
)

// follow rebuilds the state (from the latest snapshot and the events after
// it, or from the first event) and applies every later event as it comes,
// with an ordered follow (in order, no gap: it restarts itself where it
// was if a message goes missing). It returns when ctx ends (nil) or the
// feed fails; the state is then rebuilt.
func (s *Service) follow(ctx context.Context) error {
	caughtUp, err := s.mesh.LastSequence(ctx, streams.TopicEngineEvent)
	if err != nil {
		return fmt.Errorf("last engine event: %w", err)
	}
	store, err := s.snapshots(ctx)
	if err != nil {
		return err
	}
	s.serving.Store(false)
	s.st.reset()
	s.applied.Store(0)
	s.target.Store(caughtUp)
	covered, err := s.loadSnapshot(ctx, store)
	if err != nil {
		return err
	}
	s.applied.Store(covered)
	if caughtUp <= covered {
		s.markReady(ctx)
	}
	snap := snapshotter{s: s, store: store}
	defer snap.wait()
	err = s.mesh.Follow(ctx, streams.Follow{Topic: streams.TopicEngineEvent, From: covered + 1},
		func(ctx context.Context, m streams.Stored) error { return s.take(ctx, m, caughtUp, &snap) })
	if err != nil {
		return fmt.Errorf("follow %s: %w", streams.TopicEngineEvent, err)
	}
	return nil
}

// deadLetterHandler names the feed in the dead letters it writes.
const deadLetterHandler = "marketdata-feed"

// take applies the engine event m; events after caughtUp are live (not
// the rebuild) and published. The state is caught up at caughtUp, or
// earlier when nothing follows m (the last events were deleted).
//
// A poison event — one that does not follow its instrument's last one (a
// gap in the engine sequence), or does not decode or apply — changes
// nothing: it goes to dlq.engine.event.v1 with the reason, and the feed
// goes on, every instrument with it. (If the dead-letter write fails, the
// follow fails and the state is rebuilt, which meets the event again.)
func (s *Service) take(ctx context.Context, m streams.Stored, caughtUp uint64, snap *snapshotter) error {
	s.target.Store(max(s.target.Load(), m.Sequence+m.Pending)) // the follow loop is its only writer
	u, err := s.apply(ctx, m.Data)
	switch {
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		if derr := s.mesh.DeadLetter(ctx, streams.TopicEngineEvent, m, deadLetterHandler, err); derr != nil {
			return fmt.Errorf("engine event %d: %w (dead-letter it: %w)", m.Sequence, err, derr)
		}
		s.log.WarnContext(ctx, "engine event dead-lettered", "seq", m.Sequence, "key", m.Key, "err", err)
	}
	s.applied.Store(m.Sequence)
	if m.Sequence > caughtUp {
		s.publish(ctx, u)
	}
	if m.Sequence >= caughtUp || m.Pending == 0 {
		s.markReady(ctx)
	}
	snap.after(ctx, m.Sequence)
	return nil
}

// snapshotter writes a snapshot every Config.SnapshotEvery events, beside
// the feed (which only copies the state), one at a time.
type snapshotter struct {
	s       *Service
	store   snapshotStore
	since   int
	writing chan struct{} // closed when the write in flight is done
}

func (sn *snapshotter) after(ctx context.Context, stream uint64) {
	if sn.store == nil {
		return
	}
	if sn.since++; sn.since < sn.s.cfg.SnapshotEvery {
		return
	}
	if sn.writing != nil {
		select {
		case <-sn.writing:
		default:
			return // the last one is still being written: take it later
		}
	}
	sn.since = 0
	doc := sn.s.st.snapshot(stream)
	done := make(chan struct{})
	sn.writing = done
	go func() {
		defer close(done)
		if err := sn.s.writeSnapshot(context.WithoutCancel(ctx), sn.store, doc); err != nil {
			sn.s.log.WarnContext(ctx, "market data snapshot failed", "err", err)
		}
	}()
}

// wait waits for the write in flight.
func (sn *snapshotter) wait() {
	if sn.writing != nil {
		<-sn.writing
	}
}

func (s *Service) markReady(ctx context.Context) {
	if s.serving.Swap(true) {
		return
	}
	s.readyOnce.Do(func() {
		close(s.ready)
		s.log.InfoContext(ctx, "market data rebuilt", "instruments", s.st.count())
	})
}

// apply decodes one engine event and applies it to its instrument.
func (s *Service) apply(ctx context.Context, data []byte) (update, error) {
	var ev enginev1.EngineEvent
	if err := proto.Unmarshal(data, &ev); err != nil {
		return update{}, fmt.Errorf("decode engine event: %w", err)
	}
	sym := ev.GetInstrumentId()
	scales, err := s.scalesOf(ctx, sym)
	if err != nil {
		return update{}, err
	}
	me, err := toEvent(&ev, scales)
	if err == nil {
		var u update
		u, err = s.st.apply(sym, scales, me, ev.GetMarkPrice(), s.now())
		switch {
		case err == nil:
			return u, nil
		case errors.Is(err, market.ErrGap):
			return u, fmt.Errorf("instrument %s: %w", sym, err)
		}
	}
	// An event the market cannot take (bad decimals, an invalid level):
	// skip its content but keep the sequence going (else every later
	// event of the instrument would be a gap), and say so.
	s.log.ErrorContext(ctx, "engine event cannot be applied, skipped", "event_id", ev.GetEventId(), "err", err)
	return s.st.apply(sym, scales, market.Event{Seq: ev.GetSequence(), Time: ev.GetEngineTime().AsTime()}, "", s.now())
}

// publish sends what an event changed to md.book.v1, md.trade.v1 and
// md.mark.v1,
// without waiting for the broker: the topics are disposable, and a reader
// that misses a delta sees it in the seq/prev_seq chain and resyncs with
// GetBook. The message id is the instrument and engine sequence, so a
// repeat inside the duplicate window is stored once.
func (s *Service) publish(ctx context.Context, u update) {
	if s.pub == nil {
		return
	}
	send := func(topic string, seq uint64, msg proto.Message) {
		ack, err := s.pub.PublishAsync(ctx, topic, u.instrument, msg, streams.WithMsgID(fmt.Sprintf("%s:%d", u.instrument, seq)))
		if err != nil {
			s.log.WarnContext(ctx, "market data not published", "topic", topic, "instrument", u.instrument, "err", err)
			return
		}
		go func() {
			if _, err := ack.Wait(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "market data not published", "topic", topic, "instrument", u.instrument, "err", err)
			}
		}()
	}
	if u.delta != nil {
		send(streams.TopicBook, u.delta.GetSeq(), u.delta)
	}
	if u.trade != nil {
		send(streams.TopicTrade, u.trade.GetSeq(), u.trade)
	}
	if u.mark != nil {
		send(streams.TopicMark, u.mark.GetSeq(), u.mark)
	}
}

// scalesOf returns the instrument's scales, waiting out a metadata service
// that is away (every later event of the instrument needs them).
func (s *Service) scalesOf(ctx context.Context, sym string) (scales, error) {
	if sc, ok := s.st.scales(sym); ok {
		return sc, nil
	}
	for attempt := 0; ; attempt++ {
		in, err := s.insts.Get(ctx, sym)
		if err == nil {
			return scales{price: in.GetPriceScale(), quantity: in.GetQuantityScale(),
				perpetual: in.GetKind() == commonv1.InstrumentKind_INSTRUMENT_KIND_PERPETUAL}, nil
		}
		delay := streams.Backoff(attempt)
		s.log.WarnContext(ctx, "instrument lookup failed", "instrument", sym, "err", err, "retry_in", delay)
		if err := streams.Sleep(ctx, delay); err != nil {
			return scales{}, fmt.Errorf("instrument %s: %w", sym, err)
		}
	}
}

// scales are an instrument's fixed-point scales, and whether it is a
// perpetual (whose mark price is published).
type scales struct {
	price, quantity int32
	perpetual       bool
}

// toEvent converts an engine event to the market's terms.
func toEvent(ev *enginev1.EngineEvent, sc scales) (market.Event, error) {
	out := market.Event{Seq: ev.GetSequence(), Time: ev.GetEngineTime().AsTime()}
	for _, c := range ev.GetBookChanges() {
		price, err := decimal.ParseNonNegative(c.GetPrice(), sc.price)
		if err != nil {
			return out, fmt.Errorf("book change price: %w", err)
		}
		qty, err := decimal.ParseNonNegative(c.GetQuantity(), sc.quantity)
		if err != nil {
			return out, fmt.Errorf("book change quantity: %w", err)
		}
		out.Changes = append(out.Changes, market.Change{Side: sideOf(c.GetSide()), Price: price, Quantity: qty})
	}
	if tr := ev.GetTrade(); tr != nil {
		price, err := decimal.ParseNonNegative(tr.GetPrice(), sc.price)
		if err != nil {
			return out, fmt.Errorf("trade price: %w", err)
		}
		qty, err := decimal.ParseNonNegative(tr.GetQuantity(), sc.quantity)
		if err != nil {
			return out, fmt.Errorf("trade quantity: %w", err)
		}
		quote, err := decimal.ParseNonNegative(tr.GetQuoteQuantity(), sc.price+sc.quantity)
		if err != nil {
			return out, fmt.Errorf("trade quote quantity: %w", err)
		}
		out.Trade = &market.Trade{ID: tr.GetTradeId(), Price: price, Quantity: qty, Quote: quote,
			TakerSide: sideOf(tr.GetTakerSide()), Time: out.Time}
	}
	return out, nil
}

// sideOf is the market's side (0, which the market refuses, for anything
// but buy and sell).
func sideOf(s commonv1.Side) market.Side {
	switch s {
	case commonv1.Side_SIDE_BUY:
		return market.Buy
	case commonv1.Side_SIDE_SELL:
		return market.Sell
	default:
		return 0
	}
}
