package auth

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tradex-mesh/tradex/services/auth/token"
)

// keysMaxAge is how long the service signs with the keys it read before
// reading them again (a rotation by another process shows within it).
const keysMaxAge = time.Minute

// purposeSigning binds sealed signing keys to their use.
const purposeSigning = "tradex-auth-signing-key"

// keyring is the signing keys as read at a time.
type keyring struct {
	active token.Key
	set    token.KeySet
	read   time.Time
}

// keys returns the signing keys, reading them again when older than
// keysMaxAge, and creating a first key when there is none.
func (s *Service) keys(ctx context.Context) (*keyring, error) {
	if k := s.ring.Load(); k != nil && s.now().Sub(k.read) < keysMaxAge {
		return k, nil
	}
	k, err := s.loadKeys(ctx)
	if errors.Is(err, errNoActiveKey) {
		if _, err := s.addKey(ctx); err != nil {
			return nil, err
		}
		k, err = s.loadKeys(ctx)
	}
	if err != nil {
		return nil, err
	}
	s.ring.Store(k)
	return k, nil
}

var errNoActiveKey = errors.New("no active signing key")

// loadKeys reads the signing keys: the newest key not retired signs; every
// key retired less than a token's life ago still verifies.
func (s *Service) loadKeys(ctx context.Context) (*keyring, error) {
	recs, err := all[SigningKey](ctx, s.st, "signing.")
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	now := s.now()
	k := &keyring{set: token.KeySet{}, read: now}
	var newest *SigningKey
	for i, r := range recs {
		if !r.Retired.IsZero() && now.Sub(r.Retired) > s.cfg.AccessTTL+s.cfg.Leeway {
			continue
		}
		k.set[r.ID] = ed25519.PublicKey(r.Public)
		if r.Retired.IsZero() && (newest == nil || r.Created.After(newest.Created)) {
			newest = &recs[i]
		}
	}
	if newest == nil {
		return nil, errNoActiveKey
	}
	priv, err := s.seal.open(purposeSigning, newest.Sealed)
	if err != nil || len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("signing key %s: %w", newest.ID, errUnseal)
	}
	k.active = token.Key{ID: newest.ID, Private: ed25519.PrivateKey(priv)}
	return k, nil
}

// addKey stores a new signing key, which becomes the active one.
func (s *Service) addKey(ctx context.Context) (SigningKey, error) {
	k, err := token.NewKey()
	if err != nil {
		return SigningKey{}, err
	}
	sealed, err := s.seal.seal(purposeSigning, k.Private)
	if err != nil {
		return SigningKey{}, err
	}
	rec := SigningKey{ID: k.ID, Sealed: sealed, Public: k.Public(), Created: s.now()}
	if err := s.st.create(ctx, "signing."+k.ID, rec); err != nil {
		return SigningKey{}, fmt.Errorf("store signing key: %w", err)
	}
	return rec, nil
}

// RotateKey adds a signing key and retires the others: tokens are signed
// with the new key at once (in this process; in others within a minute),
// and the retired keys stay in the JWKS until the tokens they signed have
// expired, then are deleted. It returns the new key's id.
func (s *Service) RotateKey(ctx context.Context) (string, error) {
	if err := s.opened(); err != nil {
		return "", err
	}
	fresh, err := s.addKey(ctx)
	if err != nil {
		return "", err
	}
	recs, err := all[SigningKey](ctx, s.st, "signing.")
	if err != nil {
		return "", fmt.Errorf("read signing keys: %w", err)
	}
	now := s.now()
	slices.SortFunc(recs, func(a, b SigningKey) int { return cmp.Compare(a.Created.UnixNano(), b.Created.UnixNano()) })
	for _, r := range recs {
		key := "signing." + r.ID
		switch {
		case r.ID == fresh.ID:
		case r.Retired.IsZero():
			if _, err := change(ctx, s.st, key, func(k *SigningKey) error { k.Retired = now; return nil }); err != nil {
				return "", fmt.Errorf("retire signing key %s: %w", r.ID, err)
			}
		case now.Sub(r.Retired) > s.cfg.AccessTTL+s.cfg.Leeway:
			if err := s.st.b.Delete(ctx, key, 0); err != nil {
				return "", fmt.Errorf("delete signing key %s: %w", r.ID, err)
			}
		}
	}
	s.ring.Store(nil)
	return fresh.ID, nil
}

// JWKS is the public signing keys as a JSON Web Key Set.
func (s *Service) JWKS(ctx context.Context) ([]byte, error) {
	if err := s.opened(); err != nil {
		return nil, err
	}
	k, err := s.keys(ctx)
	if err != nil {
		return nil, err
	}
	return k.set.JWKS()
}
