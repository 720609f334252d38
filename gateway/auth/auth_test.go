package auth

import (
	"errors"
	"reflect"
	"testing"
)

func TestDev(t *testing.T) {
	t.Parallel()
	d := Dev{AdminToken: "s3cret"}
	cases := []struct {
		in      string
		want    Principal
		invalid bool
	}{
		{in: "alice", want: Principal{Subject: "alice", AccountID: "alice", Roles: []string{RoleTrader}}},
		{in: "acct-7_x", want: Principal{Subject: "acct-7_x", AccountID: "acct-7_x", Roles: []string{RoleTrader}}},
		{in: "s3cret", want: Principal{Subject: "admin", Admin: true, Roles: []string{RoleAdmin}}},
		{in: "", invalid: true},
		{in: "a.b", invalid: true},
		{in: "a b", invalid: true},
		{in: string(make([]byte, 65)), invalid: true},
	}
	for _, c := range cases {
		got, err := d.Verify(t.Context(), c.in)
		if c.invalid {
			if !errors.Is(err, ErrInvalidCredential) {
				t.Errorf("%q: err %v, want ErrInvalidCredential", c.in, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	if p, err := (Dev{}).Verify(t.Context(), "admin"); err != nil || p.Admin {
		t.Errorf("without an admin token, \"admin\" is an account: %+v, %v", p, err)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	tok := Tokens{"k1": {Subject: "key-1", AccountID: "bob"}}
	if p, err := tok.Verify(t.Context(), "k1"); err != nil || p.AccountID != "bob" {
		t.Errorf("k1: %+v, %v", p, err)
	}
	for _, cred := range []string{"", "k2"} {
		if _, err := tok.Verify(t.Context(), cred); !errors.Is(err, ErrInvalidCredential) {
			t.Errorf("%q: %v, want ErrInvalidCredential", cred, err)
		}
	}
}

func TestFromHeader(t *testing.T) {
	t.Parallel()
	cases := []struct {
		authz, key, want string
		ok               bool
	}{
		{authz: "Bearer abc", want: "abc", ok: true},
		{authz: "bearer  abc ", want: "abc", ok: true},
		{authz: "Basic abc", key: "", ok: false},
		{authz: "Basic abc", key: "k", want: "k", ok: true},
		{authz: "Bearer ", key: "k", want: "k", ok: true},
		{ok: false},
	}
	for _, c := range cases {
		got, ok := FromHeader(c.authz, c.key)
		if got != c.want || ok != c.ok {
			t.Errorf("FromHeader(%q, %q) = %q, %v; want %q, %v", c.authz, c.key, got, ok, c.want, c.ok)
		}
	}
}
