package order

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"

	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/streams"
)

// place assigns intent an id and submits it, or, when its client order id
// was used before, returns (or finishes) the first order placed with it.
func (s *Service) place(ctx context.Context, intent Order) (o Order, replayed bool, err error) {
	intent.ID = s.ids.next()
	if intent.ClientOrderID == "" {
		o, err = s.submit(ctx, intent, 0)
		return o, false, err
	}
	first, rev, claimed, err := s.st.claimClientID(ctx, intent)
	if err != nil {
		return Order{}, false, err
	}
	if claimed {
		o, err = s.submit(ctx, intent, rev)
		return o, false, err
	}
	if !first.SameRequest(intent) {
		return Order{}, false, fmt.Errorf("%w: client_order_id %s was used for another order (%s)", ErrAlreadyExists, intent.ClientOrderID, first.ID)
	}
	o, err = s.recorded(ctx, first.ID, first.Instrument)
	if err == nil {
		return o, true, nil
	}
	if !errors.Is(err, ErrOrderNotFound) && !errors.Is(err, streams.ErrScanLimit) {
		return Order{}, false, err
	}
	// The first request has not finished, or died on the way: finish it.
	// The hold and the publish are idempotent on the order id.
	o, err = s.submit(ctx, first, 0)
	return o, true, err
}

// submit holds o's funds and publishes its submit command: the order is
// durable from there, and its record follows from the engine's events. If
// claimRev is not 0, a failure that leaves nothing behind frees the client
// order id claimed at that revision.
func (s *Service) submit(ctx context.Context, o Order, claimRev uint64) (Order, error) {
	if o.HoldAmount == 0 { // a reduce-only perpetual order without fees holds nothing
		return s.publishNoHold(ctx, o, claimRev)
	}
	_, err := s.wallet.HoldBalance(ctx, &walletv1.HoldBalanceRequest{
		HoldId: o.ID, AccountId: o.Account, Asset: o.HoldAsset,
		Amount: decimal.Format(o.HoldAmount, o.HoldScale), Reason: walletv1.HoldReason_HOLD_REASON_ORDER,
	})
	if err != nil {
		switch connect.CodeOf(err) {
		case connect.CodeFailedPrecondition:
			err = fmt.Errorf("%w: hold %s %s for order %s: %s", ErrInsufficientFunds,
				decimal.FormatTrim(o.HoldAmount, o.HoldScale), o.HoldAsset, o.ID, walletReason(err))
		case connect.CodeInvalidArgument, connect.CodeAlreadyExists:
			err = fmt.Errorf("hold for order %s refused: %w", o.ID, err)
		default:
			// The hold may have happened: keep the claim, so that a retry
			// with the same client order id resumes this order.
			return Order{}, fmt.Errorf("hold for order %s: %w", o.ID, err)
		}
		return Order{}, errors.Join(err, s.freeClaim(ctx, o, claimRev))
	}
	// The publish finishes even if the caller leaves: its outcome decides
	// whether the hold may be released.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.CleanupTimeout)
	defer cancel()
	if err := s.publishSubmit(pctx, o); err != nil {
		if errors.Is(err, streams.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			// The command may be stored with its ack lost (the broker or the
			// connection went away, or time ran out): releasing the hold now would leave the
			// engine an order without funds. Keep the hold and the client
			// order id: a retry with it resumes this order (the hold is
			// replayed, the publish deduplicated on the order id), and if
			// the command is stored its first engine event stores the order
			// (consumer.go). Without a client order id, a command that was
			// not stored leaves its hold behind.
			return Order{}, err
		}
		return Order{}, errors.Join(err, s.undoHold(ctx, o), s.freeClaim(ctx, o, claimRev))
	}
	s.st.placed(o)
	return o, nil
}

// publishNoHold publishes the submit of an order that holds nothing.
func (s *Service) publishNoHold(ctx context.Context, o Order, claimRev uint64) (Order, error) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.CleanupTimeout)
	defer cancel()
	if err := s.publishSubmit(pctx, o); err != nil {
		if errors.Is(err, streams.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return Order{}, err // it may be stored: keep the claim (see submit)
		}
		return Order{}, errors.Join(err, s.freeClaim(ctx, o, claimRev))
	}
	s.st.placed(o)
	return o, nil
}

// undoHold releases the hold of an order whose submit failed.
func (s *Service) undoHold(ctx context.Context, o Order) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.CleanupTimeout)
	defer cancel()
	if _, err := s.wallet.ReleaseHold(ctx, &walletv1.ReleaseHoldRequest{HoldId: o.ID, AccountId: o.Account}); err != nil {
		return fmt.Errorf("release hold of unsubmitted order %s: %w", o.ID, err)
	}
	return nil
}

// freeClaim frees the client order id of an order that was not placed.
func (s *Service) freeClaim(ctx context.Context, o Order, rev uint64) error {
	if rev == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.CleanupTimeout)
	defer cancel()
	return s.st.freeClientID(ctx, o.Account, o.ClientOrderID, rev)
}

// find returns the order named by id, or else by (account, client order
// id); an order of another account is not found.
func (s *Service) find(ctx context.Context, account, id, clientID string) (Order, error) {
	instrument := ""
	if id == "" {
		claim, err := s.st.claimOf(ctx, account, clientID)
		if err != nil {
			return Order{}, err
		}
		id, instrument = claim.ID, claim.Instrument
	}
	o, err := s.recorded(ctx, id, instrument)
	if err != nil {
		return Order{}, err
	}
	if account != "" && o.Account != account {
		return Order{}, fmt.Errorf("%w: %s", ErrOrderNotFound, id)
	}
	return o, nil
}

// recorded returns order id from its record, or, while it has none yet,
// from its submit command (of instrument, if not empty).
func (s *Service) recorded(ctx context.Context, id, instrument string) (Order, error) {
	o, err := s.st.read(ctx, id)
	if errors.Is(err, ErrOrderNotFound) {
		return s.unrecorded(ctx, id, instrument)
	}
	return o, err
}

// cancel publishes the cancel of a working order; a final order is
// returned unchanged.
func (s *Service) cancel(ctx context.Context, account, id, clientID string) (Order, error) {
	o, err := s.find(ctx, account, id, clientID)
	if err != nil || o.Status.Final() {
		return o, err
	}
	return o, s.publishCancel(ctx, o)
}

// walletReason is the wallet's own words for a refusal, without the
// Connect code and the sentinel the caller's message already carries.
func walletReason(err error) string {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return err.Error()
	}
	return strings.TrimPrefix(ce.Message(), ErrInsufficientFunds.Error()+": ")
}
