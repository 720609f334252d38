package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"github.com/gofiber/fiber/v2"
)

// statuses is the one table from Connect codes to HTTP statuses, the
// Connect protocol's own (connectrpc.com/docs/protocol#error-codes).
var statuses = map[connect.Code]int{
	connect.CodeCanceled:           499,
	connect.CodeUnknown:            http.StatusInternalServerError,
	connect.CodeInvalidArgument:    http.StatusBadRequest,
	connect.CodeDeadlineExceeded:   http.StatusGatewayTimeout,
	connect.CodeNotFound:           http.StatusNotFound,
	connect.CodeAlreadyExists:      http.StatusConflict,
	connect.CodePermissionDenied:   http.StatusForbidden,
	connect.CodeResourceExhausted:  http.StatusTooManyRequests,
	connect.CodeFailedPrecondition: http.StatusBadRequest,
	connect.CodeAborted:            http.StatusConflict,
	connect.CodeOutOfRange:         http.StatusBadRequest,
	connect.CodeUnimplemented:      http.StatusNotImplemented,
	connect.CodeInternal:           http.StatusInternalServerError,
	connect.CodeUnavailable:        http.StatusServiceUnavailable,
	connect.CodeDataLoss:           http.StatusInternalServerError,
	connect.CodeUnauthenticated:    http.StatusUnauthorized,
}

// httpStatus is the HTTP status of a Connect code (500 for a code not in
// the table).
func httpStatus(code connect.Code) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// errorBody is the JSON body of every REST error.
type errorBody struct {
	// Code is the Connect code ("invalid_argument", "not_found", ...).
	Code string `json:"code"`
	// Message says what is wrong; for invalid_argument it starts with the
	// field at fault.
	Message string `json:"message"`
	// Details are the error's Connect details, by type name.
	Details []errorDetail `json:"details"`
	// TraceID names the request in the logs and traces (also the
	// X-Trace-Id response header).
	TraceID string `json:"traceId"`
}

type errorDetail struct {
	Type string `json:"type"`
}

// fiberCodes are the Connect codes of the errors Fiber itself answers.
var fiberCodes = map[int]connect.Code{
	http.StatusBadRequest:                  connect.CodeInvalidArgument,
	http.StatusNotFound:                    connect.CodeNotFound,
	http.StatusMethodNotAllowed:            connect.CodeUnimplemented,
	http.StatusRequestTimeout:              connect.CodeDeadlineExceeded,
	http.StatusRequestEntityTooLarge:       connect.CodeResourceExhausted,
	http.StatusRequestHeaderFieldsTooLarge: connect.CodeResourceExhausted,
	http.StatusUnsupportedMediaType:        connect.CodeInvalidArgument,
	http.StatusUnauthorized:                connect.CodeUnauthenticated,
	http.StatusForbidden:                   connect.CodePermissionDenied,
	http.StatusUpgradeRequired:             connect.CodeFailedPrecondition,
	http.StatusTooManyRequests:             connect.CodeResourceExhausted,
	http.StatusNotImplemented:              connect.CodeUnimplemented,
	http.StatusServiceUnavailable:          connect.CodeUnavailable,
	http.StatusGatewayTimeout:              connect.CodeDeadlineExceeded,
}

// handleError is the Fiber error handler: every error a handler or
// middleware returns, and every error Fiber answers itself (no such route,
// body too large), gets the one error body.
func (g *Gateway) handleError(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	if !errors.As(err, &fe) {
		return g.writeError(c, err)
	}
	code, ok := fiberCodes[fe.Code]
	if !ok {
		code = connect.CodeUnknown
		if fe.Code >= http.StatusInternalServerError {
			code = connect.CodeInternal
		}
	}
	msg := fe.Message
	if fe.Code == http.StatusNotFound {
		msg = "no route " + c.Method() + " " + c.Path()
	}
	return g.writeErrorStatus(c, fe.Code, connect.NewError(code, errors.New(msg)))
}

// writeError answers err as an HTTP status and an errorBody. A Connect
// error keeps its code and message; anything else is Internal with a
// generic message, and the detail goes to the log.
func (g *Gateway) writeError(c *fiber.Ctx, err error) error {
	return g.writeErrorStatus(c, httpStatus(connect.CodeOf(err)), err)
}

// writeErrorStatus is writeError with the HTTP status given.
func (g *Gateway) writeErrorStatus(c *fiber.Ctx, status int, err error) error {
	id := string(c.Response().Header.Peek(traceHeader))
	if id == "" {
		id = traceID(c)
	}
	body := errorBody{Code: connect.CodeInternal.String(), Message: "internal error", Details: []errorDetail{}, TraceID: id}
	var ce *connect.Error
	if errors.As(err, &ce) {
		body.Code, body.Message = ce.Code().String(), ce.Message()
		if after := ce.Meta().Get("Retry-After"); after != "" {
			c.Set("Retry-After", after) // a service's hint (the order service while settlement is behind)
		}
		for _, d := range ce.Details() {
			body.Details = append(body.Details, errorDetail{Type: d.Type()})
		}
	}
	if ce == nil || status >= http.StatusInternalServerError {
		g.logger.ErrorContext(c.UserContext(), "request failed", "method", c.Method(), "path", c.Path(),
			"status", status, "trace_id", body.TraceID, "err", err)
	}
	c.Set(traceHeader, body.TraceID)
	return c.Status(status).JSON(body)
}

// traceHeader is the response header naming a request's trace.
const traceHeader = "X-Trace-Id"

// traceID is the trace id of the request's W3C traceparent header, or a
// new random one.
func traceID(c *fiber.Ctx) string {
	// traceparent: version-traceid-parentid-flags, the trace id 32 hex digits.
	if parts := strings.Split(c.Get("traceparent"), "-"); len(parts) == 4 && len(parts[1]) == 32 {
		if _, err := hex.DecodeString(parts[1]); err == nil && parts[1] != strings.Repeat("0", 32) {
			return parts[1]
		}
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
