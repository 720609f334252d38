package gateway

import (
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
)

// accessLog logs every request at debug level (method, path, status,
// duration, client), once it is answered. It costs nothing while debug is
// off.
func (g *Gateway) accessLog(c *fiber.Ctx) error {
	if !g.logger.Enabled(c.UserContext(), slog.LevelDebug) {
		return c.Next()
	}
	start := time.Now()
	err := c.Next()
	status := c.Response().StatusCode()
	if err != nil {
		status = 0 // answered by the error handler after us
	}
	g.logger.DebugContext(c.UserContext(), "http request", "method", c.Method(), "path", c.Path(), "status", status,
		"duration", time.Since(start), "client", c.IP(), "trace_id", string(c.Response().Header.Peek("X-Trace-Id")))
	return err
}
