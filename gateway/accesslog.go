package gateway

import (
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
)

// observe answers every request's error itself (so its status is known
// here), records it in a server span (docs/operations.md, "Tracing") and
// in the metrics by route pattern, and logs it at debug level. Logging costs nothing while debug is off.
func (g *Gateway) observe(c *fiber.Ctx) error {
	start := time.Now()
	span := g.startRequestSpan(c)
	id := spanTraceID(c.UserContext())
	if id == "" {
		id = traceID(c)
	}
	c.Set(traceHeader, id) // every answer names its trace, errors in their body too
	if err := c.Next(); err != nil {
		if herr := g.handleError(c, err); herr != nil {
			if span != nil {
				endRequestSpan(c, span, routeLabel(c, fiber.StatusInternalServerError), fiber.StatusInternalServerError)
			}
			return herr
		}
	}
	elapsed := time.Since(start)
	status := c.Response().StatusCode()
	route := routeLabel(c, status)
	if span != nil {
		endRequestSpan(c, span, route, status)
	}
	if g.metrics != nil {
		g.metrics.ObserveHTTP(c.Method(), route, status, elapsed)
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
