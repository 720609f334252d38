package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
)

// dirHolds reports whether a file under dir contains s.
func dirHolds(t *testing.T, dir, s string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return err
		}
		b, err := os.ReadFile(path) //nolint:gosec // the test's own data
		found = err == nil && bytes.Contains(b, []byte(s))
		return err
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return found
}

// A store encrypted by serve --nats-encrypt holds no account's data in
// plaintext, needs its key to start again, and keeps every balance.
func TestServeEncryptedStore(t *testing.T) {
	t.Parallel()
	const account = "acct-encrypted-7f3a9c"
	cfg := testServeConfig(t)
	cfg.NATSEncrypt = true
	ep, stop := startServe(t, cfg)
	wallet := func(ep endpoints) walletv1connect.WalletServiceClient {
		return walletv1connect.NewWalletServiceClient(internalClient(), "http://"+ep.GRPC)
	}
	if _, err := wallet(ep).Deposit(t.Context(), &walletv1.DepositRequest{TransferId: "t-enc", AccountId: account, Asset: "USDT", Amount: "42"}); err != nil {
		t.Fatalf("Deposit: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	keyFile := filepath.Join(cfg.DataDir, natsStoreKeyFile)
	info, err := os.Stat(keyFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file %s: %v, %v; want it created 0600", keyFile, info, err)
	}
	if dirHolds(t, filepath.Join(cfg.DataDir, "nats"), account) {
		t.Errorf("the store holds account %s in plaintext", account)
	}

	plain := cfg
	plain.NATSEncrypt = false
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	err = serve(ctx, slog.New(slog.DiscardHandler), plain, func(endpoints) {
		t.Error("serve started on an encrypted store without its key")
		cancel()
	})
	if err == nil || !strings.Contains(err.Error(), "--nats-encrypt") {
		t.Fatalf("serve without the key = %v, want an error naming --nats-encrypt", err)
	}

	ep, _ = startServe(t, cfg)
	bal, err := wallet(ep).GetBalance(t.Context(), &walletv1.GetBalanceRequest{AccountId: account, Asset: "USDT"})
	if err != nil || bal.GetBalance().GetAvailable() != "42.00000000" {
		t.Fatalf("balance after a restart with the key: %v, %v; want 42", bal, err)
	}
}

func TestStoreKeyFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := serveConfig{DataDir: dir, NATSEncrypt: true, NATSCipher: "chacha"}
	first, err := storeEncryption(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := storeEncryption(cfg)
	if err != nil || again.Key != first.Key || len(first.Key) != 64 {
		t.Fatalf("second read: %v, %v; want the created 64-digit key again", again, err)
	}
	// A given key file must exist: a typo must not start a new store key.
	cfg.NATSStoreKey = filepath.Join(dir, "missing")
	if _, err := storeEncryption(cfg); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "--nats-store-key") {
		t.Errorf("missing key file: %v, want not-exist naming --nats-store-key", err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("not hex"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.NATSStoreKey = ""
	cfg.NATSStoreOldKey = bad
	if _, err := storeEncryption(cfg); err == nil || !strings.Contains(err.Error(), "--nats-store-old-key") {
		t.Errorf("bad old key: %v, want an error naming --nats-store-old-key", err)
	}
	if enc, err := storeEncryption(serveConfig{NATSCipher: "aes"}); enc != nil || err != nil {
		t.Errorf("off: %v, %v; want nil, nil", enc, err)
	}
}
