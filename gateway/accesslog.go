package gateway

import (
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
)

// observe answers every request's error itself (so its status is known
// here), records the request in the metrics by route pattern, and logs it
// at debug level. Logging costs nothing while debug is off.
func (g *Gateway) observe(c *fiber.Ctx) error {
	start := time.Now()
	c.Set(traceHeader, traceID(c)) // every answer names its trace, errors in their body too
	if err := c.Next(); err != nil {
		if herr := g.handleError(c, err); herr != nil {
			return herr
		}
	}
	elapsed := time.Since(start)
	status := c.Response().StatusCode()
	if g.metrics != nil {
		g.metrics.ObserveHTTP(c.Method(), routeLabel(c, status), status, elapsed)
	}
	if g.logger.Enabled(c.UserContext(), slog.LevelDebug) {
		g.logger.DebugContext(c.UserContext(), "http request", "method", c.Method(), "path", c.Path(), "status", status,
			"duration", elapsed, "client", g.clientIP(c), "trace_id", string(c.Response().Header.Peek(traceHeader)))
	}
	return nil
}

// routeLabel is the pattern of the route that answered: bounded, unlike
// the path. A request no route took is "unmatched".
func routeLabel(c *fiber.Ctx, status int) string {
	r := c.Route()
	if r == nil || status == fiber.StatusNotFound && (r.Path == "/" || r.Path == "/v1") {
		return "unmatched"
	}
	return r.Path
}
