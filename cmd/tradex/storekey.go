package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/tradex-mesh/tradex/embedded"
)

// natsStoreKeyFile holds the embedded server's store key in the data
// folder when --nats-encrypt is on and --nats-store-key is not given.
const natsStoreKeyFile = "nats-store-key"

// encryptsStore says whether the embedded server's store is encrypted:
// --nats-encrypt, or a key file given.
func (c serveConfig) encryptsStore() bool { return c.NATSEncrypt || c.NATSStoreKey != "" }

// validateStoreEncryption checks the store encryption flags.
func (c serveConfig) validateStoreEncryption() error {
	if _, err := embedded.ParseCipher(c.NATSCipher); err != nil {
		return fmt.Errorf("--nats-cipher: %w", err)
	}
	if c.encryptsStore() && c.NATSURL != "" {
		return errors.New("--nats-encrypt: encrypts the embedded server's store, which does not run with --nats (set jetstream { key, cipher } in the cluster's configuration)")
	}
	if c.NATSStoreOldKey != "" && !c.encryptsStore() {
		return errors.New("--nats-store-old-key: rotates the store key: needs --nats-encrypt (or --nats-store-key)")
	}
	return nil
}

// storeEncryption is the embedded server's store encryption of cfg, nil
// when off. The key file is --nats-store-key (it must exist), else
// <data-dir>/nats-store-key, created on first start (0600).
func storeEncryption(cfg serveConfig) (*embedded.Encryption, error) {
	if !cfg.encryptsStore() {
		return nil, nil //nolint:nilnil // off is not an error
	}
	var key []byte
	var err error
	if cfg.NATSStoreKey != "" {
		key, err = readKey("--nats-store-key", cfg.NATSStoreKey, false)
	} else {
		key, err = readKey("--nats-store-key", filepath.Join(cfg.DataDir, natsStoreKeyFile), true)
	}
	if err != nil {
		return nil, err
	}
	enc := &embedded.Encryption{Key: hex.EncodeToString(key)}
	if cfg.NATSStoreOldKey != "" {
		old, err := readKey("--nats-store-old-key", cfg.NATSStoreOldKey, false)
		if err != nil {
			return nil, err
		}
		enc.OldKey = hex.EncodeToString(old)
	}
	if enc.Cipher, err = embedded.ParseCipher(cfg.NATSCipher); err != nil {
		return nil, fmt.Errorf("--nats-cipher: %w", err)
	}
	return enc, nil
}
