package gateway

import (
	"context"
	"runtime/debug"
	"sort"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"

	authv1 "github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1"
)

// readyCheckTimeout bounds each readiness check, so that a hung dependency
// makes /readyz answer 503 instead of hanging the probe.
const readyCheckTimeout = 2 * time.Second

// routes mounts everything the gateway serves: probes, CORS, REST,
// the Connect services and the WebSocket.
func (g *Gateway) routes(deps Deps) {
	g.app.Use(g.observe)
	g.app.Use(recover.New(recover.Config{EnableStackTrace: true, StackTraceHandler: g.logPanic}))
	g.app.Get("/healthz", g.healthz)
	g.app.Get("/readyz", g.readyz)
	if g.metrics != nil {
		g.app.Get("/metrics", adaptor.HTTPHandler(g.metrics.Handler()))
	}
	if len(g.cfg.AllowedOrigins) > 0 {
		g.app.Use(corsMiddleware(g.cfg.AllowedOrigins))
	}
	g.app.Get("/.well-known/jwks.json", g.jwks)
	g.serveREST()
	g.serveConnect(deps.Connect)
	if deps.WebSocket != nil {
		g.app.Get("/ws", g.limitConnections, deps.WebSocket)
	}
}

// jwks serves the access tokens' signing keys (RFC 7517), for whoever
// verifies tokens outside the platform.
func (g *Gateway) jwks(c *fiber.Ctx) error {
	res, err := g.services.Auth.GetSigningKeys(c.UserContext(), &authv1.GetSigningKeysRequest{})
	if err != nil {
		return g.writeError(c, err)
	}
	c.Set(fiber.HeaderContentType, "application/jwk-set+json")
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.Send(res.GetJwks())
}

// healthz answers liveness probes: the process is up and serving HTTP.
func (g *Gateway) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

// readyz answers readiness probes with every check's outcome, 503 if any
// failed, and every durable consumer's backlog ("lag").
func (g *Gateway) readyz(c *fiber.Ctx) error {
	names := make([]string, 0, len(g.ready))
	for name := range g.ready {
		names = append(names, name)
	}
	sort.Strings(names)

	status := fiber.StatusOK
	checks := make(map[string]string, len(names))
	for _, name := range names {
		ctx, cancel := context.WithTimeout(c.UserContext(), readyCheckTimeout)
		err := g.ready[name](ctx)
		cancel()
		if err != nil {
			status = fiber.StatusServiceUnavailable
			checks[name] = err.Error()
			g.logger.WarnContext(c.UserContext(), "readiness check failed", "check", name, "err", err)
			continue
		}
		checks[name] = "ok"
	}
	overall := "ok"
	if status != fiber.StatusOK {
		overall = "unavailable"
	}
	body := fiber.Map{"status": overall, "checks": checks}
	if g.lags != nil {
		ctx, cancel := context.WithTimeout(c.UserContext(), readyCheckTimeout)
		body["lag"] = g.lags(ctx)
		cancel()
	}
	return c.Status(status).JSON(body)
}

// logPanic logs a handler's panic with its stack; the request is answered
// 500 internal, and the process goes on.
func (g *Gateway) logPanic(c *fiber.Ctx, p any) {
	g.logger.ErrorContext(c.UserContext(), "handler panicked", "method", c.Method(), "path", c.Path(),
		"panic", p, "stack", string(debug.Stack()))
}
