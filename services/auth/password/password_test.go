package password_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tradex-mesh/tradex/services/auth/password"
)

// cheap keeps the tests fast; Default is checked once.
var cheap = password.Params{Memory: 64, Time: 1, Threads: 1}

func TestHashAndCheck(t *testing.T) {
	t.Parallel()
	h, err := password.Hash("correct horse battery", password.Default())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %s", h)
	}
	if ok, rehash, err := password.Check("correct horse battery", h, password.Default()); !ok || rehash || err != nil {
		t.Errorf("Check(right) = %v, %v, %v", ok, rehash, err)
	}
	if ok, _, err := password.Check("correct horse batterY", h, password.Default()); ok || err != nil {
		t.Errorf("Check(wrong) = %v, %v", ok, err)
	}
	// A hash made with other parameters still checks, and asks to be redone.
	old, err := password.Hash("correct horse battery", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if ok, rehash, err := password.Check("correct horse battery", old, password.Default()); !ok || !rehash || err != nil {
		t.Errorf("Check(old params) = %v, %v, %v", ok, rehash, err)
	}
	if again, _ := password.Hash("correct horse battery", cheap); again == old {
		t.Error("two hashes of one password are equal: no salt")
	}
}

func TestCheckRefusesMalformedHashes(t *testing.T) {
	t.Parallel()
	for _, h := range []string{
		"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", // 4 TiB
		"$argon2id$v=19$m=64,t=100000,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$!!$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$",
	} {
		if _, _, err := password.Check("x", h, cheap); !errors.Is(err, password.ErrMalformedHash) {
			t.Errorf("Check(%q) = %v; want ErrMalformedHash", h, err)
		}
	}
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		password, email string
		ok              bool
	}{
		{"correct horse battery", "alice@example.com", true},
		{"ünïcødé-pässwörd", "alice@example.com", true},
		{"short", "alice@example.com", false},
		{strings.Repeat("a", 129), "alice@example.com", false},
		{strings.Repeat("z", 12), "alice@example.com", false},
		{"Password1234", "alice@example.com", false},
		{"my-alice-password", "alice@example.com", false},
		{"bad\xffutf8-password", "alice@example.com", false},
	} {
		if err := password.CheckPolicy(tt.password, tt.email); (err == nil) != tt.ok {
			t.Errorf("CheckPolicy(%q) = %v; want ok=%v", tt.password, err, tt.ok)
		}
	}
}
