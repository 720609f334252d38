package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/tradex-mesh/tradex/gateway"
)

func TestProbes(t *testing.T) {
	t.Parallel()
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("nats: RECONNECTING") }
	hung := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

	tests := []struct {
		name       string
		path       string
		ready      map[string]gateway.Check
		wantStatus int
		wantChecks map[string]string
	}{
		{name: "healthz ignores readiness", path: "/healthz", ready: map[string]gateway.Check{"nats": down}, wantStatus: 200},
		{name: "ready with no checks", path: "/readyz", wantStatus: 200, wantChecks: map[string]string{}},
		{name: "ready", path: "/readyz", ready: map[string]gateway.Check{"nats": ok, "kv": ok}, wantStatus: 200,
			wantChecks: map[string]string{"nats": "ok", "kv": "ok"}},
		{name: "one dependency down", path: "/readyz", ready: map[string]gateway.Check{"nats": down, "kv": ok}, wantStatus: 503,
			wantChecks: map[string]string{"nats": "nats: RECONNECTING", "kv": "ok"}},
		{name: "hung dependency times out", path: "/readyz", ready: map[string]gateway.Check{"nats": hung}, wantStatus: 503,
			wantChecks: map[string]string{"nats": context.DeadlineExceeded.Error()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gw, err := gateway.New(gateway.Default(), gateway.Deps{Ready: tt.ready})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := gw.App().Test(httptest.NewRequestWithContext(t.Context(), "GET", tt.path, nil), 10_000)
			if err != nil {
				t.Fatalf("GET %s: %v", tt.path, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			var body struct {
				Status string            `json:"status"`
				Checks map[string]string `json:"checks"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("decode body: %v", err)
			}
			if tt.wantChecks == nil {
				return
			}
			if len(body.Checks) != len(tt.wantChecks) {
				t.Errorf("checks = %v, want %v", body.Checks, tt.wantChecks)
			}
			for name, want := range tt.wantChecks {
				if body.Checks[name] != want {
					t.Errorf("check %s = %q, want %q", name, body.Checks[name], want)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := gateway.Default().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	bad := gateway.Default()
	bad.BodyLimit = 0
	if _, err := gateway.New(bad, gateway.Deps{}); err == nil {
		t.Fatal("New accepted a zero body limit")
	}
}
