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
	err = createDurably(path, []byte(hex.EncodeToString(key)+"\n"))
	if errors.Is(err, fs.ErrExist) { // another process created it meanwhile: theirs counts
		return readKey(flag, path, false)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: write %s: %w", flag, path, err)
	}
	return key, nil
}

// createDurably creates path (0600, its folder 0750) holding data, only if
// it does not exist (fs.ErrExist otherwise), and makes it durable before
// returning: written to a temporary file, fsynced, linked into place, the
// folder fsynced. A key that data was already encrypted with must not be
// lost to a power failure.
func createDurably(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*") // 0600
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return err // fs.ErrExist when it is there
	}
	d, err := os.Open(dir) //nolint:gosec // the folder of the operator's own file
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
