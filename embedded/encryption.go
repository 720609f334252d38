package embedded

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// MinStoreKeyLen is the shortest [Encryption.Key] accepted: 32 characters,
// such as 64 hex digits of a random 256-bit key.
const MinStoreKeyLen = 32

// Cipher is the authenticated cipher a store is encrypted with.
type Cipher int

const (
	// CipherAES is AES-256-GCM (the default; fast where the CPU has AES
	// instructions).
	CipherAES Cipher = iota
	// CipherChaCha is ChaCha20-Poly1305 (fast without AES instructions).
	CipherChaCha
)

// String returns "aes" or "chacha".
func (c Cipher) String() string {
	switch c {
	case CipherAES:
		return "aes"
	case CipherChaCha:
		return "chacha"
	default:
		return fmt.Sprintf("Cipher(%d)", int(c))
	}
}

// ParseCipher reads "aes" or "chacha".
func ParseCipher(s string) (Cipher, error) {
	switch s {
	case "aes":
		return CipherAES, nil
	case "chacha":
		return CipherChaCha, nil
	default:
		return 0, fmt.Errorf("cipher %q is neither aes nor chacha", s)
	}
}

// Encryption encrypts a node's JetStream store at rest: every stream's
// messages, indexes and configuration and every consumer's state are
// written encrypted (nats-server's store encryption, its `jetstream { key,
// cipher }` configuration), each stream with keys derived from Key. A store
// written without encryption is encrypted when first started with it; one
// written with another key or cipher is converted when that key is given
// as OldKey.
type Encryption struct {
	// Key is the secret, at least [MinStoreKeyLen] characters. Losing it
	// loses the store: nothing in it can be read without it.
	Key string
	// OldKey, when set, is the key the store may still be encrypted with
	// (key rotation): streams written with it are read and re-encrypted
	// with Key.
	OldKey string
	// Cipher is the cipher new and converted data is written with.
	Cipher Cipher
}

func (e *Encryption) check() error {
	if len(e.Key) < MinStoreKeyLen {
		return fmt.Errorf("%w: the key has %d characters, want at least %d", ErrStoreKey, len(e.Key), MinStoreKeyLen)
	}
	if e.OldKey != "" && len(e.OldKey) < MinStoreKeyLen {
		return fmt.Errorf("%w: the old key has %d characters, want at least %d", ErrStoreKey, len(e.OldKey), MinStoreKeyLen)
	}
	if e.OldKey == e.Key {
		return fmt.Errorf("%w: the old key is the key", ErrStoreKey)
	}
	if e.Cipher != CipherAES && e.Cipher != CipherChaCha {
		return fmt.Errorf("%w: unknown %s", ErrStoreKey, e.Cipher)
	}
	return nil
}

// apply sets nats-server's store encryption options.
func (e *Encryption) apply(so *server.Options) {
	so.JetStreamKey, so.JetStreamOldKey = e.Key, e.OldKey
	so.JetStreamCipher = server.AES
	if e.Cipher == CipherChaCha {
		so.JetStreamCipher = server.ChaCha
	}
}

// encryptedStreams lists the streams of a JetStream store that are
// encrypted on disk (they have a key file).
func encryptedStreams(storeDir string) ([]string, error) {
	keys, err := filepath.Glob(filepath.Join(storeDir, server.JetStreamStoreDir, "*", "streams", "*", server.JetStreamMetaFileKey))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrStoreDir, storeDir, err)
	}
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		names = append(names, filepath.Base(filepath.Dir(k)))
	}
	return names, nil
}

// checkStoreKey refuses to start a node without a key on a store holding
// encrypted streams: nats-server would not load them.
func checkStoreKey(o Options) error {
	if o.Encryption != nil {
		return nil
	}
	encrypted, err := encryptedStreams(o.StoreDir)
	if err != nil {
		return err
	}
	if len(encrypted) > 0 {
		return fmt.Errorf("%w: %s holds encrypted streams (%s) and no key was given", ErrStoreEncrypted, o.StoreDir, listNames(encrypted))
	}
	return nil
}

// unrecovered tells a stored stream nats-server could not load from the
// health of a single node: it recovers every stream before JetStream is
// up, so one not loaded then never will be. Typically a wrong key; the
// server's warnings say why.
func (s *Server) unrecovered() error {
	if s.opts.Cluster != nil {
		return nil // a cluster node's streams follow the meta group
	}
	var names []string
	for _, e := range s.srv.Healthz(&server.HealthzOptions{Details: true}).Errors {
		if e.Type == server.HealthzErrorStream && e.Stream != "" && strings.Contains(e.Error, "could not be recovered") {
			names = append(names, e.Stream)
		}
	}
	switch {
	case len(names) == 0:
		return nil
	case s.opts.Encryption != nil:
		return fmt.Errorf("%w: streams %s in %s could not be read (a wrong key, or a key rotated without giving the old one: see the server's warnings)",
			ErrStoreEncrypted, listNames(names), s.opts.StoreDir)
	default:
		return fmt.Errorf("%w: streams %s in %s (see the server's warnings)", ErrStreamUnreadable, listNames(names), s.opts.StoreDir)
	}
}

// listNames joins up to five sorted names, counting the rest.
func listNames(names []string) string {
	slices.Sort(names)
	const shown = 5
	if len(names) <= shown {
		return fmt.Sprint(names)
	}
	return fmt.Sprintf("%v and %d more", names[:shown], len(names)-shown)
}
