// Package auth says who a gateway request acts for.
//
// The gateway reads a credential (a REST request's `Authorization: Bearer
// <token>` or `X-API-Key` header, a WebSocket connection's auth frame) and
// asks a Verifier for the Principal behind it. Until the auth service issues
// tokens, Dev is the verifier `tradex serve` uses: fine on a laptop or in a
// test, never on a network others can reach.
package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalidCredential is a credential the verifier does not accept
// (unknown, malformed, expired, revoked).
var ErrInvalidCredential = errors.New("invalid credential")

// Principal is who a request acts for.
type Principal struct {
	// Subject names the caller in logs and rate limits (a user id, an API
	// key id).
	Subject string
	// AccountID is the trading account the caller acts for; empty for a
	// caller without one (an operator).
	AccountID string
	// Admin allows the admin API (instruments, deposits, withdrawals) and
	// acting for any account: the admin role.
	Admin bool
	// Roles are the caller's roles: RoleTrader, RoleAdmin, RoleService.
	Roles []string
	// Scopes, for a request signed with an API key, are what the key may
	// do (ScopeRead, ScopeTrade, ScopeTransfer); nil for a token, which may
	// do whatever its roles may.
	Scopes []string
}

// Roles and API-key scopes, as the auth service names them.
const (
	RoleTrader    = "trader"
	RoleAdmin     = "admin"
	RoleService   = "service"
	ScopeRead     = "read"
	ScopeTrade    = "trade"
	ScopeTransfer = "transfer"
)

// HasRole reports whether p has role.
func (p Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

// Allows reports whether p's credential may be used for scope: always for
// a token, for an API key when the key has the scope.
func (p Principal) Allows(scope string) bool {
	return p.Scopes == nil || slices.Contains(p.Scopes, scope)
}

// Verifier turns a credential into the principal it stands for. It
// returns an error wrapping ErrInvalidCredential for a credential it does
// not accept, and any other error when it cannot tell (its backend is
// away).
type Verifier interface {
	Verify(ctx context.Context, credential string) (Principal, error)
}

// Dev is the development verifier: a bearer token `<account>` acts for
// that account (letters, digits, '-' and '_', at most 64), and AdminToken
// is the admin. Anyone who can reach the gateway can act for any account:
// it exists for local use and tests until the auth service lands.
type Dev struct {
	// AdminToken is the admin's token; empty means no admin.
	AdminToken string
}

// Verify implements Verifier.
func (d Dev) Verify(_ context.Context, credential string) (Principal, error) {
	if d.AdminToken != "" && subtle.ConstantTimeCompare([]byte(credential), []byte(d.AdminToken)) == 1 {
		return Principal{Subject: "admin", Admin: true, Roles: []string{RoleAdmin}}, nil
	}
	if err := checkAccountID(credential); err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidCredential, err)
	}
	return Principal{Subject: credential, AccountID: credential, Roles: []string{RoleTrader}}, nil
}

// checkAccountID accepts the ids a dev token may name.
func checkAccountID(id string) error {
	if id == "" || len(id) > 64 {
		return errors.New("a dev token is an account id of 1 to 64 characters")
	}
	if i := strings.IndexFunc(id, func(r rune) bool {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
		return !ok
	}); i >= 0 {
		return fmt.Errorf("a dev token may only hold letters, digits, '-' and '_' (found %q)", id[i])
	}
	return nil
}

// Tokens is a verifier over a fixed table of tokens, for deployments that
// hand out static API keys.
type Tokens map[string]Principal

// Verify implements Verifier.
func (t Tokens) Verify(_ context.Context, credential string) (Principal, error) {
	if p, ok := t[credential]; ok && credential != "" {
		return p, nil
	}
	return Principal{}, ErrInvalidCredential
}

// FromHeader extracts the credential of an HTTP request: the token of an
// `Authorization: Bearer <token>` header, else the `X-API-Key` header.
// ok is false when the request carries neither.
func FromHeader(authorization, apiKey string) (credential string, ok bool) {
	if scheme, token, found := strings.Cut(strings.TrimSpace(authorization), " "); found && strings.EqualFold(scheme, "Bearer") {
		if token = strings.TrimSpace(token); token != "" {
			return token, true
		}
	}
	if apiKey = strings.TrimSpace(apiKey); apiKey != "" {
		return apiKey, true
	}
	return "", false
}
