package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	authv1 "github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1"
	"github.com/tradex-mesh/tradex/services/auth/token"
)

// keyService serves a signing key set that the test replaces (what the
// auth service's GetSigningKeys does after a key is retired).
type keyService struct {
	mu   sync.Mutex
	jwks []byte
}

func (s *keyService) set(t *testing.T, keys token.KeySet) {
	t.Helper()
	b, err := keys.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.jwks = b
	s.mu.Unlock()
}

func (s *keyService) GetSigningKeys(context.Context, *authv1.GetSigningKeysRequest) (*authv1.GetSigningKeysResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &authv1.GetSigningKeysResponse{Jwks: s.jwks}, nil
}

//nolint:revive // the generated interface names it so
func (s *keyService) VerifyApiKey(context.Context, *authv1.VerifyApiKeyRequest) (*authv1.VerifyApiKeyResponse, error) {
	return nil, errors.New("no API keys here")
}

// TestVerifiedTokensStillExpireAndFollowTheKeys: a token verified once is
// taken again without its signature being checked, but only while it is
// within its life and its key is still served: past its expiry, or once
// its key is gone from the signing keys, it is refused as before; and a
// user disabled meanwhile is refused at once.
func TestVerifiedTokensStillExpireAndFollowTheKeys(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	key, err := token.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	svc := &keyService{}
	svc.set(t, token.KeySet{key.ID: key.Public()})
	cfg := DefaultIssued()
	cfg.Now = clock
	v := NewIssued(cfg, svc)
	sign := func(sub string) string {
		t.Helper()
		tok, err := token.Sign(token.Config{Issuer: cfg.Issuer, Audience: cfg.Audience}, key,
			token.Claims{Subject: sub, Roles: []string{RoleTrader}, IssuedAt: clock(), Expiry: clock().Add(15 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	ok := func(what, tok string) {
		t.Helper()
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	refused := func(what, tok string) {
		t.Helper()
		if _, err := v.Verify(t.Context(), tok); !errors.Is(err, ErrInvalidCredential) {
			t.Errorf("%s: err = %v, want ErrInvalidCredential", what, err)
		}
	}

	ann := sign("ann")
	ok("first use", ann)
	ok("again, remembered", ann)
	advance(15*time.Minute + cfg.Leeway + time.Second)
	refused("past its expiry", ann)

	bob := sign("bob")
	ok("bob", bob)
	v.UserChanged("bob", true)
	refused("bob disabled", bob)
	v.UserChanged("bob", false)
	ok("bob enabled again", bob)

	other, err := token.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	svc.set(t, token.KeySet{other.ID: other.Public()}) // bob's key retired
	advance(cfg.KeysMaxAge + time.Second)              // the keys are fetched again
	refused("its key retired", bob)
}
