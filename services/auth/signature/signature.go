// Package signature reads and checks the signature of a request made with
// an API key, the way exchange clients sign them:
//
//	X-TX-APIKEY:       the key id
//	X-TX-TIMESTAMP:    milliseconds since the Unix epoch
//	X-TX-RECV-WINDOW:  optional, milliseconds the request stays valid (default 5000, at most 60000)
//	X-TX-SIGNATURE:    over timestamp + method + path with query + body:
//	                   hex HMAC-SHA256 with the key's secret, or
//	                   base64 (standard or URL) Ed25519 with the key's private half
//
// A request is fresh from one second before its timestamp (clock skew)
// until its window ends. It does no I/O.
package signature

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	HeaderKey        = "X-TX-APIKEY"
	HeaderTimestamp  = "X-TX-TIMESTAMP"
	HeaderRecvWindow = "X-TX-RECV-WINDOW"
	HeaderSignature  = "X-TX-SIGNATURE"
)

// Windows.
const (
	DefaultWindow = 5 * time.Second
	MaxWindow     = 60 * time.Second
	// Skew is how far ahead of the server's clock a timestamp may be.
	Skew = time.Second
)

// ErrInvalid is a signed request that cannot be accepted: malformed
// headers, stale or future timestamps, wrong signatures.
var ErrInvalid = errors.New("invalid request signature")

// Request is what a signed request's headers say.
type Request struct {
	// KeyID names the API key.
	KeyID string
	// Timestamp is when the client signed it, in milliseconds.
	Timestamp int64
	// Window is how long it stays valid.
	Window time.Duration
	// Signature is the raw signature: hex-decoded for HMAC, base64-decoded
	// for Ed25519 (a 64-byte value decodes either way: see Verify*).
	Signature string
}

// Parse reads the headers through get. ok is false when the request
// carries no key header (it is not a signed request); err wraps ErrInvalid
// when it does but the headers are malformed.
func Parse(get func(name string) string) (r Request, ok bool, err error) {
	r.KeyID = strings.TrimSpace(get(HeaderKey))
	if r.KeyID == "" {
		return Request{}, false, nil
	}
	if len(r.KeyID) > 64 {
		return Request{}, true, fmt.Errorf("%w: %s longer than 64 characters", ErrInvalid, HeaderKey)
	}
	ts := strings.TrimSpace(get(HeaderTimestamp))
	if r.Timestamp, err = strconv.ParseInt(ts, 10, 64); err != nil || r.Timestamp <= 0 || len(ts) > 16 {
		return Request{}, true, fmt.Errorf("%w: %s must be milliseconds since the epoch", ErrInvalid, HeaderTimestamp)
	}
	r.Window = DefaultWindow
	if w := strings.TrimSpace(get(HeaderRecvWindow)); w != "" {
		ms, err := strconv.ParseInt(w, 10, 64)
		if err != nil || ms <= 0 || time.Duration(ms)*time.Millisecond > MaxWindow {
			return Request{}, true, fmt.Errorf("%w: %s must be 1 to %d milliseconds", ErrInvalid, HeaderRecvWindow, MaxWindow.Milliseconds())
		}
		r.Window = time.Duration(ms) * time.Millisecond
	}
	r.Signature = strings.TrimSpace(get(HeaderSignature))
	if r.Signature == "" || len(r.Signature) > 128 {
		return Request{}, true, fmt.Errorf("%w: %s is required (hex HMAC-SHA256 or base64 Ed25519)", ErrInvalid, HeaderSignature)
	}
	return r, true, nil
}

// Fresh checks the timestamp against now and the window.
func (r Request) Fresh(now time.Time) error {
	at := time.UnixMilli(r.Timestamp)
	switch {
	case at.After(now.Add(Skew)):
		return fmt.Errorf("%w: timestamp %d is ahead of the server's clock", ErrInvalid, r.Timestamp)
	case now.Sub(at) > r.Window:
		return fmt.Errorf("%w: timestamp %d is outside the %d ms window", ErrInvalid, r.Timestamp, r.Window.Milliseconds())
	}
	return nil
}

// Message is what is signed: timestamp + method + path with query + body.
func Message(timestamp int64, method, pathQuery string, body []byte) []byte {
	m := make([]byte, 0, 20+len(method)+len(pathQuery)+len(body))
	m = strconv.AppendInt(m, timestamp, 10)
	m = append(m, method...)
	m = append(m, pathQuery...)
	return append(m, body...)
}

// SignHMAC is the hex HMAC-SHA256 of msg under secret: what a client
// sends as X-TX-SIGNATURE.
func SignHMAC(secret, msg []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(msg)
	return hex.EncodeToString(mac.Sum(nil))
}

// SignEd25519 is the base64 Ed25519 signature of msg.
func SignEd25519(key ed25519.PrivateKey, msg []byte) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, msg))
}

// VerifyHMAC checks r's signature of msg under secret in constant time.
func (r Request) VerifyHMAC(secret, msg []byte) error {
	sig, err := hex.DecodeString(r.Signature)
	if err != nil || len(sig) != sha256.Size {
		return fmt.Errorf("%w: %s must be 64 hex digits", ErrInvalid, HeaderSignature)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(msg)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return fmt.Errorf("%w: signature does not match", ErrInvalid)
	}
	return nil
}

// VerifyEd25519 checks r's signature of msg under pub.
func (r Request) VerifyEd25519(pub ed25519.PublicKey, msg []byte) error {
	sig, err := base64.StdEncoding.DecodeString(r.Signature)
	if err != nil {
		sig, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(r.Signature, "="))
	}
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: %s must be a base64 Ed25519 signature", ErrInvalid, HeaderSignature)
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, msg, sig) {
		return fmt.Errorf("%w: signature does not match", ErrInvalid)
	}
	return nil
}
