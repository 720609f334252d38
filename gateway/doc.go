// Package gateway is the edge of TradeX: one Fiber (fasthttp) application on
// one port that serves clients, admins and browsers (docs/api.md):
//
//	/v1/...            REST over the Connect services, from one route table
//	                   (routes.go); its OpenAPI document at /v1/openapi.json
//	/tradex.*.v1.*/    every Connect service for browsers (Connect protocol
//	                   and gRPC-Web over HTTP/1.1), per-procedure access
//	/ws                the WebSocket feed (package wsfeed), when given
//	/healthz, /readyz  liveness and readiness probes
//	/metrics           Prometheus metrics, when given
//
// Credentials go through an auth.Verifier; every client (principal, else
// address) has a rate-limit budget shared by REST, Connect and WebSocket
// connection attempts.
//
// Errors are answered in one shape, `{"code","message","details","traceId"}`
// with the HTTP status of the Connect code (one table, errors.go; the
// Connect protocol's mapping: invalid_argument and failed_precondition 400,
// not_found 404, already_exists and aborted 409, unauthenticated 401,
// permission_denied 403, resource_exhausted 429, unavailable 503, ...). The
// trace id is the request's W3C traceparent trace id, or a new one, and is
// also the X-Trace-Id header of every answer.
package gateway
