package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// sealer encrypts secrets at rest with the master key (AES-256-GCM, a
// random nonce in front of each ciphertext). The purpose is bound in as
// additional data, so a sealed API-key secret cannot be passed off as a
// signing key.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return sealer{}, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealer{}, fmt.Errorf("master key: %w", err)
	}
	return sealer{aead: aead}, nil
}

func (s sealer) seal(purpose string, plain []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plain, []byte(purpose)), nil
}

// errUnseal is a sealed value the master key does not open (another key,
// tampering).
var errUnseal = errors.New("cannot decrypt with the master key")

func (s sealer) open(purpose string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errUnseal
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(purpose))
	if err != nil {
		return nil, errUnseal
	}
	return plain, nil
}
