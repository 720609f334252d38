package marketdata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"
)

// Domain errors, told apart with errors.Is.
var (
	// ErrInvalidArgument: a request field is missing or out of range.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInstrumentNotFound: no instrument has that symbol.
	ErrInstrumentNotFound = errors.New("instrument not found")
	// ErrNotReady: the service has not read the engine events yet.
	ErrNotReady = errors.New("market data not ready")
)

// invalidField is an ErrInvalidArgument naming the field at fault.
type invalidField struct{ field, why string }

func (e invalidField) Error() string { return fmt.Sprintf("%s: %s", e.field, e.why) }
func (e invalidField) Unwrap() error { return ErrInvalidArgument }

func invalid(field, why string) error { return invalidField{field, why} }

// toConnect is the one mapping from domain errors to Connect codes; other
// errors are logged here and reach the client as a generic Internal.
func toConnect(ctx context.Context, log *slog.Logger, err error) error {
	switch {
	case errors.Is(err, ErrInvalidArgument):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, ErrInstrumentNotFound):
		return connect.NewError(connect.CodeNotFound, err)
	case errors.Is(err, ErrNotReady):
		return connect.NewError(connect.CodeUnavailable, err)
	default:
		log.ErrorContext(ctx, "market data request failed", "err", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
}
