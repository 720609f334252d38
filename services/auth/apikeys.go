package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/tradex-mesh/tradex/services/auth/signature"
)

// MaxKeysPerUser bounds the API keys (revoked ones aside) a user holds.
const MaxKeysPerUser = 20

// purposeAPIKey binds sealed API-key secrets to their use.
const purposeAPIKey = "tradex-auth-api-key" //nolint:gosec // a label bound into the encryption, not a credential

// NewKey is what CreateKey makes a key from.
type NewKey struct {
	UserID     string
	Name       string
	Scopes     []string // empty: read and trade
	AllowedIPs []string
	Expires    time.Time // zero: never
	PublicKey  []byte    // Ed25519; empty: an HMAC secret is generated
}

// CreateKey creates an API key for a user. It returns the key and, for an
// HMAC key, its secret (hex), which is never shown again.
func (s *Service) CreateKey(ctx context.Context, nk NewKey) (APIKey, string, error) {
	if err := s.opened(); err != nil {
		return APIKey{}, "", err
	}
	u, err := s.user(ctx, nk.UserID)
	if err != nil {
		return APIKey{}, "", err
	}
	if u.Disabled {
		return APIKey{}, "", fmt.Errorf("%w: user %s is disabled", ErrPermissionDenied, u.ID)
	}
	k := APIKey{UserID: u.ID, Name: nk.Name, Created: s.now(), Expires: nk.Expires}
	if err := s.checkNewKey(ctx, u, nk, &k); err != nil {
		return APIKey{}, "", err
	}
	if k.ID, err = newID("ak", 8); err != nil {
		return APIKey{}, "", err
	}
	secret := ""
	if len(nk.PublicKey) > 0 {
		k.Kind, k.PublicKey = KindEd25519, nk.PublicKey
	} else {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return APIKey{}, "", fmt.Errorf("random secret: %w", err)
		}
		secret = hex.EncodeToString(raw)
		if k.Sealed, err = s.seal.seal(purposeAPIKey, []byte(secret)); err != nil {
			return APIKey{}, "", err
		}
		k.Kind = KindHMAC
	}
	if err := s.st.create(ctx, "apikey."+k.ID, k); err != nil {
		return APIKey{}, "", err
	}
	return k, secret, nil
}

// checkNewKey checks what a new key asks for and fills k with it.
func (s *Service) checkNewKey(ctx context.Context, u User, nk NewKey, k *APIKey) error {
	if len(nk.Name) > 64 || strings.IndexFunc(nk.Name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return invalid("name", "must be at most 64 printable characters")
	}
	k.Scopes = slices.Compact(slices.Sorted(slices.Values(nk.Scopes)))
	if len(k.Scopes) == 0 {
		k.Scopes = []string{ScopeRead, ScopeTrade}
	}
	for _, sc := range k.Scopes {
		switch {
		case sc != ScopeRead && sc != ScopeTrade && sc != ScopeTransfer:
			return invalid("scopes", fmt.Sprintf("unknown scope %q", sc))
		case sc == ScopeTransfer && !u.HasRole(RoleAdmin):
			return fmt.Errorf("%w: scopes: transfer is for admins' keys only", ErrPermissionDenied)
		}
	}
	ips, err := parseAllowedIPs(nk.AllowedIPs)
	if err != nil {
		return err
	}
	k.AllowedIPs = ips
	if !nk.Expires.IsZero() && !nk.Expires.After(s.now()) {
		return invalid("expires_at", "must be in the future")
	}
	if len(nk.PublicKey) > 0 && len(nk.PublicKey) != ed25519.PublicKeySize {
		return invalid("public_key", "must be a 32-byte Ed25519 public key in base64")
	}
	keys, err := s.Keys(ctx, u.ID, false)
	if err != nil {
		return err
	}
	if len(keys) >= MaxKeysPerUser {
		return invalid("user_id", fmt.Sprintf("holds %d API keys already, the most allowed: revoke one first", MaxKeysPerUser))
	}
	return nil
}

