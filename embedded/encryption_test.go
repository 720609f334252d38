package embedded

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Keys of the encryption tests: long enough, and different.
const (
	testKey      = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testOtherKey = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

// storeHolds reports whether any file under dir contains b.
func storeHolds(t *testing.T, dir string, b []byte) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return err
		}
		data, err := os.ReadFile(path) //nolint:gosec // the test's own store
		if err != nil {
			return err
		}
		found = bytes.Contains(data, b)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return found
}

// writeStore starts a server on dir with enc, stores messages 1..n in the
// stream ORDERS (and a durable consumer's state), and stops it.
func writeStore(t *testing.T, dir string, enc *Encryption, n uint64) {
	t.Helper()
	s := startServer(t, Options{StoreDir: dir, Encryption: enc})
	js := connectJS(t, s)
	createStream(t, js, "ORDERS", 1)
	publishN(t, js, "orders.BTCUSDT", 1, n)
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// readStore starts a server on dir with enc and checks ORDERS holds
// messages 1..n, then stops it.
func readStore(t *testing.T, dir string, enc *Encryption, n uint64) {
	t.Helper()
	s := startServer(t, Options{StoreDir: dir, Encryption: enc})
	consumeAll(t, connectJS(t, s), "ORDERS", n)
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestEncryptedStoreHoldsNoPlaintext(t *testing.T) {
	t.Parallel()
	const n = 50
	// The messages' text and the stream's subject must both be on disk
	// in a plain store (else the check below proves nothing) and in no
	// file of an encrypted one.
	secrets := [][]byte{payload(n), []byte("orders.BTCUSDT")}
	plain := t.TempDir()
	writeStore(t, plain, nil, n)
	for _, b := range secrets {
		if !storeHolds(t, plain, b) {
			t.Fatalf("a plain store holds no %q: the check cannot tell", b)
		}
	}
	for _, cipher := range []Cipher{CipherAES, CipherChaCha} {
		t.Run(cipher.String(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			enc := &Encryption{Key: testKey, Cipher: cipher}
			writeStore(t, dir, enc, n)
			for _, b := range secrets {
				if storeHolds(t, dir, b) {
					t.Errorf("the encrypted store holds %q in plaintext", b)
				}
			}
			readStore(t, dir, enc, n)
		})
	}
}

func TestEncryptedStoreNeedsItsKey(t *testing.T) {
	t.Parallel()
	const n = 20
	dir := t.TempDir()
	writeStore(t, dir, &Encryption{Key: testKey}, n)

	for name, enc := range map[string]*Encryption{
		"no key":    nil,
		"wrong key": {Key: testOtherKey},
	} {
		_, err := Start(t.Context(), Options{StoreDir: dir, Encryption: enc})
		if !errors.Is(err, ErrStoreEncrypted) || !strings.Contains(err.Error(), "ORDERS") {
			t.Fatalf("%s: Start = %v, want ErrStoreEncrypted naming ORDERS", name, err)
		}
	}
	// Refusing changed nothing: the right key still reads every message.
	readStore(t, dir, &Encryption{Key: testKey}, n)
}

func TestStoreKeyRotation(t *testing.T) {
	t.Parallel()
	const n = 20
	dir := t.TempDir()
	writeStore(t, dir, &Encryption{Key: testKey}, n)
	// The new key with the old one, and another cipher: the store is
	// re-encrypted ...
	readStore(t, dir, &Encryption{Key: testOtherKey, OldKey: testKey, Cipher: CipherChaCha}, n)
	// ... so the new key alone reads it, and the old one no longer does.
	readStore(t, dir, &Encryption{Key: testOtherKey, Cipher: CipherChaCha}, n)
	if _, err := Start(t.Context(), Options{StoreDir: dir, Encryption: &Encryption{Key: testKey}}); !errors.Is(err, ErrStoreEncrypted) {
		t.Fatalf("old key after rotation: Start = %v, want ErrStoreEncrypted", err)
	}
}

func TestPlainStoreIsEncryptedOnStart(t *testing.T) {
	t.Parallel()
	const n = 20
	dir := t.TempDir()
	writeStore(t, dir, nil, n)
	enc := &Encryption{Key: testKey}
	readStore(t, dir, enc, n)
	if storeHolds(t, dir, payload(n)) {
		t.Error("the store still holds a message in plaintext after a start with a key")
	}
	if _, err := Start(t.Context(), Options{StoreDir: dir}); !errors.Is(err, ErrStoreEncrypted) {
		t.Fatalf("no key after encrypting: Start = %v, want ErrStoreEncrypted", err)
	}
}

func TestEncryptionOptionsAreChecked(t *testing.T) {
	t.Parallel()
	for name, enc := range map[string]*Encryption{
		"short key":     {Key: "too short"},
		"short old key": {Key: testKey, OldKey: "too short"},
		"same old key":  {Key: testKey, OldKey: testKey},
		"cipher":        {Key: testKey, Cipher: Cipher(7)},
	} {
		if _, err := Start(t.Context(), Options{StoreDir: t.TempDir(), Encryption: enc}); !errors.Is(err, ErrStoreKey) {
			t.Errorf("%s: Start = %v, want ErrStoreKey", name, err)
		}
	}
}

func TestDamagedStreamFailsTheStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeStore(t, dir, nil, 5)
	sums, err := filepath.Glob(filepath.Join(dir, "jetstream", "*", "streams", "ORDERS", "meta.sum"))
	if err != nil || len(sums) != 1 {
		t.Fatalf("the stream's checksum file: %v, %v", sums, err)
	}
	if err := os.WriteFile(sums[0], []byte("0000"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Not loaded, the stream keeps the node from becoming ready: the start
	// fails naming it rather than waiting out the ready timeout (the
	// context ends first).
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = Start(ctx, Options{StoreDir: dir, ReadyTimeout: time.Hour})
	if !errors.Is(err, ErrStreamUnreadable) || !strings.Contains(err.Error(), "ORDERS") {
		t.Fatalf("Start = %v, want ErrStreamUnreadable naming ORDERS", err)
	}
}
