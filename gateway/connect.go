package gateway

import (
	"strings"

	connectcors "connectrpc.com/cors"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/cors"

	"github.com/tradex-mesh/tradex/internal/rpcserver"
)

// serveConnect mounts each Connect service under its path, so browsers
// reach it over HTTP/1.1 with the Connect protocol or gRPC-Web (gRPC itself
// needs HTTP/2: it is served on the internal port). Server streams are
// flushed message by message (fasthttp >= 1.78).
func (g *Gateway) serveConnect(services []rpcserver.Service) {
	for _, svc := range services {
		g.app.Use(svc.Path, adaptor.HTTPHandler(svc.Handler))
	}
}

// corsMiddleware answers preflights and sets the CORS headers for the
// allowed origins, with the headers Connect, gRPC-Web and the REST API use.
func corsMiddleware(origins []string) fiber.Handler {
	allowHeaders := append(connectcors.AllowedHeaders(), "Authorization", "X-API-Key", "Idempotency-Key", "Traceparent", "Tracestate")
	exposeHeaders := append(connectcors.ExposedHeaders(), "X-Trace-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining", "Retry-After")
	return cors.New(cors.Config{
		AllowOrigins:  strings.Join(origins, ","),
		AllowMethods:  "GET,POST,PUT,PATCH,DELETE,OPTIONS",
		AllowHeaders:  strings.Join(allowHeaders, ","),
		ExposeHeaders: strings.Join(exposeHeaders, ","),
		MaxAge:        7200,
	})
}
