// Package rpcerr turns a service's domain errors into Connect errors: the
// one tail every service's mapping shares. A service lists which of its
// sentinel errors mean which code; everything else is decided here the
// same way for all: not ready or broker away -> Unavailable (logged as a
// warning, a generic message to the caller), cancelled and deadline
// passed -> their codes, anything unknown -> Internal (logged with its
// detail, a generic message to the caller).
package rpcerr

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/streams"
)

// Rule maps errors matching any of Errors (errors.Is) to Code; the error
// itself is the message the caller sees.
type Rule struct {
	Code   connect.Code
	Errors []error
}

// Map is a service's mapping from domain errors to Connect codes.
type Map struct {
	// Service names the service in logs and in the Unavailable message
	// ("wallet").
	Service string
	// Rules are tried in order.
	Rules []Rule
	// Unavailable are the service's own errors that mean "retry later"
	// (not ready); streams.ErrUnavailable and a callee's Unavailable are
	// always among them.
	Unavailable []error
}

// ToConnect maps err (nil stays nil); log gets the detail of what the
// caller does not see.
func (m Map) ToConnect(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	for _, r := range m.Rules {
		for _, target := range r.Errors {
			if errors.Is(err, target) {
				return connect.NewError(r.Code, err)
			}
		}
	}
	switch {
	case m.unavailable(err):
		log.WarnContext(ctx, "service unavailable", "service", m.Service, "err", err)
		return connect.NewError(connect.CodeUnavailable, errors.New(m.Service+" unavailable, retry later"))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	default:
		log.ErrorContext(ctx, "internal error", "service", m.Service, "err", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
}

func (m Map) unavailable(err error) bool {
	if errors.Is(err, streams.ErrUnavailable) || connect.CodeOf(err) == connect.CodeUnavailable {
		return true
	}
	for _, target := range m.Unavailable {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
