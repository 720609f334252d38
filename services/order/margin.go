package order

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/streams"
)

// ErrMarginRefused means the matching engine refused a margin change (no open
// position, more than the position spares).
var ErrMarginRefused = errors.New("margin change refused")

// Waiting for the engine's answer to a margin change: how long, how often
// to look, and how many events to read looking.
const (
	marginAnswerWait  = 5 * time.Second
	marginAnswerEvery = 20 * time.Millisecond
	marginAnswerScan  = 4096
)

// AdjustMargin adds margin to a position or removes some, and waits for
// the engine's answer.
func (h *handler) AdjustMargin(ctx context.Context, req *orderv1.AdjustMarginRequest) (*orderv1.AdjustMarginResponse, error) {
	if !validClientOrderID(req.GetRequestId()) {
		return nil, h.fail(ctx, invalid("request_id", "at most 64 characters of letters, digits, '-', '_' and '.'"))
	}
	done, err := h.s.adjustMargin(ctx, req.GetAccountId(), req.GetInstrumentId(), req.GetAmount(), req.GetRequestId())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	p := done.GetPosition()
	return &orderv1.AdjustMarginResponse{Size: p.GetSize(), Margin: p.GetMargin(), Amount: done.GetAmount()}, nil
}

// adjustMargin holds an add's amount, publishes the AdjustMargin command
// and returns the engine's answer to it.
func (s *Service) adjustMargin(ctx context.Context, acct, sym, amountText, requestID string) (*enginev1.MarginAdjusted, error) {
	lv, err := s.leverage(ctx, acct, sym) // checks the account and that sym is a perpetual
	if err != nil {
		return nil, err
	}
	in, err := s.insts.Get(ctx, sym)
	if err != nil {
		return nil, fmt.Errorf("instrument %s: %w", sym, err)
	}
	ns := in.GetPriceScale() + in.GetQuantityScale()
	amount, err := decimal.Parse(amountText, ns)
	if err != nil || amount == 0 {
		return nil, invalid("amount", fmt.Sprintf("want a non-zero amount of %s with at most %d decimals (below zero removes)", in.GetQuoteAsset(), ns))
	}
	id := "margin:" + s.ids.next()
	if requestID != "" { // a retry finds the same hold and command
		id = "margin:" + acct + ":" + requestID
	}
	if amount > 0 {
		_, err := s.wallet.HoldBalance(ctx, &walletv1.HoldBalanceRequest{
			HoldId: id, AccountId: acct, Asset: in.GetQuoteAsset(), Amount: decimal.Format(amount, ns), Reason: walletv1.HoldReason_HOLD_REASON_ORDER,
		})
		switch connect.CodeOf(err) {
		case connect.CodeFailedPrecondition:
			return nil, fmt.Errorf("%w: hold %s %s of margin: %s", ErrInsufficientFunds, decimal.FormatTrim(amount, ns), in.GetQuoteAsset(), walletReason(err))
		case connect.CodeAlreadyExists:
			return nil, fmt.Errorf("%w: request_id %s was used for another margin change", ErrAlreadyExists, requestID)
		}
		if err != nil {
			return nil, fmt.Errorf("hold margin %s: %w", id, err)
		}
	}
	cmd := &enginev1.OrderCommand{CommandId: id, InstrumentId: sym, SentAt: timestamppb.New(s.now()),
		Command: &enginev1.OrderCommand_Margin{Margin: &enginev1.AdjustMargin{AccountId: acct, Amount: decimal.Format(amount, ns), Leverage: lv.Leverage}}}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.CleanupTimeout)
	defer cancel()
	seq, err := s.pub.Publish(pctx, streams.TopicOrderCommand, sym, cmd, streams.WithMsgID(id))
	if err != nil {
		if amount > 0 && !errors.Is(err, streams.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
			err = errors.Join(err, s.undoHold(ctx, Order{ID: id, Account: acct}))
		} // else it may be stored: the engine's answer settles the hold
		return nil, fmt.Errorf("margin command %s: %w", id, err)
	}
	// The answer is stored after the command (a retry's command is the
	// first's: its answer may be older than this call).
	stored, err := s.mesh.Get(ctx, streams.TopicOrderCommand, seq)
	if err != nil {
		return nil, fmt.Errorf("margin command %s: %w", id, err)
	}
	return s.marginAnswer(ctx, sym, fmt.Sprintf("%s:%d:0", sym, seq), stored.Time.Add(-time.Second))
}

// marginAnswer waits for the engine event with id eventID (the first
// event of the command) and returns what it did.
func (s *Service) marginAnswer(ctx context.Context, sym, eventID string, since time.Time) (*enginev1.MarginAdjusted, error) {
	ctx, cancel := context.WithTimeout(ctx, marginAnswerWait)
	defer cancel()
	tick := time.NewTicker(marginAnswerEvery)
	defer tick.Stop()
	for {
		m, err := s.mesh.MsgByID(ctx, streams.TopicEngineEvent, sym, eventID, since, marginAnswerScan)
		if err == nil {
			var ev enginev1.EngineEvent
			if err := proto.Unmarshal(m.Data, &ev); err != nil {
				return nil, fmt.Errorf("engine event %s: %w", eventID, err)
			}
			if r := ev.GetRejected(); r != nil {
				return nil, fmt.Errorf("%w: %s", ErrMarginRefused, r.GetMessage())
			}
			if done := ev.GetMarginAdjusted(); done != nil {
				return done, nil
			}
			return nil, fmt.Errorf("engine event %s answers no margin change", eventID)
		}
		if !errors.Is(err, streams.ErrNotFound) {
			return nil, fmt.Errorf("engine answer %s: %w", eventID, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: no engine answer to %s in %s: the position shows the outcome", streams.ErrUnavailable, eventID, marginAnswerWait)
		case <-tick.C:
		}
	}
}
