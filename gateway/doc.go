// Package gateway is the edge of TradeX: one Fiber (fasthttp) application on
// one port that serves clients and admins.
//
// Today it serves the probes every deployment needs:
//
//	GET /healthz  liveness: 200 while the process is serving HTTP
//	GET /readyz   readiness: 200 when every dependency check passes, 503 otherwise
//
// Errors are answered in one shape, `{"code","message","details","traceId"}`
// with the HTTP status of the Connect code (one table, errors.go; the
// Connect protocol's mapping: invalid_argument and failed_precondition 400,
// not_found 404, already_exists and aborted 409, unauthenticated 401,
// permission_denied 403, resource_exhausted 429, unavailable 503, ...). The
// trace id is the request's W3C traceparent trace id, or a new one, and is
// also the X-Trace-Id response header.
//
// REST (/v1), WebSocket (/ws) and the Connect-Web mount of every service are
// added here as the services land.
package gateway
