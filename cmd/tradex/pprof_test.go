package main

import (
	"net"
	"net/http"
	"testing"

	"github.com/tradex-mesh/tradex/internal/rpcserver"
)

// TestServePprofNeedsTheInternalToken: --pprof-addr serves the runtime
// profiles on loopback, only to callers with the internal token.
func TestServePprofNeedsTheInternalToken(t *testing.T) {
	t.Parallel()
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testServeConfig(t)
	cfg.PprofAddr = ln.Addr().String()
	if err := ln.Close(); err != nil { // free for serve: a test port, not a race that matters
		t.Fatal(err)
	}
	startServe(t, cfg)
	url := "http://" + cfg.PprofAddr + "/debug/pprof/cmdline"
	get := func(c *http.Client) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		return res.StatusCode
	}
	if got := get(http.DefaultClient); got != http.StatusUnauthorized {
		t.Errorf("profiles without the token: %d, want 401", got)
	}
	if got := get(&http.Client{Transport: rpcserver.TokenTransport{Token: "wrong-token-0123456789"}}); got != http.StatusUnauthorized {
		t.Errorf("profiles with another token: %d, want 401", got)
	}
	if got := get(internalClient()); got != http.StatusOK {
		t.Errorf("profiles with the internal token: %d, want 200", got)
	}
}
