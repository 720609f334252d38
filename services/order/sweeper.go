package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// sweptMessage is the message of a swept order's record.
const sweptMessage = "never reached the engine: its hold was released"

// sweepLoop sweeps every Config.SweepEvery until ctx ends; a failed sweep
// is logged and tried again at the next tick.
func (s *Service) sweepLoop(ctx context.Context) {
	tick := time.NewTicker(s.cfg.SweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "order sweep failed", "err", err)
		}
	}
}

// sweep releases the holds of orders whose submit never reached
// engine.order.v1 (PlaceOrder died, or lost the broker, between the hold
// and the publish, and no retry came). A hold older than SweepAfter with no
// order record and no submit on the stream gets a swept record first: a
// retry with the order's client order id then answers it instead of
// publishing. A sweep at least SweepGrace later looks at the stream again
// (a retry that read no record just before may have published meanwhile):
// still no submit, the hold is released; a submit, the swept record goes
// and the engine's events make the order's record as usual.
func (s *Service) sweep(ctx context.Context) error {
	res, err := s.wallet.ListHolds(ctx, &walletv1.ListHoldsRequest{
		Reason:        walletv1.HoldReason_HOLD_REASON_ORDER,
		CreatedBefore: timestamppb.New(s.now().Add(-s.cfg.SweepAfter)),
		Page:          &commonv1.PageRequest{PageSize: 1000},
	})
	if err != nil {
		return fmt.Errorf("list holds: %w", err)
	}
	var errs []error
	for _, h := range res.GetHolds() {
		if err := s.sweepHold(ctx, h); err != nil {
			errs = append(errs, fmt.Errorf("hold %s: %w", h.GetHoldId(), err))
		}
	}
	return errors.Join(errs...)
}

// sweepHold does one hold's step of the sweep.
func (s *Service) sweepHold(ctx context.Context, h *walletv1.Hold) error {
	id := h.GetHoldId()
	o, rev, err := s.st.get(ctx, id)
	switch {
	case err == nil && !o.Swept:
		return nil // the engine has the order: its events release the hold
	case err == nil && s.now().Sub(o.UpdatedAt) < s.cfg.SweepGrace:
		return nil
	case err != nil && !errors.Is(err, ErrOrderNotFound):
		return err
	}
	submitted, err := s.mesh.FindMsgID(ctx, streams.TopicOrderCommand, id, h.GetCreatedAt().AsTime().Add(-time.Second))
	if err != nil {
		return err
	}
	switch {
	case o.Swept && submitted: // a retry published it after all
		return s.st.kv.Delete(ctx, orderPrefix+id, rev)
	case o.Swept:
		_, err := s.wallet.ReleaseHold(ctx, &walletv1.ReleaseHoldRequest{HoldId: id, AccountId: h.GetAccountId()})
		return err
	case submitted: // the engine has not got to it yet
		return nil
	}
	return s.markSwept(ctx, id, h.GetAccountId())
}

// markSwept writes the swept record of order id, unless a record exists.
func (s *Service) markSwept(ctx context.Context, id, account string) error {
	now := s.now()
	b, err := json.Marshal(Order{ID: id, Account: account, Status: StatusRejected, Message: sweptMessage,
		Swept: true, CreatedAt: now, UpdatedAt: now, Revision: 1})
	if err != nil {
		return fmt.Errorf("encode swept order %s: %w", id, err)
	}
	if _, err := s.st.kv.Create(ctx, orderPrefix+id, b); err != nil && !errors.Is(err, streams.ErrKeyExists) {
		return fmt.Errorf("store swept order %s: %w", id, err)
	}
	return nil
}