// DecodePublicKey reads a base64 (standard or URL, padded or not) Ed25519
// public key.
func DecodePublicKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
			return b, nil
		}
	}
	return nil, invalid("public_key", "must be a 32-byte Ed25519 public key in base64")
}

// Keys returns a user's API keys, oldest first; revoked ones only with
// includeRevoked.
func (s *Service) Keys(ctx context.Context, userID string, includeRevoked bool) ([]APIKey, error) {
	if err := s.opened(); err != nil {
		return nil, err
	}
	keys, err := all[APIKey](ctx, s.st, "apikey.")
	if err != nil {
		return nil, err
	}
	keys = slices.DeleteFunc(keys, func(k APIKey) bool {
		return k.UserID != userID || (!includeRevoked && !k.Revoked.IsZero())
	})
	slices.SortFunc(keys, func(a, b APIKey) int { return a.Created.Compare(b.Created) })
	return keys, nil
}

// key reads an API key.
func (s *Service) key(ctx context.Context, id string) (APIKey, error) {
	var k APIKey
	if strings.ContainsAny(id, ".*> ") || id == "" || len(id) > 64 {
		return APIKey{}, fmt.Errorf("%w: API key %q", ErrNotFound, id)
	}
	if _, err := s.st.get(ctx, "apikey."+id, &k); err != nil {
		return APIKey{}, err
	}
	return k, nil
}

// RevokeKey revokes an API key; byUser, when not empty, must own it.
// Revoking twice is no error.
func (s *Service) RevokeKey(ctx context.Context, id, byUser string) (APIKey, error) {
	if err := s.opened(); err != nil {
		return APIKey{}, err
	}
	k, err := s.key(ctx, id)
	if err != nil {
		return APIKey{}, err
	}
	if byUser != "" && k.UserID != byUser {
		return APIKey{}, fmt.Errorf("%w: API key %q", ErrNotFound, id) // another's key: as if absent
	}
	now := s.now()
	return change(ctx, s.st, "apikey."+id, func(x *APIKey) error {
		if !x.Revoked.IsZero() {
			return errUnchanged
		}
		x.Revoked = now
		return nil
	})
}

// VerifyRequest checks a signed request: the key's signature over msg, its
// expiry and revocation, the client address against its allow-list, and
// that its user is enabled. Every failure is Unauthenticated.
func (s *Service) VerifyRequest(ctx context.Context, keyID string, msg []byte, sig, clientIP string) (APIKey, User, error) {
	if err := s.opened(); err != nil {
		return APIKey{}, User{}, err
	}
	k, err := s.key(ctx, keyID)
	if errors.Is(err, ErrNotFound) {
		return APIKey{}, User{}, fmt.Errorf("%w: unknown API key", ErrUnauthenticated)
	}
	if err != nil {
		return APIKey{}, User{}, err
	}
	if err := k.Usable(s.now()); err != nil {
		return APIKey{}, User{}, err
	}
	if !k.AllowsIP(clientIP) {
		return APIKey{}, User{}, fmt.Errorf("%w: API key %s may not be used from %s", ErrUnauthenticated, k.ID, clientIP)
	}
	req := signature.Request{KeyID: k.ID, Signature: sig}
	switch k.Kind {
	case KindEd25519:
		err = req.VerifyEd25519(k.PublicKey, msg)
	default:
		var secret []byte
		if secret, err = s.seal.open(purposeAPIKey, k.Sealed); err != nil {
			return APIKey{}, User{}, fmt.Errorf("API key %s: %w", k.ID, err)
		}
		err = req.VerifyHMAC(secret, msg)
	}
	if err != nil {
		return APIKey{}, User{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	u, err := s.user(ctx, k.UserID)
	if err != nil {
		return APIKey{}, User{}, err
	}
	if u.Disabled {
		return APIKey{}, User{}, fmt.Errorf("%w: user disabled", ErrUnauthenticated)
	}
	return k, u, nil
}
