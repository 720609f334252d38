package wallet

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
	// ErrInvalidArgument: a request field is missing or malformed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInsufficientFunds: a change would make a balance or hold negative.
	ErrInsufficientFunds = errors.New("insufficient funds")
	// ErrHoldNotFound: the hold never existed.
	ErrHoldNotFound = errors.New("hold not found")
	// ErrAlreadyExists: an idempotency key (transfer, hold, release id) was
	// used before with other parameters.
	ErrAlreadyExists = errors.New("already exists")
	// ErrOverflow: an amount does not fit the asset's fixed-point range.
	ErrOverflow = errors.New("amount out of range")
	// ErrConflict: the journal kept changing under the write (other
	// writers); the request can be retried.
	ErrConflict = errors.New("concurrent journal writes")
	// ErrCorruptJournal: a journal entry does not follow from the state
	// before it.
	ErrCorruptJournal = errors.New("corrupt journal")
	// ErrNotReady: the service has not finished rebuilding its state.
	ErrNotReady = errors.New("wallet not ready")
)

// invalidField is an ErrInvalidArgument naming the field at fault.
type invalidField struct{ field, why string }

func (e invalidField) Error() string { return fmt.Sprintf("%s: %s", e.field, e.why) }
func (e invalidField) Unwrap() error { return ErrInvalidArgument }

func invalid(field, why string) error { return invalidField{field: field, why: why} }

// toConnect is the one mapping from errors to Connect codes. Internal
// errors reach the client as a generic message and are logged once here.
func toConnect(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var code connect.Code
	switch {
	case errors.Is(err, ErrInvalidArgument), errors.Is(err, ErrOverflow):
		code = connect.CodeInvalidArgument
	case errors.Is(err, ErrInsufficientFunds):
		code = connect.CodeFailedPrecondition
	case errors.Is(err, ErrHoldNotFound):
		code = connect.CodeNotFound
	case errors.Is(err, ErrAlreadyExists):
		code = connect.CodeAlreadyExists
	case errors.Is(err, ErrConflict), errors.Is(err, streams.ErrConcurrency):
		code = connect.CodeAborted
	case errors.Is(err, ErrNotReady), errors.Is(err, streams.ErrUnavailable):
		log.WarnContext(ctx, "wallet unavailable", "error", err)
		return connect.NewError(connect.CodeUnavailable, errors.New("wallet unavailable, retry later"))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	default:
		log.ErrorContext(ctx, "wallet internal error", "error", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	return connect.NewError(code, err)
}
