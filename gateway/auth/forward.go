package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
)

// PrincipalHeader carries the principal of a call the gateway relays to a
// service in another process, over the internal port. The port takes it
// only from callers that hold the service credential.
const PrincipalHeader = "X-Tradex-Principal"

// maxPrincipalHeader bounds the header.
const maxPrincipalHeader = 4096

// encodePrincipal is p as the header's value: base64url JSON.
func encodePrincipal(p Principal) string {
	b, _ := json.Marshal(p) //nolint:errchkjson // a struct of strings and bools always encodes
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodePrincipal reads the value of PrincipalHeader.
func DecodePrincipal(v string) (Principal, error) {
	if len(v) > maxPrincipalHeader {
		return Principal{}, errors.New("principal header too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return Principal{}, fmt.Errorf("principal header: %w", err)
	}
	var p Principal
	if err := json.Unmarshal(b, &p); err != nil {
		return Principal{}, fmt.Errorf("principal header: %w", err)
	}
	return p, nil
}

// FromRequest returns the principal a trusted caller forwarded in r's
// headers, if any.
func FromRequest(r *http.Request) (Principal, bool, error) {
	v := r.Header.Get(PrincipalHeader)
	if v == "" {
		return Principal{}, false, nil
	}
	p, err := DecodePrincipal(v)
	return p, err == nil, err
}

// ForwardPrincipal is the client interceptor of the Connect clients the
// gateway calls other processes' services with: it forwards the
// principal of ctx, so that the service checks the caller as it would in
// process.
func ForwardPrincipal() connect.Interceptor { return forwarder{} }

type forwarder struct{}

// WrapUnary forwards the principal of a unary call.
func (forwarder) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if p, ok := FromContext(ctx); ok && req.Spec().IsClient {
			req.Header().Set(PrincipalHeader, encodePrincipal(p))
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient forwards the principal of a stream.
func (forwarder) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if p, ok := FromContext(ctx); ok {
			conn.RequestHeader().Set(PrincipalHeader, encodePrincipal(p))
		}
		return conn
	}
}

// WrapStreamingHandler leaves handlers alone.
func (forwarder) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
