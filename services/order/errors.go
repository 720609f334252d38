package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/internal/rpcerr"
	"github.com/tradex-mesh/tradex/streams"
)

// Domain errors, told apart with errors.Is.
var (
	// ErrInvalidArgument: a request field is missing or breaks the
	// instrument's rules.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInstrumentNotFound: no instrument has that symbol.
	ErrInstrumentNotFound = errors.New("instrument not found")
	// ErrNotTradable: the instrument is halted, or of a kind this service
	// does not trade yet (perpetuals).
	ErrNotTradable = errors.New("instrument not tradable")
	// ErrInsufficientFunds: the wallet cannot hold the order's funds.
	ErrInsufficientFunds = errors.New("insufficient funds")
	// ErrOrderNotFound: the account has no such order.
	ErrOrderNotFound = errors.New("order not found")
	// ErrAlreadyExists: a client order id was used before for another order.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the order changed under a write; retry.
	ErrConflict = errors.New("concurrent order writes")
	// ErrNotReady: the service has not loaded its orders yet.
	ErrNotReady = errors.New("order service not ready")
	// ErrBusy: settlement is further behind than Config.MaxBacklog; new
	// orders wait until it catches up.
	ErrBusy = errors.New("settlement is behind")
)

// retryAfter is the Retry-After (seconds) an ErrBusy answer carries.
const retryAfter = "1"

// invalidField is an ErrInvalidArgument naming the field at fault.
type invalidField struct{ field, why string }

func (e invalidField) Error() string { return fmt.Sprintf("%s: %s", e.field, e.why) }
func (e invalidField) Unwrap() error { return ErrInvalidArgument }

func invalid(field, why string) error { return invalidField{field: field, why: why} }

// errorCodes is the one mapping from the service's errors to Connect
// codes; rpcerr decides the rest (not ready or broker away -> Unavailable,
// anything unlisted -> Internal, logged, with a generic message). A
// Connect error from a dependency (the wallet) keeps its code only when it
// is Unavailable.
func errorCodes() rpcerr.Map {
	return rpcerr.Map{
		Service: "order service",
		Rules: []rpcerr.Rule{
			{Code: connect.CodeInvalidArgument, Errors: []error{ErrInvalidArgument}},
			{Code: connect.CodeNotFound, Errors: []error{ErrInstrumentNotFound, ErrOrderNotFound}},
			{Code: connect.CodeFailedPrecondition, Errors: []error{ErrNotTradable, ErrInsufficientFunds, ErrMarginRefused}},
			{Code: connect.CodeAlreadyExists, Errors: []error{ErrAlreadyExists}},
			{Code: connect.CodeAborted, Errors: []error{ErrConflict, streams.ErrConcurrency}},
			{Code: connect.CodeUnavailable, Errors: []error{ErrBusy}},
		},
		Unavailable: []error{ErrNotReady},
	}
}

// toConnect maps err to its Connect error, logging what the caller does
// not see. ErrBusy carries a Retry-After header (the gateway answers REST
// with it).
func toConnect(ctx context.Context, log *slog.Logger, err error) error {
	out := errorCodes().ToConnect(ctx, log, err)
	var ce *connect.Error
	if errors.Is(err, ErrBusy) && errors.As(out, &ce) {
		ce.Meta().Set("Retry-After", retryAfter)
	}
	return out
}
