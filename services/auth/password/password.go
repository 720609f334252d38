// Package password hashes and checks passwords with argon2id, the
// parameters kept in the hash (the PHC string format), and holds the
// password policy. It does no I/O.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's costs.
type Params struct {
	// Memory in KiB, Time in passes, Threads in lanes.
	Memory  uint32
	Time    uint32
	Threads uint8
}

// Default are OWASP's argon2id parameters: 19 MiB, 2 passes, 1 lane
// (about 30 ms on one core of a small machine).
func Default() Params { return Params{Memory: 19 * 1024, Time: 2, Threads: 1} }

const (
	saltLen = 16
	keyLen  = 32
)

// ErrMalformedHash is a stored hash Check cannot read.
var ErrMalformedHash = errors.New("malformed password hash")

// Hash returns the PHC string of password under p with a random salt:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>.
func Hash(password string, p Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Limits on the parameters a stored hash may name, so that a corrupt or
// planted hash cannot make Check run for ever or exhaust memory.
const (
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 16
	maxThreads = 16
)

// Check reports whether password matches the PHC string hash, comparing in
// constant time; rehash is true when hash was made with parameters other
// than p (the caller should store Hash(password, p) after a match).
func Check(password, hash string, p Params) (ok, rehash bool, err error) {
	hp, salt, key, err := parse(hash)
	if err != nil {
		return false, false, err
	}
	got := argon2.IDKey([]byte(password), salt, hp.Time, hp.Memory, hp.Threads, uint32(len(key))) //nolint:gosec // len(key) <= 128, checked by parse
	return subtle.ConstantTimeCompare(got, key) == 1, hp != p, nil
}

func parse(hash string) (Params, []byte, []byte, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, ErrMalformedHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return Params{}, nil, nil, fmt.Errorf("%w: version %q", ErrMalformedHash, parts[2])
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		p.Memory < 8 || p.Memory > maxMemory || p.Time < 1 || p.Time > maxTime || p.Threads < 1 || p.Threads > maxThreads {
		return Params{}, nil, nil, fmt.Errorf("%w: parameters %q", ErrMalformedHash, parts[3])
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return Params{}, nil, nil, fmt.Errorf("%w: salt", ErrMalformedHash)
	}
	key, err := enc.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 128 {
		return Params{}, nil, nil, fmt.Errorf("%w: key", ErrMalformedHash)
	}
	return p, salt, key, nil
}

// Policy bounds.
const (
	MinLength = 10  // characters
	MaxLength = 128 // characters: longer inputs cost hashing time for nothing
)

// common are passwords found at the top of every breach list; the policy
// refuses them whatever their length.
var common = map[string]bool{
	"password1234": true, "123456789012": true, "qwertyuiopas": true, "1234567890": true, "passwordpassword": true,
	"iloveyou1234": true, "administrator": true, "letmein12345": true, "qwerty123456": true, "0123456789": true,
	"abcdefghij": true, "1q2w3e4r5t": true, "password123": true, "qwertyuiop": true, "1qaz2wsx3edc": true,
}

// CheckPolicy says why password may not be used by the account with the
// given email, or nil: 10 to 128 characters of valid UTF-8, not one
// repeated character, not a common password, not containing the email's
// name. (No composition rules: length is what counts.)
func CheckPolicy(password, email string) error {
	if !utf8.ValidString(password) {
		return errors.New("must be valid UTF-8")
	}
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinLength:
		return fmt.Errorf("must be at least %d characters", MinLength)
	case n > MaxLength:
		return fmt.Errorf("must be at most %d characters", MaxLength)
	case strings.Count(password, password[:1]) == len(password):
		return errors.New("must not be one character repeated")
	case common[strings.ToLower(password)]:
		return errors.New("is a common password")
	}
	if name, _, _ := strings.Cut(strings.ToLower(email), "@"); len(name) >= 4 && strings.Contains(strings.ToLower(password), name) {
		return errors.New("must not contain your email's name")
	}
	return nil
}
