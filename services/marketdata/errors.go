package marketdata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/internal/rpcerr"
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

// errorCodes is the one mapping from domain errors to Connect codes;
// rpcerr decides the rest (not ready or broker away -> Unavailable,
// anything unlisted -> Internal, logged, with a generic message).
func errorCodes() rpcerr.Map {
	return rpcerr.Map{
		Service: "market data",
		Rules: []rpcerr.Rule{
			{Code: connect.CodeInvalidArgument, Errors: []error{ErrInvalidArgument}},
			{Code: connect.CodeNotFound, Errors: []error{ErrInstrumentNotFound}},
		},
		Unavailable: []error{ErrNotReady},
	}
}

// toConnect maps err to its Connect error, logging what the caller does
// not see.
func toConnect(ctx context.Context, log *slog.Logger, err error) error {
	return errorCodes().ToConnect(ctx, log, err)
}
