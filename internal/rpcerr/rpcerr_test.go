package rpcerr_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/internal/rpcerr"
	"github.com/tradex-mesh/tradex/streams"
)

var (
	errNotFound = errors.New("thing not found")
	errNotReady = errors.New("not ready")
)

func TestToConnect(t *testing.T) {
	t.Parallel()
	m := rpcerr.Map{Service: "things", Unavailable: []error{errNotReady},
		Rules: []rpcerr.Rule{{Code: connect.CodeNotFound, Errors: []error{errNotFound}}}}
	for _, tc := range []struct {
		name    string
		err     error
		code    connect.Code
		message string // what the caller reads; "" = the error's own text
		logged  string
	}{
		{"rule", fmt.Errorf("get x: %w", errNotFound), connect.CodeNotFound, "", ""},
		{"not ready", fmt.Errorf("get x: %w", errNotReady), connect.CodeUnavailable, "things unavailable, retry later", "WARN"},
		{"broker away", fmt.Errorf("read: %w", streams.ErrUnavailable), connect.CodeUnavailable, "things unavailable, retry later", "WARN"},
		{"callee unavailable", connect.NewError(connect.CodeUnavailable, errors.New("wallet down")), connect.CodeUnavailable, "things unavailable, retry later", "WARN"},
		{"cancelled", fmt.Errorf("x: %w", context.Canceled), connect.CodeCanceled, "", ""},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), connect.CodeDeadlineExceeded, "", ""},
		{"unknown", errors.New("disk on fire at /secret/path"), connect.CodeInternal, "internal error", "ERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			got := m.ToConnect(t.Context(), slog.New(slog.NewTextHandler(&logs, nil)), tc.err)
			if connect.CodeOf(got) != tc.code {
				t.Fatalf("code %s, want %s", connect.CodeOf(got), tc.code)
			}
			want := tc.message
			if want == "" {
				want = tc.err.Error()
			}
			var ce *connect.Error
			if !errors.As(got, &ce) || ce.Message() != want {
				t.Fatalf("message %q, want %q", ce.Message(), want)
			}
			if tc.logged != "" && !strings.Contains(logs.String(), "level="+tc.logged) {
				t.Fatalf("log %q, want a %s line", logs.String(), tc.logged)
			}
			if tc.logged == "" && logs.Len() > 0 {
				t.Fatalf("logged %q for a caller's error", logs.String())
			}
		})
	}
	if m.ToConnect(t.Context(), slog.New(slog.DiscardHandler), nil) != nil {
		t.Fatal("nil mapped to an error")
	}
}
