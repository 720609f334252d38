package order

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/streams"
)

// Books reads an instrument's book (the market data service's
// GetBook): the funding ticks' index is the spot instrument's mid.
type Books interface {
	GetBook(ctx context.Context, req *marketdatav1.GetBookRequest) (*marketdatav1.GetBookResponse, error)
}

// fundingLoop publishes every perpetual's funding tick when one of its
// funding intervals ends (docs/perpetuals.md), checking every
// Config.FundingEvery until ctx ends. Each instance of the service does;
// the tick's message id ("funding:<instrument>:<interval end>") stores it
// once, and the engine settles an interval once however many ticks name
// it. The last interval end ticked is kept in the order bucket, so an
// instance started after ends that no instance ticked (a restart across an
// interval's end) ticks them, oldest first, at most maxFundingCatchUp of
// them. A perpetual never ticked before starts at its next interval end.
func (s *Service) fundingLoop(ctx context.Context) {
	tick := time.NewTicker(s.cfg.FundingEvery)
	defer tick.Stop()
	ticked := map[string]time.Time{} // by instrument: the last interval end published or passed
	for {
		s.fundingTicks(ctx, ticked)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// maxFundingCatchUp bounds how many interval ends that passed while no
// instance ran a start ticks (the newest ones; a day at 8 hours). Each
// is settled with the index and book of when it is ticked.
const maxFundingCatchUp = 3

// fundingTicks publishes, for each perpetual, the tick of every interval
// end after the one last published, oldest first; a failed publish is
// tried again at the next look.
func (s *Service) fundingTicks(ctx context.Context, ticked map[string]time.Time) {
	all, err := s.insts.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "funding: list instruments", "err", err)
		}
		return
	}
	now := s.now()
	for _, in := range all {
		rules := in.GetPerpetual()
		interval := rules.GetFundingInterval().AsDuration()
		if in.GetKind() != commonv1.InstrumentKind_INSTRUMENT_KIND_PERPETUAL || interval <= 0 {
			continue
		}
		sym := in.GetSymbol()
		// Intervals divide a day: their ends fall on the same times every UTC day.
		end := now.UTC().Truncate(interval)
		last, seen := ticked[sym]
		if !seen {
			var err error
			if last, err = s.fundingResumesAfter(ctx, sym, end, interval); err != nil {
				if ctx.Err() == nil {
					s.log.WarnContext(ctx, "funding: read the last interval ticked; trying again", "instrument", sym, "err", err)
				}
				continue // read again at the next look: the ends missed are still to tick
			}
			ticked[sym] = last
		}
		for next := last.Truncate(interval).Add(interval); !next.After(end); next = next.Add(interval) {
			if err := s.publishFunding(ctx, in, next); err != nil {
				if ctx.Err() == nil {
					s.log.WarnContext(ctx, "funding: publish tick", "instrument", sym, "interval_end", next, "err", err)
				}
				break
			}
			ticked[sym] = next
			s.recordFunding(ctx, sym, next)
		}
	}
}

// fundingPrefix starts the order bucket's keys of the last interval end
// each perpetual was ticked for.
const fundingPrefix = "f."

// fundingKey is the order bucket's key of the last interval end a
// perpetual was ticked for (its Unix seconds, in decimal).
func fundingKey(instrument string) string { return fundingPrefix + keyToken(instrument) }

// fundingResumesAfter is the interval end after which a perpetual's ticks
// resume when an instance first sees it: the last one ticked (the
// bucket's record), no more than maxFundingCatchUp intervals before end;
// end itself for a perpetual never ticked. A failed read is an error: the
// caller asks again later rather than skip what was missed.
func (s *Service) fundingResumesAfter(ctx context.Context, instrument string, end time.Time, interval time.Duration) (time.Time, error) {
	e, err := s.st.kv.Get(ctx, fundingKey(instrument))
	if errors.Is(err, streams.ErrNotFound) {
		return end, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	unix, err := strconv.ParseInt(string(e.Value), 10, 64)
	if err != nil {
		// Not written by this code: start over rather than never tick.
		s.log.WarnContext(ctx, "funding: unreadable record of the last interval ticked; ticks start at the next end", "instrument", instrument, "err", err)
		return end, nil
	}
	oldest := end.Add(-maxFundingCatchUp * interval)
	last := time.Unix(unix, 0).UTC()
	if last.Before(oldest) {
		s.log.WarnContext(ctx, "funding: interval ends passed while no order service ran; the oldest are not settled",
			"instrument", instrument, "last_ticked", last, "settled_from", oldest.Add(interval))
		return oldest, nil
	}
	return last, nil
}

// recordFunding keeps end as the last interval end ticked for instrument.
// A failed write is logged: a later start may then tick an end again,
// which the engine rejects as settled.
func (s *Service) recordFunding(ctx context.Context, instrument string, end time.Time) {
	if _, err := s.st.kv.Put(ctx, fundingKey(instrument), strconv.AppendInt(nil, end.Unix(), 10)); err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "funding: record the interval ticked", "instrument", instrument, "interval_end", end, "err", err)
	}
}

