package rpcserver

import (
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/gateway/auth"
)

// Options are the internal port's protections. The zero value requires no
// credential and applies the default limits.
type Options struct {
	// Token, when set, is the service credential every call but health
	// and reflection must carry as "Authorization: Bearer <token>";
	// others are refused with Unauthenticated. A client certificate the
	// server verified (TLS with ClientCAs) is a service credential too.
	Token string
	// TLS, when set, makes the server speak TLS with it (HTTP/2 through
	// ALPN h2, HTTP/1.1) instead of plaintext HTTP/1.1 and h2c. With
	// ClientCAs and tls.RequireAndVerifyClientCert it is mutual TLS.
	TLS *tls.Config
	// MaxBodyBytes bounds a request body (default 4 MiB); a larger one is
	// refused with ResourceExhausted.
	MaxBodyBytes int64
	// BodyTimeout bounds how long reading a request body may take (default
	// 30 s): a body that trickles in slower is cut off.
	BodyTimeout time.Duration
}

// Defaults of Options.
const (
	DefaultMaxBodyBytes = 4 << 20
	DefaultBodyTimeout  = 30 * time.Second
)

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	return o
}

// open reports whether path is served without a credential: gRPC health
// and reflection, for probes and tooling.
func open(path string) bool {
	return strings.HasPrefix(path, "/grpc.health.v1.") || strings.HasPrefix(path, "/grpc.reflection.")
}

// guard checks the credential, bounds the body in size and in time, then
// serves next.
func (o Options) guard(next http.Handler) http.Handler {
	errs := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.Token != "" && !open(r.URL.Path) && !o.authorized(r) {
			_ = errs.Write(w, r, connect.NewError(connect.CodeUnauthenticated, errors.New("the internal port needs a service credential")))
			return
		}
		// A credentialed caller (the gateway of another process) may say
		// whom it relays the call for; the service then checks that
		// principal as it would in process.
		if p, ok, err := auth.FromRequest(r); err != nil {
			_ = errs.Write(w, r, connect.NewError(connect.CodeInvalidArgument, err))
			return
		} else if ok && !open(r.URL.Path) {
			r = r.WithContext(auth.NewContext(r.Context(), p))
		}
		if r.ContentLength > o.MaxBodyBytes {
			_ = errs.Write(w, r, connect.NewError(connect.CodeResourceExhausted, errors.New("request body too large")))
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(o.BodyTimeout)); err == nil {
			r.Body = &deadlineBody{ReadCloser: http.MaxBytesReader(w, r.Body, o.MaxBodyBytes), rc: rc}
		} else {
			r.Body = http.MaxBytesReader(w, r.Body, o.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// authorized accepts a client certificate the TLS handshake verified
// against the server's client CAs, else compares the bearer token in
// constant time.
func (o Options) authorized(r *http.Request) bool {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return true
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(token), []byte(o.Token)) == 1
}

// deadlineBody lifts the read deadline once the body is read, so a server
// stream that outlives BodyTimeout is not cut (the server's read of the
// connection after the body only watches for the client leaving).
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{}) // best effort: an unsupported writer keeps none
	}
	return n, err
}

// TokenTransport adds the service credential to every request of a Connect
// client of the internal port.
type TokenTransport struct {
	// Token is the credential; Base the transport (nil: http.DefaultTransport).
	Token string
	Base  http.RoundTripper
}

// RoundTrip sends r with "Authorization: Bearer <token>".
func (t TokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.Token)
	return base.RoundTrip(r)
}
