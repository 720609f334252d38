package gateway

import (
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
	cred, ok := auth.FromHeader(c.Get(fiber.HeaderAuthorization), c.Get("X-API-Key"))
	if !ok {
		return c.Next()
	}
	if g.verifier == nil {
		return g.writeError(c, connect.NewError(connect.CodeUnauthenticated, errors.New("this gateway accepts no credentials")))
	}
	p, err := g.verifier.Verify(c.UserContext(), cred)
	switch {
	case errors.Is(err, auth.ErrInvalidCredential):
		return g.writeError(c, connect.NewError(connect.CodeUnauthenticated, err))
	case err != nil:
		return g.writeError(c, connect.NewError(connect.CodeUnavailable, fmt.Errorf("verify credential: %w", err)))
	}
	c.Locals(principalKey{}, p)
	return c.Next()
}

// principalOf is the request's verified principal, if any.
func principalOf(c *fiber.Ctx) (principal, bool) {
	p, ok := c.Locals(principalKey{}).(principal)
	return p, ok
}

// authorize checks that the request may call a route of the given access.
func authorize(c *fiber.Ctx, a access) (principal, error) {
	p, ok := principalOf(c)
	switch {
	case a == public:
		return p, nil
	case !ok:
		return p, connect.NewError(connect.CodeUnauthenticated,
			errors.New("this route needs a credential: Authorization: Bearer <token> or X-API-Key"))
	case a == admin && !p.Admin:
		return p, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("%s is not an admin", p.Subject))
	}
	return p, nil
}
