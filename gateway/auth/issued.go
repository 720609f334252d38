package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/time/rate"

	authv1 "github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1"
	"github.com/tradex-mesh/tradex/services/auth/token"
)

// Service is what Issued needs of the auth service: its Connect
// client, or its in-process handler.
type Service interface {
	GetSigningKeys(ctx context.Context, req *authv1.GetSigningKeysRequest) (*authv1.GetSigningKeysResponse, error)
	VerifyApiKey(ctx context.Context, req *authv1.VerifyApiKeyRequest) (*authv1.VerifyApiKeyResponse, error)
}

// SignedRequest is a request signed with an API key, as the gateway read
// it (package services/auth/signature says how it is signed).
type SignedRequest struct {
	KeyID     string
	Signature string
	// Message is what was signed: timestamp + method + path with query +
	// body.
	Message []byte
	// ClientIP is the client's address, for the key's allow-list.
	ClientIP string
}

// SignedVerifier verifies requests signed with API keys.
type SignedVerifier interface {
	VerifySigned(ctx context.Context, r SignedRequest) (Principal, error)
}

// IssuedConfig is what Issued checks tokens against.
type IssuedConfig struct {
	// Issuer, Audience and Leeway are the auth service's.
	Issuer, Audience string
	Leeway           time.Duration
	// KeysMaxAge is how long fetched signing keys are used before they are
	// fetched again. A token under a key id the keys lack fetches them at
	// once (a rotation), at most 5 times a second in all; a key id still
	// unknown after a fetch is refused without fetching for
	// UnknownKeyMemory.
	KeysMaxAge, UnknownKeyMemory time.Duration
	// Now is the clock tokens are checked at; nil is time.Now.
	Now func() time.Time
}

// DefaultIssued matches the auth service's defaults.
func DefaultIssued() IssuedConfig {
	return IssuedConfig{Issuer: "tradex", Audience: "tradex-api", Leeway: 30 * time.Second,
		KeysMaxAge: 5 * time.Minute, UnknownKeyMemory: 10 * time.Second}
}

// Issued is the verifier of the credentials the auth service issues:
// access tokens, checked here against the service's signing keys (fetched
// and cached), and requests signed with API keys, checked by the service.
// A user the service disabled is refused at once, whatever their token
// says, once UserChanged has told it.
type Issued struct {
	cfg IssuedConfig
	svc Service
	now func() time.Time

	mu      sync.Mutex
	keys    token.KeySet
	fetched time.Time
	refetch *rate.Limiter        // fetches for unknown key ids
	unknown map[string]time.Time // key ids still unknown after a fetch, and when

	disabled sync.Map // user id -> struct{}

	// verified remembers the tokens whose signature checked out (an
	// Ed25519 verification is most of a request's authentication cost),
	// with their key id and claims; at most maxVerified, then it starts
	// over. An entry counts only while its token is within its life and
	// its key is still among the signing keys.
	verifiedMu sync.Mutex
	verified   map[string]verifiedToken
}

// verifiedToken is a token whose signature and claims were checked.
type verifiedToken struct {
	kid    string
	claims token.Claims
}

// maxVerified bounds Issued's memory of verified tokens.
const maxVerified = 4096

// NewIssued returns a verifier over svc.
func NewIssued(cfg IssuedConfig, svc Service) *Issued {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Issued{cfg: cfg, svc: svc, now: now, refetch: rate.NewLimiter(rate.Every(200*time.Millisecond), 5), unknown: map[string]time.Time{},
		verified: map[string]verifiedToken{}}
}

// Verify implements Verifier for access tokens.
func (v *Issued) Verify(ctx context.Context, credential string) (Principal, error) {
	tc := token.Config{Issuer: v.cfg.Issuer, Audience: v.cfg.Audience, Leeway: v.cfg.Leeway}
	keys, err := v.signingKeys(ctx, "")
	if err != nil {
		return Principal{}, err
	}
	if c, ok := v.known(credential, keys); ok {
		return v.principal(c)
	}
	c, err := token.Verify(tc, keys, credential, v.now())
	var kid string
	if errors.Is(err, token.ErrUnknownKey) { // a key added since the last fetch?
		kid = token.KeyID(credential)
		if keys, err = v.signingKeys(ctx, kid); err != nil {
			return Principal{}, err
		}
		c, err = token.Verify(tc, keys, credential, v.now())
	}
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidCredential, err)
	}
	v.remember(credential, token.KeyID(credential), c)
	return v.principal(c)
}

// principal is the caller a token's claims name, unless the user was
// disabled since it was issued.
func (v *Issued) principal(c token.Claims) (Principal, error) {
	if _, off := v.disabled.Load(c.Subject); off {
		return Principal{}, fmt.Errorf("%w: user %s is disabled", ErrInvalidCredential, c.Subject)
	}
	return Principal{Subject: c.Subject, AccountID: c.Subject, Roles: slices.Clone(c.Roles), Admin: slices.Contains(c.Roles, RoleAdmin)}, nil
}

