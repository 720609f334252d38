package auth

import (
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/internal/rpcerr"
)

// Errors of the auth service, told apart with errors.Is.
var (
	// ErrInvalidArgument: a request field is invalid; the error names it.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrUnauthenticated: wrong credentials, an unknown, expired or revoked
	// token or key, a disabled user. Callers are told no more than that.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: the caller may not do this.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrNotFound: no such user or key.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the email is registered already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrThrottled: too many failed logins from this address.
	ErrThrottled = errors.New("too many failed logins")
	// ErrNotReady: the service has not opened its state yet.
	ErrNotReady = errors.New("auth not ready")
)

// fieldError is an ErrInvalidArgument naming its field.
type fieldError struct{ field, why string }

func (e fieldError) Error() string { return fmt.Sprintf("%s: %s", e.field, e.why) }
func (e fieldError) Unwrap() error { return ErrInvalidArgument }

func invalid(field, why string) error { return fieldError{field: field, why: why} }

// errorMap is the one mapping from the service's errors to Connect codes.
var errorMap = rpcerr.Map{
	Service: "auth",
	Rules: []rpcerr.Rule{
		{Code: connect.CodeInvalidArgument, Errors: []error{ErrInvalidArgument}},
		{Code: connect.CodeUnauthenticated, Errors: []error{ErrUnauthenticated}},
		{Code: connect.CodePermissionDenied, Errors: []error{ErrPermissionDenied}},
		{Code: connect.CodeNotFound, Errors: []error{ErrNotFound}},
		{Code: connect.CodeAlreadyExists, Errors: []error{ErrAlreadyExists}},
		{Code: connect.CodeResourceExhausted, Errors: []error{ErrThrottled}},
	},
	Unavailable: []error{ErrNotReady},
}
