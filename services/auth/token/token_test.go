package token_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tradex-mesh/tradex/services/auth/token"
)

var (
	cfg = token.Config{Issuer: "tradex", Audience: "tradex-api", Leeway: 30 * time.Second}
	now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
)

func newKey(t testing.TB) token.Key {
	t.Helper()
	k, err := token.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t testing.TB, k token.Key, c token.Claims) string {
	t.Helper()
	s, err := token.Sign(cfg, k, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func alice() token.Claims {
	return token.Claims{Subject: "alice", Roles: []string{"trader"}, Session: "s1", ID: "j1", IssuedAt: now, Expiry: now.Add(15 * time.Minute)}
}

func TestSignAndVerify(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	raw := sign(t, k, alice())
	got, err := token.Verify(cfg, token.KeySet{k.ID: k.Public()}, raw, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := alice()
	if got.Subject != want.Subject || got.Session != want.Session || got.ID != want.ID || len(got.Roles) != 1 || got.Roles[0] != "trader" ||
		!got.IssuedAt.Equal(want.IssuedAt) || !got.Expiry.Equal(want.Expiry) {
		t.Errorf("claims %+v; want %+v", got, want)
	}
	// Within the leeway after expiry it still holds.
	if _, err := token.Verify(cfg, token.KeySet{k.ID: k.Public()}, raw, want.Expiry.Add(20*time.Second)); err != nil {
		t.Errorf("20 s after expiry (leeway 30 s): %v", err)
	}
}

// b64 is the JWT encoding of a JSON value.
func b64(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	k, other := newKey(t), newKey(t)
	keys := token.KeySet{k.ID: k.Public()}
	good := sign(t, k, alice())
	parts := strings.Split(good, ".")
	claims := map[string]any{"iss": "tradex", "aud": []string{"tradex-api"}, "sub": "alice", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	hs256 := func() string { // HMAC keyed with the public key: the classic confusion
		signing := b64(t, map[string]string{"alg": "HS256", "typ": "JWT", "kid": k.ID}) + "." + b64(t, claims)
		mac := hmac.New(sha256.New, k.Public())
		mac.Write([]byte(signing))
		return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	withClaims := func(c map[string]any) string { // a valid signature over other claims
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: k.Private}, (&jose.SignerOptions{}).WithHeader("kid", k.ID))
		if err != nil {
			t.Fatal(err)
		}
		s, err := jwt.Signed(signer).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	without := func(name string) map[string]any {
		c := map[string]any{}
		for k, v := range claims {
			if k != name {
				c[k] = v
			}
		}
		return c
	}
	expired := alice()
	expired.Expiry = now.Add(-time.Minute)
	wrongAudience := cfg
	wrongAudience.Audience = "elsewhere"
	tests := []struct {
		name string
		raw  string
		cfg  token.Config
		want error
	}{
		{"expired past the leeway", sign(t, k, expired), cfg, token.ErrInvalid},
		{"tampered payload", parts[0] + "." + b64(t, map[string]any{"iss": "tradex", "aud": "tradex-api", "sub": "bob", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}) + "." + parts[2], cfg, token.ErrInvalid},
		{"tampered signature", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])), cfg, token.ErrInvalid},
		{"alg none", b64(t, map[string]string{"alg": "none", "typ": "JWT", "kid": k.ID}) + "." + b64(t, claims) + ".", cfg, token.ErrInvalid},
		{"HS256 with the public key", hs256(), cfg, token.ErrInvalid},
		{"unknown key id", sign(t, other, alice()), cfg, token.ErrUnknownKey},
		{"another audience", good, wrongAudience, token.ErrInvalid},
		{"no expiry", withClaims(without("exp")), cfg, token.ErrInvalid},
		{"no issue time", withClaims(without("iat")), cfg, token.ErrInvalid},
		{"no subject", withClaims(without("sub")), cfg, token.ErrInvalid},
		{"another issuer", withClaims(map[string]any{"iss": "evil", "aud": "tradex-api", "sub": "alice", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}), cfg, token.ErrInvalid},
		{"not yet valid", withClaims(map[string]any{"iss": "tradex", "aud": "tradex-api", "sub": "alice", "iat": now.Unix(), "nbf": now.Add(time.Hour).Unix(), "exp": now.Add(2 * time.Hour).Unix()}), cfg, token.ErrInvalid},
		{"too long", good + strings.Repeat("A", token.MaxLen), cfg, token.ErrInvalid},
		{"garbage", "not a token", cfg, token.ErrInvalid},
		{"empty", "", cfg, token.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := token.Verify(tt.cfg, keys, tt.raw, now); !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v; want %v", err, tt.want)
			}
		})
	}
	// The same claims, correctly signed, pass: the refusals are not the helpers'.
	if _, err := token.Verify(cfg, keys, withClaims(claims), now); err != nil {
		t.Errorf("a good token from the test's own signer: %v", err)
	}
}

func TestJWKSRoundTrip(t *testing.T) {
	t.Parallel()
	k1, k2 := newKey(t), newKey(t)
	set := token.KeySet{k1.ID: k1.Public(), k2.ID: k2.Public()}
	doc, err := set.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil || len(raw.Keys) != 2 || raw.Keys[0]["kty"] != "OKP" || raw.Keys[0]["crv"] != "Ed25519" ||
		raw.Keys[0]["alg"] != "EdDSA" || raw.Keys[0]["d"] != nil {
		t.Fatalf("jwks %s (%v)", doc, err)
	}
	back, err := token.ParseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || !back[k1.ID].Equal(k1.Public()) || !back[k2.ID].Equal(k2.Public()) {
		t.Errorf("parsed %v", back)
	}
	raw2 := sign(t, k2, alice())
	if _, err := token.Verify(cfg, back, raw2, now); err != nil {
		t.Errorf("a token against the parsed set: %v", err)
	}
}

// FuzzVerify: no input panics or passes without a signature by the key.
func FuzzVerify(f *testing.F) {
	k, err := token.NewKey()
	if err != nil {
		f.Fatal(err)
	}
	good, err := token.Sign(cfg, k, alice())
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{good, "", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", good[:len(good)-2], strings.Replace(good, ".", "..", 1)} {
		f.Add(seed)
	}
	keys := token.KeySet{k.ID: k.Public()}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := token.Verify(cfg, keys, raw, now)
		if err == nil && raw != good && c.Subject != "alice" {
			t.Fatalf("Verify(%q) accepted %+v", raw, c)
		}
	})
}
