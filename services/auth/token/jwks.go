package token

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

// MaxJWKSLen bounds a JWKS document read by ParseJWKS.
const MaxJWKSLen = 64 << 10

// JWKS encodes the set as a JSON Web Key Set, keys sorted by id.
func (ks KeySet) JWKS() ([]byte, error) {
	ids := make([]string, 0, len(ks))
	for id := range ks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(ids))}
	for _, id := range ids {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: ks[id], KeyID: id, Algorithm: string(jose.EdDSA), Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encode jwks: %w", err)
	}
	return b, nil
}

// ParseJWKS reads a JSON Web Key Set, keeping its Ed25519 signing keys.
func ParseJWKS(data []byte) (KeySet, error) {
	if len(data) > MaxJWKSLen {
		return nil, fmt.Errorf("jwks: longer than %d bytes", MaxJWKSLen)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	ks := KeySet{}
	for _, k := range set.Keys {
		pub, ok := k.Key.(ed25519.PublicKey)
		if !ok || k.KeyID == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		ks[k.KeyID] = pub
	}
	return ks, nil
}
