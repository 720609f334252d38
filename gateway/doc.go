// Package gateway is the edge of TradeX: one Fiber (fasthttp) application on
// one port that serves clients and admins.
//
// Today it serves the probes every deployment needs:
//
//	GET /healthz  liveness: 200 while the process is serving HTTP
//	GET /readyz   readiness: 200 when every dependency check passes, 503 otherwise
//
// REST (/v1), WebSocket (/ws) and the Connect-Web mount of every service are
// added here as the services land.
package gateway
