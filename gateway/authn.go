package gateway

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"github.com/gofiber/fiber/v2"

	"github.com/tradex-mesh/tradex/gateway/auth"
)

// principal is who a request acts for.
type principal = auth.Principal

// principalKey is the Fiber local holding a request's verified principal.
type principalKey struct{}

// authenticate verifies the request's credential, if it carries one, and
// keeps the principal for the route's access check and the rate limit. A
// credential the verifier refuses is Unauthenticated at once.
func (g *Gateway) authenticate(c *fiber.Ctx) error {
	p, err := g.verify(c.UserContext(), c.Get(fiber.HeaderAuthorization), c.Get("X-API-Key"))
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

// permit checks a principal (nil: none) against an access level.
func permit(p *principal, a access) error {
	switch {
	case a == public:
		return nil
	case p == nil:
		return connect.NewError(connect.CodeUnauthenticated,
			errors.New("a credential is needed: Authorization: Bearer <token> or X-API-Key"))
	case a == admin && !p.Admin:
		return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("%s is not an admin", p.Subject))
	}
	return nil
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
