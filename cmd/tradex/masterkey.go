package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// authMasterKeyFile holds the auth service's master key in the data folder.
const authMasterKeyFile = "auth-master-key"

// masterKey reads the auth service's master key from file (--auth-master-key),
// else from <dataDir>/auth-master-key, creating that (0600) on first start.
// Losing it invalidates every HMAC API key and token signing key.
func masterKey(file, dataDir string) ([]byte, error) {
	if file != "" {
		return readKey("--auth-master-key", file, false)
	}
	return readKey("--auth-master-key", filepath.Join(dataDir, authMasterKeyFile), true)
}

// readKey reads a 256-bit key, 64 hex digits, from path for flag; when
// create is set, a missing file is created (0600, its folder 0750) with a
// random key.
func readKey(flag, path string, create bool) ([]byte, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the operator's own file
	switch {
	case err == nil:
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("%s: %s must hold 64 hex digits", flag, path)
		}
		return key, nil
	case !errors.Is(err, fs.ErrNotExist) || !create:
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("%s: write %s: %w", flag, path, err)
	}
	return key, nil
}
