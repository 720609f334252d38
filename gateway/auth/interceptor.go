package auth

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

type principalKey struct{}

// NewContext returns ctx carrying the principal a request acts for.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of ctx, if the request came with one
// (through the gateway).
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// accountFields are the request fields that name the account a call acts
// for: account_id, and user_id in the auth and user contracts (a user's
// id is their account id).
var accountFields = []protoreflect.Name{"account_id", "user_id"}

// Interceptor makes a non-admin principal act only for its own account:
// in every request message with an account_id field, an empty one is set
// to the principal's account and another account is PermissionDenied. A
// request with no principal in its context (the internal port, trusted
// callers) passes unchanged. Services mount it in every handler; the
// gateway puts the principal in the context.
func Interceptor() connect.Interceptor { return interceptor{} }

type interceptor struct{}

// WrapUnary checks the request of a unary call.
func (interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if p, ok := FromContext(ctx); ok && !req.Spec().IsClient {
			if err := actFor(req.Any(), p); err != nil {
				return nil, err
			}
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient leaves clients alone.
func (interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler checks every message a stream receives.
func (interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if p, ok := FromContext(ctx); ok {
			conn = &actingConn{StreamingHandlerConn: conn, p: p}
		}
		return next(ctx, conn)
	}
}

// actingConn checks every message a stream receives.
type actingConn struct {
	connect.StreamingHandlerConn
	p Principal
}

// Receive reads the next message and checks its account.
func (c *actingConn) Receive(msg any) error {
	if err := c.StreamingHandlerConn.Receive(msg); err != nil {
		return err
	}
	return actFor(msg, c.p)
}

// ActFor fills or checks the account_id field of a request for p: a
// trader acts for their own account only (an empty field is set to it,
// another account is PermissionDenied), an admin or a service account for
// any account or none.
// A message without the field passes unchanged. shownAs is how the
// caller's API names the field in the error ("accountId"; "" for the
// field's own name).
func ActFor(m proto.Message, p Principal, shownAs string) error {
	if p.Admin || p.HasRole(RoleService) { // service accounts act for the accounts of the calls they relay
		return nil
	}
	r := m.ProtoReflect()
	var fd protoreflect.FieldDescriptor
	for _, name := range accountFields {
		if fd = r.Descriptor().Fields().ByName(name); fd != nil {
			break
		}
	}
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
		return nil
	}
	if shownAs == "" {
		shownAs = string(fd.Name())
	}
	switch asked := r.Get(fd).String(); {
	case p.AccountID == "":
		return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("%s acts for no account", p.Subject))
	case asked == "":
		r.Set(fd, protoreflect.ValueOfString(p.AccountID))
	case asked != p.AccountID:
		return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("%s: may not act for account %s", shownAs, asked))
	}
	return nil
}

// actFor is ActFor for a message of a Connect call.
func actFor(msg any, p Principal) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil
	}
	return ActFor(m, p, "")
}

type clientAddressKey struct{}

// WithClientAddress returns ctx carrying the address of the client a
// request came from (as the gateway attributes it), for services that
// throttle or allow-list by address.
func WithClientAddress(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddressKey{}, addr)
}

// ClientAddress returns the client address of ctx, or "" when the request
// did not come through the gateway.
func ClientAddress(ctx context.Context) string {
	a, _ := ctx.Value(clientAddressKey{}).(string)
	return a
}
