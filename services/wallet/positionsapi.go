package wallet

import (
	"context"
	"fmt"
	"slices"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/internal/perp"
	"github.com/tradex-mesh/tradex/streams"
)

// maxPositionFilter bounds the instruments a position request may name.
const maxPositionFilter = 100

// GetPositions returns an account's open positions at the last mark.
func (h *handler) GetPositions(ctx context.Context, req *walletv1.GetPositionsRequest) (*walletv1.GetPositionsResponse, error) {
	if err := h.check(idField("account_id", req.GetAccountId()), instrumentFilter(req.GetInstrumentIds())); err != nil {
		return nil, h.fail(ctx, err)
	}
	var all []Position
	h.s.st.read(func(b *Book) { all = b.Positions(req.GetAccountId()) })
	out := &walletv1.GetPositionsResponse{}
	for _, p := range all {
		if len(req.GetInstrumentIds()) == 0 || slices.Contains(req.GetInstrumentIds(), p.Instrument) {
			out.Positions = append(out.Positions, h.position(ctx, p))
		}
	}
	return out, nil
}

func instrumentFilter(ids []string) error {
	if len(ids) > maxPositionFilter {
		return invalid("instrument_ids", fmt.Sprintf("at most %d", maxPositionFilter))
	}
	for i, id := range ids {
		if err := idField(fmt.Sprintf("instrument_ids[%d]", i), id); err != nil {
			return err
		}
	}
	return nil
}

// WatchPositions sends an account's open positions, a snapshot end, then
// each position after every change, until the client goes away.
func (h *handler) WatchPositions(ctx context.Context, req *walletv1.WatchPositionsRequest, stream *connect.ServerStream[walletv1.WatchPositionsResponse]) error {
	acct, ids := req.GetAccountId(), req.GetInstrumentIds()
	if err := h.check(idField("account_id", acct), instrumentFilter(ids)); err != nil {
		return h.fail(ctx, err)
	}
	want := func(inst string) bool { return len(ids) == 0 || slices.Contains(ids, inst) }
	_, pos, err := h.s.st.current(ctx, acct)
	if err != nil {
		return h.fail(ctx, err)
	}
	var open []Position
	h.s.st.read(func(b *Book) { open = b.Positions(acct) })
	for _, p := range open {
		if !want(p.Instrument) {
			continue
		}
		if err := stream.Send(&walletv1.WatchPositionsResponse{Event: &walletv1.WatchPositionsResponse_Current{Current: h.position(ctx, p)}}); err != nil {
			return err
		}
	}
	if err := stream.Send(&walletv1.WatchPositionsResponse{Event: &walletv1.WatchPositionsResponse_SnapshotEnd{
		SnapshotEnd: &commonv1.SnapshotEnd{Sequence: pos}}}); err != nil {
		return err
	}
	return h.followJournal(ctx, acct, pos, func(bc *walletv1.BalanceChanged, m streams.Stored) error {
		if ps := bc.GetPosition(); ps == nil || !want(ps.GetInstrumentId()) {
			return nil
		}
		state, err := positionState(bc.GetPosition(), h.s.cfg.scale(bc.GetAsset()))
		if err != nil {
			return fmt.Errorf("%w: entry %d: %w", ErrCorruptJournal, m.Sequence, err)
		}
		p := Position{Account: bc.GetAccountId(), Asset: bc.GetAsset(), PositionState: state,
			Revision: bc.GetSequence(), UpdatedAt: bc.GetOccurredAt().AsTime()}
		return stream.Send(&walletv1.WatchPositionsResponse{Event: &walletv1.WatchPositionsResponse_Changed{Changed: h.position(ctx, p)}})
	})
}

// position converts a position, valued at the last mark (the mark and
// what depends on it are left empty without one, or when the instrument
// cannot be read).
func (h *handler) position(ctx context.Context, p Position) *walletv1.Position {
	sc := h.s.cfg.scale(p.Asset)
	out := &walletv1.Position{
		AccountId: p.Account, InstrumentId: p.Instrument, Asset: p.Asset, Size: p.Size,
		EntryValue: decimal.Format(p.Value, sc), Margin: decimal.Format(p.Margin, sc),
		Revision: p.Revision, UpdatedAt: timestamppb.New(p.UpdatedAt),
	}
	inst, err := h.s.insts.Get(ctx, p.Instrument)
	if err != nil {
		return out
	}
	ps, qs := inst.GetPriceScale(), inst.GetQuantityScale()
	size, err := decimal.Parse(p.Size, qs)
	if err != nil || size == 0 {
		return out
	}
	// The position at the instrument's scales, as the engine keeps it.
	value, err1 := decimal.RescaleRound(p.Value, sc, ps+qs, decimal.RoundDown)
	margin, err2 := decimal.RescaleRound(p.Margin, sc, ps+qs, decimal.RoundDown)
	if err1 != nil || err2 != nil {
		return out
	}
	pos := perp.Position{Size: size, Value: value, Margin: margin}
	amount := func(v int64) string {
		x, err := decimal.Rescale(v, ps+qs, sc)
		if err != nil {
			return ""
		}
		return decimal.Format(x, sc)
	}
	if entry, ok, err := pos.EntryPrice(); err == nil && ok {
		out.EntryPrice = decimal.Format(entry, ps)
	}
	if rules := inst.GetPerpetual(); rules != nil {
		if rate, err := decimal.ParseNonNegative(rules.GetMaintenanceMarginRate(), 6); err == nil {
			if liq, ok, err := pos.LiquidationPrice(rate); err == nil && ok {
				out.LiquidationPrice = decimal.Format(liq, ps)
			}
		}
	}
	markText := h.s.markOf(ctx, p.Instrument)
	mark, err := decimal.ParseNonNegative(markText, ps)
	if markText == "" || err != nil {
		return out
	}
	out.MarkPrice = markText
	if u, err := pos.Unrealized(mark); err == nil {
		out.UnrealizedPnl = amount(u)
	}
	if eq, err := pos.Equity(mark); err == nil {
		out.Equity = amount(eq)
	}
	return out
}