// known returns the claims of a token verified before, if it is still
// within its life (with the leeway) and its key is still in keys.
func (v *Issued) known(credential string, keys token.KeySet) (token.Claims, bool) {
	v.verifiedMu.Lock()
	defer v.verifiedMu.Unlock()
	vt, ok := v.verified[credential]
	if !ok {
		return token.Claims{}, false
	}
	now := v.now()
	_, keyed := keys[vt.kid]
	if !keyed || now.After(vt.claims.Expiry.Add(v.cfg.Leeway)) || now.Before(vt.claims.IssuedAt.Add(-v.cfg.Leeway)) {
		delete(v.verified, credential) // verified again, and refused with the reason
		return token.Claims{}, false
	}
	return vt.claims, true
}

// remember notes a verified token.
func (v *Issued) remember(credential, kid string, c token.Claims) {
	v.verifiedMu.Lock()
	defer v.verifiedMu.Unlock()
	if len(v.verified) >= maxVerified {
		clear(v.verified)
	}
	v.verified[credential] = verifiedToken{kid: kid, claims: c}
}

// signingKeys returns the cached keys, fetched again when older than
// KeysMaxAge or, for a token under the key id kid they lack, when that id
// was not found by a recent fetch and the fetch rate allows.
func (v *Issued) signingKeys(ctx context.Context, kid string) (token.KeySet, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	fresh := v.keys != nil && now.Sub(v.fetched) < v.cfg.KeysMaxAge
	if kid != "" {
		if at, seen := v.unknown[kid]; (seen && now.Sub(at) < v.cfg.UnknownKeyMemory) || !v.refetch.Allow() {
			return v.keys, nil
		}
		fresh = false
	}
	if fresh {
		return v.keys, nil
	}
	res, err := v.svc.GetSigningKeys(ctx, &authv1.GetSigningKeysRequest{})
	if err == nil {
		var keys token.KeySet
		if keys, err = token.ParseJWKS(res.GetJwks()); err == nil {
			v.keys, v.fetched = keys, now
			if _, ok := keys[kid]; kid != "" && !ok {
				if len(v.unknown) >= 1024 {
					clear(v.unknown)
				}
				v.unknown[kid] = now
			}
			return keys, nil
		}
	}
	if v.keys != nil { // the service is away: the keys it signed with are still good
		return v.keys, nil
	}
	return nil, fmt.Errorf("fetch signing keys: %w", err)
}

// VerifySigned implements SignedVerifier: the auth service checks the key
// and the signature.
func (v *Issued) VerifySigned(ctx context.Context, r SignedRequest) (Principal, error) {
	res, err := v.svc.VerifyApiKey(ctx, &authv1.VerifyApiKeyRequest{ApiKeyId: r.KeyID, Message: r.Message, Signature: r.Signature, ClientIp: r.ClientIP})
	switch code := connect.CodeOf(err); {
	case err == nil:
	case code == connect.CodeUnauthenticated || code == connect.CodeInvalidArgument || code == connect.CodeNotFound:
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidCredential, err)
	default:
		return Principal{}, fmt.Errorf("verify API key: %w", err)
	}
	u := res.GetUser()
	p := Principal{Subject: u.GetUserId(), AccountID: u.GetUserId(), Scopes: []string{}}
	for _, r := range u.GetRoles() {
		p.Roles = append(p.Roles, roleName(r))
	}
	for _, s := range res.GetApiKey().GetScopes() {
		p.Scopes = append(p.Scopes, scopeName(s))
	}
	p.Admin = slices.Contains(p.Roles, RoleAdmin)
	return p, nil
}

// UserChanged tells the verifier that a user was disabled (or enabled):
// the platform feeds it the auth service's events.
func (v *Issued) UserChanged(userID string, disabled bool) {
	if disabled {
		v.disabled.Store(userID, struct{}{})
		return
	}
	v.disabled.Delete(userID)
}

func roleName(r authv1.Role) string {
	switch r {
	case authv1.Role_ROLE_TRADER:
		return RoleTrader
	case authv1.Role_ROLE_ADMIN:
		return RoleAdmin
	case authv1.Role_ROLE_SERVICE:
		return RoleService
	}
	return ""
}

func scopeName(s authv1.ApiKeyScope) string {
	switch s {
	case authv1.ApiKeyScope_API_KEY_SCOPE_READ:
		return ScopeRead
	case authv1.ApiKeyScope_API_KEY_SCOPE_TRADE:
		return ScopeTrade
	case authv1.ApiKeyScope_API_KEY_SCOPE_TRANSFER:
		return ScopeTransfer
	}
	return ""
}
