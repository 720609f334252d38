package user

import (
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/internal/rpcerr"
)

// Errors of the user service, told apart with errors.Is.
var (
	// ErrInvalidArgument: a request field is invalid; the error names it.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: no profile for that user (yet).
	ErrNotFound = errors.New("not found")
	// ErrPermissionDenied: another user's profile.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrNotReady: the service has not opened its store yet.
	ErrNotReady = errors.New("user service not ready")
)

type fieldError struct{ field, why string }

func (e fieldError) Error() string { return fmt.Sprintf("%s: %s", e.field, e.why) }
func (e fieldError) Unwrap() error { return ErrInvalidArgument }

func invalid(field, why string) error { return fieldError{field: field, why: why} }

var errorMap = rpcerr.Map{
	Service: "user",
	Rules: []rpcerr.Rule{
		{Code: connect.CodeInvalidArgument, Errors: []error{ErrInvalidArgument}},
		{Code: connect.CodeNotFound, Errors: []error{ErrNotFound}},
		{Code: connect.CodePermissionDenied, Errors: []error{ErrPermissionDenied}},
	},
	Unavailable: []error{ErrNotReady},
}
