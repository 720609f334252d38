package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	"github.com/gofiber/fiber/v2"
)

func TestHTTPStatusOfEveryCode(t *testing.T) {
	t.Parallel()
	want := map[connect.Code]int{
		connect.CodeCanceled: 499, connect.CodeUnknown: 500, connect.CodeInvalidArgument: 400,
		connect.CodeDeadlineExceeded: 504, connect.CodeNotFound: 404, connect.CodeAlreadyExists: 409,
		connect.CodePermissionDenied: 403, connect.CodeResourceExhausted: 429, connect.CodeFailedPrecondition: 400,
		connect.CodeAborted: 409, connect.CodeOutOfRange: 400, connect.CodeUnimplemented: 501,
		connect.CodeInternal: 500, connect.CodeUnavailable: 503, connect.CodeDataLoss: 500,
		connect.CodeUnauthenticated: 401, connect.Code(99): 500,
	}
	for code := connect.Code(1); code <= connect.CodeUnauthenticated; code++ {
		if _, ok := want[code]; !ok {
			t.Errorf("code %v has no expected status in this test", code)
		}
	}
	for code, status := range want {
		if got := httpStatus(code); got != status {
			t.Errorf("%v: %d, want %d", code, got, status)
		}
	}
}

func TestErrorBody(t *testing.T) {
	t.Parallel()
	gw, err := New(Default(), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	errs := map[string]error{
		"/invalid":  connect.NewError(connect.CodeInvalidArgument, errors.New("quantity: must be a positive multiple of the lot size 0.00001")),
		"/funds":    connect.NewError(connect.CodeFailedPrecondition, errors.New("insufficient funds")),
		"/internal": errors.New("kv: connection refused"), // not a Connect error: its text must not leak
	}
	for path, e := range errs {
		gw.app.Get(path, func(c *fiber.Ctx) error { return gw.writeError(c, e) })
	}
	cases := []struct {
		path, traceparent    string
		status               int
		code, message, trace string
	}{
		{"/invalid", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 400, "invalid_argument",
			"quantity: must be a positive multiple of the lot size 0.00001", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"/funds", "", 400, "failed_precondition", "insufficient funds", ""},
		{"/internal", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", 500, "internal", "internal error", ""},
	}
	for _, c := range cases {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, c.path, nil)
		if c.traceparent != "" {
			req.Header.Set("traceparent", c.traceparent)
		}
		res, err := gw.app.Test(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		var body errorBody
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("%s: body %s: %v", c.path, raw, err)
		}
		if res.StatusCode != c.status || body.Code != c.code || body.Message != c.message || body.Details == nil {
			t.Errorf("%s: %d %s; want %d %s %q", c.path, res.StatusCode, raw, c.status, c.code, c.message)
		}
		if len(body.TraceID) != 32 || res.Header.Get("X-Trace-Id") != body.TraceID || (c.trace != "" && body.TraceID != c.trace) {
			t.Errorf("%s: trace id %q (header %q), want %q", c.path, body.TraceID, res.Header.Get("X-Trace-Id"), c.trace)
		}
	}
}
