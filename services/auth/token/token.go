// Package token issues and verifies the platform's access tokens: JWTs
// signed with Ed25519 (EdDSA) under a key id, checked against a key set
// that is also published as a JWKS. It does no I/O.
//
// Verification accepts EdDSA only (an "alg" of none, HS256 or anything
// else is refused before any key is used), requires the issuer, the
// audience, an expiry and an issue time, and allows a small clock leeway.
package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Errors of Verify, told apart with errors.Is.
var (
	// ErrInvalid is a token that is malformed, tampered with, signed with
	// another algorithm, expired or meant for another issuer or audience.
	ErrInvalid = errors.New("invalid token")
	// ErrUnknownKey is a well-formed token signed under a key id the key
	// set does not hold: the verifier may refresh its keys and retry.
	ErrUnknownKey = errors.New("unknown signing key")
)

// MaxLen bounds a token's length; a longer one is refused unread.
const MaxLen = 4096

// Config is what tokens say and how long they hold.
type Config struct {
	// Issuer is the "iss" claim, e.g. "tradex".
	Issuer string
	// Audience is the "aud" claim, e.g. "tradex-api".
	Audience string
	// Leeway is the clock skew allowed when checking times.
	Leeway time.Duration
}

// Key is one signing key.
type Key struct {
	// ID is the key id ("kid") that names it in tokens and the JWKS.
	ID string
	// Private signs.
	Private ed25519.PrivateKey
}

// NewKey generates a key with a random id.
func NewKey() (Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("generate signing key: %w", err)
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return Key{}, fmt.Errorf("generate key id: %w", err)
	}
	return Key{ID: hex.EncodeToString(id), Private: priv}, nil
}

// Public is the key's verifying half.
func (k Key) Public() ed25519.PublicKey { return k.Private.Public().(ed25519.PublicKey) } //nolint:forcetypeassert // an ed25519 private key's public half

// Claims are what an access token says.
type Claims struct {
	// Subject is the user id (also their trading account id).
	Subject string
	// Roles are the user's roles when the token was issued.
	Roles []string
	// Session is the id of the login (the refresh-token family) the token
	// belongs to.
	Session string
	// ID is the token's own id ("jti").
	ID string
	// IssuedAt and Expiry bound the token's life.
	IssuedAt, Expiry time.Time
}

// payload is the JSON of a token.
type payload struct {
	jwt.Claims
	Roles   []string `json:"roles,omitempty"`
	Session string   `json:"sid,omitempty"`
}

// Sign returns c as a compact JWT signed with k.
func Sign(cfg Config, k Key, c Claims) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: k.Private},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), k.ID))
	if err != nil {
		return "", fmt.Errorf("token signer: %w", err)
	}
	p := payload{
		Claims: jwt.Claims{
			Issuer: cfg.Issuer, Audience: jwt.Audience{cfg.Audience}, Subject: c.Subject, ID: c.ID,
			IssuedAt: jwt.NewNumericDate(c.IssuedAt), NotBefore: jwt.NewNumericDate(c.IssuedAt), Expiry: jwt.NewNumericDate(c.Expiry),
		},
		Roles: c.Roles, Session: c.Session,
	}
	s, err := jwt.Signed(signer).Claims(p).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// KeyID reads the key id of a token without checking anything ("" when
// it has none or is malformed).
func KeyID(raw string) string {
	if len(raw) > MaxLen {
		return ""
	}
	t, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(t.Headers) != 1 {
		return ""
	}
	return t.Headers[0].KeyID
}

// KeySet holds the public keys tokens may be signed with, by key id.
type KeySet map[string]ed25519.PublicKey

// Verify checks raw against keys and cfg at now and returns its claims.
// Any failure wraps ErrInvalid, or ErrUnknownKey for a key id keys does
// not hold.
func Verify(cfg Config, keys KeySet, raw string, now time.Time) (Claims, error) {
	if len(raw) > MaxLen {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxLen)
	}
	t, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(t.Headers) != 1 {
		return Claims{}, fmt.Errorf("%w: want one signature", ErrInvalid)
	}
	kid := t.Headers[0].KeyID
	pub, ok := keys[kid]
	if !ok {
		return Claims{}, fmt.Errorf("%w: %q", ErrUnknownKey, kid)
	}
	var p payload
	if err := t.Claims(pub, &p); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if p.Expiry == nil || p.IssuedAt == nil || p.Subject == "" {
		return Claims{}, fmt.Errorf("%w: exp, iat and sub are required", ErrInvalid)
	}
	if err := p.ValidateWithLeeway(jwt.Expected{Issuer: cfg.Issuer, AnyAudience: jwt.Audience{cfg.Audience}, Time: now}, cfg.Leeway); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return Claims{
		Subject: p.Subject, Roles: slices.Clone(p.Roles), Session: p.Session, ID: p.ID,
		IssuedAt: p.IssuedAt.Time(), Expiry: p.Expiry.Time(),
	}, nil
}