// fundingCommandID is the command and message id of a perpetual's tick for
// the interval ending at end.
func fundingCommandID(instrument string, end time.Time) string {
	return "funding:" + instrument + ":" + strconv.FormatInt(end.Unix(), 10)
}

// publishFunding stores the funding tick of in for the interval ending at
// end, with the index read now.
func (s *Service) publishFunding(ctx context.Context, in *metadatav1.Instrument, end time.Time) error {
	rules := in.GetPerpetual()
	index, err := s.indexPrice(ctx, in)
	if err != nil {
		// The tick goes without: the engine measures the premium against the mark.
		s.log.WarnContext(ctx, "funding: no index price, the mark serves", "instrument", in.GetSymbol(), "index", rules.GetIndexSymbol(), "err", err)
	}
	id := fundingCommandID(in.GetSymbol(), end)
	cmd := &enginev1.OrderCommand{
		CommandId: id, InstrumentId: in.GetSymbol(), SentAt: timestamppb.New(s.now()),
		Command: &enginev1.OrderCommand_Funding{Funding: &enginev1.FundingTick{
			IntervalEnd: timestamppb.New(end), IndexPrice: index,
			RateClamp: rules.GetFundingRateClamp(), ImpactNotional: rules.GetImpactNotional(),
		}},
	}
	if _, err := s.pub.Publish(ctx, streams.TopicOrderCommand, in.GetSymbol(), cmd, streams.WithMsgID(id)); err != nil {
		return fmt.Errorf("funding tick %s: %w", id, err)
	}
	return nil
}

// errNoIndex: the index instrument has no two-sided book.
var errNoIndex = errors.New("the index instrument's book is not two-sided")

// indexPrice is the mid of in's index instrument (its best bid and ask)
// at in's price scale, rounded down; "" when in names none.
func (s *Service) indexPrice(ctx context.Context, in *metadatav1.Instrument) (string, error) {
	sym := in.GetPerpetual().GetIndexSymbol()
	if sym == "" || s.books == nil {
		return "", nil
	}
	spot, err := s.insts.Get(ctx, sym)
	if err != nil {
		return "", fmt.Errorf("index instrument %s: %w", sym, err)
	}
	res, err := s.books.GetBook(ctx, &marketdatav1.GetBookRequest{InstrumentId: sym, Depth: 1})
	if err != nil {
		return "", fmt.Errorf("book of %s: %w", sym, err)
	}
	b := res.GetBook()
	if len(b.GetBids()) == 0 || len(b.GetAsks()) == 0 {
		return "", fmt.Errorf("%w: %s", errNoIndex, sym)
	}
	ps := spot.GetPriceScale()
	bid, err1 := decimal.ParseNonNegative(b.GetBids()[0].GetPrice(), ps)
	ask, err2 := decimal.ParseNonNegative(b.GetAsks()[0].GetPrice(), ps)
	if err := errors.Join(err1, err2); err != nil {
		return "", fmt.Errorf("book of %s: %w", sym, err)
	}
	mid, err := decimal.RescaleRound(bid/2+ask/2+(bid%2+ask%2)/2, ps, in.GetPriceScale(), decimal.RoundDown)
	if err != nil || mid <= 0 {
		return "", fmt.Errorf("mid of %s at scale %d: %w", sym, in.GetPriceScale(), err)
	}
	return decimal.Format(mid, in.GetPriceScale()), nil
}
