package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/internal/rpcerr"
)

// Errors of the metadata service, told apart with errors.Is.
var (
	// ErrInvalidArgument: a request field is invalid; the error is a
	// *FieldError naming the field.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: no instrument or configuration entry by that name.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: an instrument with that symbol exists already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrRevisionMismatch: an expected_revision did not match the current one.
	ErrRevisionMismatch = errors.New("revision mismatch")
)

// FieldError is an invalid request field. It wraps ErrInvalidArgument and
// the reason, and reads "tick_size: ...".
type FieldError struct {
	// Field is the request field's proto name ("tick_size").
	Field string
	// Err says what is wrong with it.
	Err error
}

// Error reads "<field>: <reason>".
func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns ErrInvalidArgument and the reason.
func (e *FieldError) Unwrap() []error { return []error{ErrInvalidArgument, e.Err} }

// invalid is a *FieldError for field.
func invalid(field string, err error) error { return &FieldError{Field: field, Err: err} }

// invalidf is a *FieldError for field with a formatted reason.
func invalidf(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// connectCodes are the service's rules for rpcerr: everything they do not
// name (a broker outage, the caller's cancellation, an unknown failure) is
// decided by rpcerr the same way for every service.
var connectCodes = rpcerr.Map{
	Service: "metadata",
	Rules: []rpcerr.Rule{
		{Code: connect.CodeInvalidArgument, Errors: []error{ErrInvalidArgument}},
		{Code: connect.CodeNotFound, Errors: []error{ErrNotFound}},
		{Code: connect.CodeAlreadyExists, Errors: []error{ErrAlreadyExists}},
		{Code: connect.CodeAborted, Errors: []error{ErrRevisionMismatch}},
	},
}

// toConnect is the one translation of the service's errors into Connect
// codes: invalid input InvalidArgument (the message is the *FieldError's,
// naming the field), unknown names NotFound, a taken symbol AlreadyExists,
// a stale expected_revision Aborted, a broker outage Unavailable, the
// caller's own cancellation Canceled or DeadlineExceeded. Anything else is
// Internal with a generic message; its detail is logged to log, once. An
// error that is a Connect error already (a stream's own) passes as it is.
func toConnect(ctx context.Context, log *slog.Logger, err error) error {
	var ce *connect.Error
	var fe *FieldError
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.As(err, &fe):
		err = fe // the caller reads "<field>: <reason>", not what wraps it
	}
	return connectCodes.ToConnect(ctx, log, err)
}
