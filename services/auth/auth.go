package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/mail"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Roles.
const (
	RoleTrader  = "trader"
	RoleAdmin   = "admin"
	RoleService = "service"
)

// Scopes of API keys.
const (
	ScopeRead     = "read"
	ScopeTrade    = "trade"
	ScopeTransfer = "transfer"
)

// User is an account as the service keeps it.
type User struct {
	ID             string    `json:"id"`
	Email          string    `json:"email"`
	DisplayName    string    `json:"display_name,omitempty"`
	PasswordHash   string    `json:"password_hash,omitempty"`
	Roles          []string  `json:"roles"`
	Disabled       bool      `json:"disabled,omitempty"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	Created        time.Time `json:"created"`
	Updated        time.Time `json:"updated"`
	// Revision counts the user's changes; each has one event, whose id is
	// EventID(ID, Revision): Event says which, Changed its fields (for an
	// update). Published is the last revision whose event was published.
	Revision  uint64   `json:"revision"`
	Event     string   `json:"event"`
	Changed   []string `json:"changed,omitempty"`
	Published uint64   `json:"published"`
}

// HasRole reports whether u has role.
func (u User) HasRole(role string) bool { return slices.Contains(u.Roles, role) }

// Session is one login: the family of its refresh tokens, of which only the
// latest works.
type Session struct {
	ID         string    `json:"id"`
	UserID     string    `json:"user_id"`
	SecretHash string    `json:"secret_hash"` // hex SHA-256 of the current refresh secret
	Created    time.Time `json:"created"`
	Rotated    time.Time `json:"rotated"`
	Expires    time.Time `json:"expires"`
	Revoked    bool      `json:"revoked,omitempty"`
	// Reused is set when a rotated token was presented: the family was
	// revoked for it.
	Reused bool `json:"reused,omitempty"`
}

// Key kinds.
const (
	KindHMAC    = "hmac"
	KindEd25519 = "ed25519"
)

// APIKey is an API key as the service keeps it.
type APIKey struct {
	ID         string    `json:"id"`
	UserID     string    `json:"user_id"`
	Name       string    `json:"name,omitempty"`
	Scopes     []string  `json:"scopes"`
	AllowedIPs []string  `json:"allowed_ips,omitempty"`
	Kind       string    `json:"kind"`
	Sealed     []byte    `json:"sealed,omitempty"`     // HMAC: the secret, encrypted with the master key
	PublicKey  []byte    `json:"public_key,omitempty"` // Ed25519
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires,omitzero"`
	Revoked    time.Time `json:"revoked,omitzero"`
}

// HasScope reports whether k has scope.
func (k APIKey) HasScope(scope string) bool { return slices.Contains(k.Scopes, scope) }

// Usable says why k cannot be used at now, or nil.
func (k APIKey) Usable(now time.Time) error {
	switch {
	case !k.Revoked.IsZero():
		return fmt.Errorf("%w: API key %s was revoked", ErrUnauthenticated, k.ID)
	case !k.Expires.IsZero() && !now.Before(k.Expires):
		return fmt.Errorf("%w: API key %s expired", ErrUnauthenticated, k.ID)
	}
	return nil
}

// AllowsIP reports whether k may be used from ip.
func (k APIKey) AllowsIP(ip string) bool {
	if len(k.AllowedIPs) == 0 {
		return true
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, s := range k.AllowedIPs {
		if p, err := netip.ParsePrefix(s); err == nil && p.Contains(a) {
			return true
		}
	}
	return false
}

// SigningKey is a key access tokens are signed with.
type SigningKey struct {
	ID      string    `json:"id"`
	Sealed  []byte    `json:"sealed"` // the Ed25519 private key, encrypted with the master key
	Public  []byte    `json:"public"`
	Created time.Time `json:"created"`
	// Retired is when a newer key replaced it; it stays published until
	// the tokens it signed have expired.
	Retired time.Time `json:"retired,omitzero"`
}

// normalizeEmail checks an email address and returns the form accounts are
// keyed by (trimmed, lower case).
func normalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if e == "" || len(e) > 254 {
		return "", invalid("email", "must be 1 to 254 characters")
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" || !strings.Contains(e[strings.LastIndexByte(e, '@')+1:], ".") {
		return "", invalid("email", "is not an email address")
	}
	return e, nil
}

// emailKey is the index key of a normalized email (emails are not valid KV
// keys, and the index should not spell them out).
func emailKey(email string) string {
	sum := sha256.Sum256([]byte(email))
	return "email." + hex.EncodeToString(sum[:])
}

// newID returns prefix followed by n random bytes in hex.
func newID(prefix string, n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return prefix + hex.EncodeToString(b), nil
}

// hashSecret is the hex SHA-256 of a high-entropy secret (refresh tokens
// are random, so no slow hash is needed).
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// parseAllowedIPs checks an allow-list of IPs and CIDRs and returns it as
// prefixes.
func parseAllowedIPs(list []string) ([]string, error) {
	if len(list) > 32 {
		return nil, invalid("allowed_ips", "at most 32 entries")
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked().String())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, invalid("allowed_ips", fmt.Sprintf("%q is neither an IP address nor a CIDR", s))
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()).String())
	}
	return out, nil
}
