package wallet

import (
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/internal/rpcerr"
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

// errorMap is the one mapping from errors to Connect codes. Internal
// errors reach the client as a generic message and are logged once by it.
var errorMap = rpcerr.Map{
	Service: "wallet",
	Rules: []rpcerr.Rule{
		{Code: connect.CodeInvalidArgument, Errors: []error{ErrInvalidArgument, ErrOverflow}},
		{Code: connect.CodeFailedPrecondition, Errors: []error{ErrInsufficientFunds}},
		{Code: connect.CodeNotFound, Errors: []error{ErrHoldNotFound}},
		{Code: connect.CodeAlreadyExists, Errors: []error{ErrAlreadyExists}},
		{Code: connect.CodeAborted, Errors: []error{ErrConflict, streams.ErrConcurrency}},
	},
	Unavailable: []error{ErrNotReady},
}
