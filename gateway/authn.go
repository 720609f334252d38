package gateway

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"github.com/gofiber/fiber/v2"

	"github.com/tradex-mesh/tradex/gateway/auth"
	"github.com/tradex-mesh/tradex/services/auth/signature"
)

// principal is who a request acts for.
type principal = auth.Principal

// principalKey is the Fiber local holding a request's verified principal.
type principalKey struct{}

// authenticate verifies the request's credential, if it carries one, and
// keeps the principal for the route's access check and the rate limit. A
// credential the verifier refuses is Unauthenticated at once.
func (g *Gateway) authenticate(c *fiber.Ctx) error {
	p, err := g.credential(c)
	if err != nil {
		// A refused credential costs its address a request: guessing keys
		// is rate limited like anything else.
		if lerr := g.charge(c, g.clientIP(c), nil); lerr != nil {
			return lerr
		}
		return g.writeError(c, err)
	}
	if p != nil {
		c.Locals(principalKey{}, *p)
	}
	return c.Next()
}

// credential verifies a request's credential: a request signed with an API
// key (X-TX-APIKEY and the other signature headers), else a bearer token or
// an X-API-Key header. nil without one.
func (g *Gateway) credential(c *fiber.Ctx) (*principal, error) {
	header := func(name string) string { return c.Get(name) } // the app is Immutable: a copy
	sr, signed, err := signature.Parse(header)
	if !signed {
		return g.verify(c.UserContext(), header(fiber.HeaderAuthorization), header("X-API-Key"))
	}
	if err == nil {
		err = sr.Fresh(g.now())
	}
	if err != nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, err)
	}
	sv, ok := g.verifier.(auth.SignedVerifier)
	if !ok {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("this gateway accepts no API keys"))
	}
	msg := signature.Message(sr.Timestamp, c.Method(), string(c.Request().RequestURI()), c.Body())
	p, err := sv.VerifySigned(c.UserContext(), auth.SignedRequest{KeyID: sr.KeyID, Signature: sr.Signature, Message: msg, ClientIP: g.clientIP(c)})
	switch {
	case errors.Is(err, auth.ErrInvalidCredential):
		return nil, connect.NewError(connect.CodeUnauthenticated, err)
	case err != nil:
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("verify API key: %w", err))
	}
	return &p, nil
}

// verify checks the credential of a request's headers: nil without one,
// Unauthenticated for one the verifier refuses, Unavailable when it cannot
// tell.
func (g *Gateway) verify(ctx context.Context, authorization, apiKey string) (*principal, error) {
	cred, ok := auth.FromHeader(authorization, apiKey)
	if !ok {
		return nil, nil
	}
	if g.verifier == nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("this gateway accepts no credentials"))
	}
	p, err := g.verifier.Verify(ctx, cred)
	switch {
	case errors.Is(err, auth.ErrInvalidCredential):
		return nil, connect.NewError(connect.CodeUnauthenticated, err)
	case err != nil:
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("verify credential: %w", err))
	}
	return &p, nil
}

// principalOf is the request's verified principal, if any.
func principalOf(c *fiber.Ctx) (principal, bool) {
	p, ok := c.Locals(principalKey{}).(principal)
	return p, ok
}

// authorize checks that the request may call a route of the given access.
func authorize(c *fiber.Ctx, a access) (principal, error) {
	p, ok := principalOf(c)
	if !ok {
		return p, permit(nil, a)
	}
	return p, permit(&p, a)
}
