package signature_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tradex-mesh/tradex/services/auth/signature"
)

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func headers(kv ...string) func(string) string {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h.Get
}

func TestHMACRequest(t *testing.T) {
	t.Parallel()
	secret := []byte("s3cret")
	ts := now.UnixMilli()
	body := []byte(`{"side":"buy"}`)
	msg := signature.Message(ts, "POST", "/v1/orders?x=1", body)
	if string(msg) != strconv.FormatInt(ts, 10)+`POST/v1/orders?x=1{"side":"buy"}` {
		t.Fatalf("message %q", msg)
	}
	sig := signature.SignHMAC(secret, msg)
	r, ok, err := signature.Parse(headers(signature.HeaderKey, "k1", signature.HeaderTimestamp, strconv.FormatInt(ts, 10), signature.HeaderSignature, sig))
	if !ok || err != nil || r.KeyID != "k1" || r.Window != signature.DefaultWindow {
		t.Fatalf("Parse = %+v, %v, %v", r, ok, err)
	}
	if err := r.Fresh(now.Add(4 * time.Second)); err != nil {
		t.Errorf("4 s later: %v", err)
	}
	if err := r.VerifyHMAC(secret, msg); err != nil {
		t.Errorf("VerifyHMAC: %v", err)
	}
	for name, bad := range map[string]func() error{
		"stale":  func() error { return r.Fresh(now.Add(6 * time.Second)) },
		"future": func() error { return r.Fresh(now.Add(-2 * time.Second)) },
		"changed body": func() error {
			return r.VerifyHMAC(secret, signature.Message(ts, "POST", "/v1/orders?x=1", []byte(`{"side":"sell"}`)))
		},
		"changed path": func() error { return r.VerifyHMAC(secret, signature.Message(ts, "POST", "/v1/orders?x=2", body)) },
		"other secret": func() error { return r.VerifyHMAC([]byte("other"), msg) },
	} {
		if err := bad(); !errors.Is(err, signature.ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", name, err)
		}
	}
}

func TestEd25519Request(t *testing.T) {
	t.Parallel()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	msg := signature.Message(now.UnixMilli(), "GET", "/v1/balances", nil)
	r := signature.Request{KeyID: "k", Timestamp: now.UnixMilli(), Window: time.Second, Signature: signature.SignEd25519(priv, msg)}
	if err := r.VerifyEd25519(pub, msg); err != nil {
		t.Fatal(err)
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if err := r.VerifyEd25519(other, msg); !errors.Is(err, signature.ErrInvalid) {
		t.Errorf("another key: %v", err)
	}
	if err := r.VerifyHMAC(pub, msg); !errors.Is(err, signature.ErrInvalid) {
		t.Errorf("an Ed25519 signature checked as HMAC: %v", err)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	if _, ok, err := signature.Parse(headers()); ok || err != nil {
		t.Errorf("no key header: ok=%v err=%v; want not a signed request", ok, err)
	}
	for name, h := range map[string]func(string) string{
		"no timestamp":      headers(signature.HeaderKey, "k", signature.HeaderSignature, "aa"),
		"seconds":           headers(signature.HeaderKey, "k", signature.HeaderTimestamp, "1.5", signature.HeaderSignature, "aa"),
		"negative":          headers(signature.HeaderKey, "k", signature.HeaderTimestamp, "-1", signature.HeaderSignature, "aa"),
		"no signature":      headers(signature.HeaderKey, "k", signature.HeaderTimestamp, ts),
		"window too long":   headers(signature.HeaderKey, "k", signature.HeaderTimestamp, ts, signature.HeaderRecvWindow, "60001", signature.HeaderSignature, "aa"),
		"window zero":       headers(signature.HeaderKey, "k", signature.HeaderTimestamp, ts, signature.HeaderRecvWindow, "0", signature.HeaderSignature, "aa"),
		"key id too long":   headers(signature.HeaderKey, string(make([]byte, 65)), signature.HeaderTimestamp, ts, signature.HeaderSignature, "aa"),
		"signature too big": headers(signature.HeaderKey, "k", signature.HeaderTimestamp, ts, signature.HeaderSignature, string(make([]byte, 129))),
	} {
		if _, ok, err := signature.Parse(h); !ok || !errors.Is(err, signature.ErrInvalid) {
			t.Errorf("%s: ok=%v err=%v; want ErrInvalid", name, ok, err)
		}
	}
	r, _, err := signature.Parse(headers(signature.HeaderKey, "k", signature.HeaderTimestamp, ts, signature.HeaderRecvWindow, "60000", signature.HeaderSignature, "aa"))
	if err != nil || r.Window != time.Minute {
		t.Errorf("a 60 s window: %+v, %v", r, err)
	}
}

// FuzzParse: any headers parse or are refused with ErrInvalid; a parsed
// request's bounds hold.
func FuzzParse(f *testing.F) {
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	f.Add("k1", ts, "", "aa")
	f.Add("k1", ts, "5000", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	f.Add("", "", "", "")
	f.Add("k", "99999999999999999999", "-1", "==")
	f.Add("k", "1e3", "1.5", "\x00")
	f.Fuzz(func(t *testing.T, key, timestamp, window, sig string) {
		r, ok, err := signature.Parse(headers(signature.HeaderKey, key, signature.HeaderTimestamp, timestamp, signature.HeaderRecvWindow, window, signature.HeaderSignature, sig))
		switch {
		case err != nil && !errors.Is(err, signature.ErrInvalid):
			t.Fatalf("Parse error %v does not wrap ErrInvalid", err)
		case err == nil && ok && (r.Window <= 0 || r.Window > signature.MaxWindow || r.Timestamp <= 0 || r.KeyID == "" || r.Signature == ""):
			t.Fatalf("Parse accepted %+v", r)
		case err == nil && ok:
			_ = r.Fresh(now)
			_ = r.VerifyHMAC([]byte("s"), []byte("m"))
			_ = r.VerifyEd25519(make(ed25519.PublicKey, ed25519.PublicKeySize), []byte("m"))
		}
	})
}
