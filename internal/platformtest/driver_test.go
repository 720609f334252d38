package platformtest_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sync/errgroup"

	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/internal/platformtest"
)

// walletScale is the wallet's scale of every asset (wallet.Default()).
const walletScale = 8

// retryFor bounds how long one action is retried while a service is down.
const retryFor = time.Minute

// driving says how actions are issued.
type driving int

const (
	// perMarket runs one goroutine per instrument, each issuing its
	// actions in scenario order: the command stream of an instrument is
	// the same in every run.
	perMarket driving = iota
	// perAccount runs one goroutine per account: accounts race each other.
	perAccount
)

// outcome is what the clients saw.
type outcome struct {
	mu sync.Mutex
	// placed: client order id -> order id; unfunded: refused with
	// FailedPrecondition (insufficient funds).
	placed   map[string]string
	unfunded map[string]bool
	// moved: asset -> deposits minus successful withdrawals, per account.
	moved map[string]map[string]*big.Int
	// done counts finished actions; retries counts attempts that met an
	// unavailable service.
	done, retries atomic.Int64
}

func (o *outcome) move(acct, asset string, amount int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.moved[acct] == nil {
		o.moved[acct] = map[string]*big.Int{}
	}
	if o.moved[acct][asset] == nil {
		o.moved[acct][asset] = new(big.Int)
	}
	o.moved[acct][asset].Add(o.moved[acct][asset], big.NewInt(amount))
}

func newOutcome() *outcome {
	return &outcome{placed: map[string]string{}, unfunded: map[string]bool{}, moved: map[string]map[string]*big.Int{}}
}

// drive deposits f into every account, then runs the actions.
func drive(ctx context.Context, p *platformtest.Platform, out *outcome, acts []action, accounts int, f funds, how driving) error {
	for i := range accounts {
		acct := fmt.Sprintf("acct%02d", i)
		for asset, amount := range f {
			_, err := retry(ctx, out, func(ctx context.Context) (*walletv1.DepositResponse, error) {
				return p.Wallet.Deposit(ctx, &walletv1.DepositRequest{
					TransferId: "dep-" + acct + "-" + asset, AccountId: acct, Asset: asset, Amount: amount})
			})
			if err != nil {
				return fmt.Errorf("deposit %s %s: %w", acct, asset, err)
			}
			v, err := decimal.Parse(amount, walletScale)
			if err != nil {
				return err
			}
			out.move(acct, asset, v)
		}
	}
	lanes := make(map[int][]action)
	for _, a := range acts {
		lane := a.market
		if how == perAccount {
			fmt.Sscanf(a.account, "acct%d", &lane) //nolint:errcheck // the scenario's own names
		}
		lanes[lane] = append(lanes[lane], a)
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, lane := range lanes {
		g.Go(func() error {
			for _, a := range lane {
				if err := do(ctx, p, out, a); err != nil {
					return err
				}
				out.done.Add(1)
			}
			return nil
		})
	}
	return g.Wait()
}

// do runs one action, retrying while a service is unavailable.
func do(ctx context.Context, p *platformtest.Platform, out *outcome, a action) error {
	switch a.kind {
	case actPlace:
		res, err := retry(ctx, out, func(ctx context.Context) (*orderv1.PlaceOrderResponse, error) {
			return p.Orders.PlaceOrder(ctx, a.place)
		})
		cid := a.place.GetClientOrderId()
		out.mu.Lock()
		defer out.mu.Unlock()
		switch {
		case err == nil:
			out.placed[cid] = res.GetOrder().GetOrderId()
		case connect.CodeOf(err) == connect.CodeFailedPrecondition:
			out.unfunded[cid] = true
		default:
			return fmt.Errorf("place %s: %w", cid, err)
		}
	case actCancel:
		_, err := retry(ctx, out, func(ctx context.Context) (*orderv1.CancelOrderResponse, error) {
			return p.Orders.CancelOrder(ctx, &orderv1.CancelOrderRequest{AccountId: a.account, ClientOrderId: a.cancel})
		})
		if err != nil && connect.CodeOf(err) != connect.CodeNotFound { // NotFound: the order was never placed
			return fmt.Errorf("cancel %s: %w", a.cancel, err)
		}
	case actWithdraw:
		_, err := retry(ctx, out, func(ctx context.Context) (*walletv1.WithdrawResponse, error) {
			return p.Wallet.Withdraw(ctx, &walletv1.WithdrawRequest{
				TransferId: a.transferID, AccountId: a.account, Asset: a.asset, Amount: a.amount})
		})
		switch {
		case err == nil:
			v, perr := decimal.Parse(a.amount, walletScale)
			if perr != nil {
				return perr
			}
			out.move(a.account, a.asset, -v)
		case connect.CodeOf(err) != connect.CodeFailedPrecondition:
			return fmt.Errorf("withdraw %s: %w", a.transferID, err)
		}
	}
	return nil
}

// retry calls f until it succeeds or fails for a reason other than a
// service being unavailable (which a restart cures), for at most retryFor.
// Every call is a retry-safe request: it carries an idempotency key.
func retry[T any](ctx context.Context, out *outcome, f func(context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(retryFor)
	for backoff := 2 * time.Millisecond; ; backoff = min(2*backoff, 100*time.Millisecond) {
		callCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		v, err := f(callCtx)
		cancel()
		switch connect.CodeOf(err) {
		case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeAborted, connect.CodeInternal:
		default:
			return v, err
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return v, errors.Join(err, ctx.Err())
		}
		out.retries.Add(1)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

func mustParse(t testing.TB, s string) int64 {
	t.Helper()
	v, err := decimal.Parse(s, walletScale)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}
