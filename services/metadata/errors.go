package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/streams"
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

// errInternal and errUnavailable are what clients see of failures whose
// detail stays in the log.
var (
	errInternal    = errors.New("internal error")
	errUnavailable = errors.New("metadata store unavailable, retry later")
)

// connectError is the one translation of the service's errors into Connect
// codes: invalid input InvalidArgument (the message names the field),
// unknown names NotFound, a taken symbol AlreadyExists, a stale
// expected_revision Aborted, a broker outage Unavailable, the caller's own
// cancellation Canceled or DeadlineExceeded. Anything else is Internal with a
// generic message; its detail is logged here, once.
func connectError(ctx context.Context, logger *slog.Logger, procedure string, err error) error {
	if err == nil {
		return nil
	}
	var fe *FieldError
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		return ce // already translated (a stream's own error)
	case errors.As(err, &fe):
		return connect.NewError(connect.CodeInvalidArgument, fe)
	case errors.Is(err, ErrNotFound):
		return connect.NewError(connect.CodeNotFound, err)
	case errors.Is(err, ErrAlreadyExists):
		return connect.NewError(connect.CodeAlreadyExists, err)
	case errors.Is(err, ErrRevisionMismatch):
		return connect.NewError(connect.CodeAborted, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	case errors.Is(err, streams.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded):
		logger.WarnContext(ctx, "metadata store unavailable", "procedure", procedure, "err", err)
		return connect.NewError(connect.CodeUnavailable, errUnavailable)
	default:
		logger.ErrorContext(ctx, "metadata request failed", "procedure", procedure, "err", err)
		return connect.NewError(connect.CodeInternal, errInternal)
	}
}
