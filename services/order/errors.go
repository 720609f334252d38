package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"

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
)

// invalidField is an ErrInvalidArgument naming the field at fault.
type invalidField struct{ field, why string }

func (e invalidField) Error() string { return fmt.Sprintf("%s: %s", e.field, e.why) }
func (e invalidField) Unwrap() error { return ErrInvalidArgument }

func invalid(field, why string) error { return invalidField{field: field, why: why} }

// toConnect is the one mapping from errors to Connect codes. Internal
// errors reach the client as a generic message and are logged once here.
// A Connect error from a dependency (the wallet) keeps its code only where
// it is listed here.
func toConnect(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var code connect.Code
	switch {
	case errors.Is(err, ErrInvalidArgument):
		code = connect.CodeInvalidArgument
	case errors.Is(err, ErrInstrumentNotFound), errors.Is(err, ErrOrderNotFound):
		code = connect.CodeNotFound
	case errors.Is(err, ErrNotTradable), errors.Is(err, ErrInsufficientFunds):
		code = connect.CodeFailedPrecondition
	case errors.Is(err, ErrAlreadyExists):
		code = connect.CodeAlreadyExists
	case errors.Is(err, ErrConflict), errors.Is(err, streams.ErrConcurrency):
		code = connect.CodeAborted
	case errors.Is(err, ErrNotReady), errors.Is(err, streams.ErrUnavailable), connect.CodeOf(err) == connect.CodeUnavailable:
		log.WarnContext(ctx, "order service unavailable", "error", err)
		return connect.NewError(connect.CodeUnavailable, errors.New("order service unavailable, retry later"))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	default:
		log.ErrorContext(ctx, "order internal error", "error", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	return connect.NewError(code, err)
}
