package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBenchAgainstServe runs tradex bench against a platform served here:
// it registers and funds its traders with the bootstrap admin, sends
// orders and cancels over REST, waits for settlement, and reports
// accepted and settled orders with funds conserved, next to the raw
// baseline it measured first.
func TestBenchAgainstServe(t *testing.T) {
	t.Parallel()
	cfg := testServeConfig(t)
	cfg.Auth = "jwt"
	cfg.RateLimit = 0
	ep, _ := startServe(t, cfg)
	var out, errs bytes.Buffer
	err := run(t.Context(), []string{"bench", "--url", "http://" + ep.HTTP,
		"--bootstrap", filepath.Join(cfg.DataDir, bootstrapAdminFile), "--raw-dir", t.TempDir(), "--raw-sync", "periodic",
		"--traders", "4", "--connections", "4", "--duration", "1s", "--settle-timeout", "1m", "--json",
		"--pid", strconv.Itoa(os.Getpid())}, // the platform runs in this process
		func(string) string { return "" }, &out, &errs)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, errs.String())
	}
	var r benchReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, out.String())
	}
	l := r.Load
	if l.Accepted == 0 || l.Cancelled == 0 || len(l.Errors) != 0 || !l.Conserved {
		t.Errorf("load: %d accepted, %d cancelled, errors %v %v, conserved %v", l.Accepted, l.Cancelled, l.Errors, l.ErrorSamples, l.Conserved)
	}
	if l.SettledPerSecond <= 0 || l.SettledPerSecond > l.AcceptedPerSecond || l.P50 <= 0 || l.P99 < l.P50 {
		t.Errorf("load figures: settled %.0f/s, accepted %.0f/s, p50 %.2f ms, p99 %.2f ms", l.SettledPerSecond, l.AcceptedPerSecond, l.P50, l.P99)
	}
	if l.CPUPerOrder <= 0 || l.ClientCPUPerOrder <= 0 {
		t.Errorf("CPU per settled order: platform (--pid) %v µs, load generator %v µs", l.CPUPerOrder, l.ClientCPUPerOrder)
	}
	if r.Raw == nil || r.Raw.Messages == 0 || r.SettledOverRaw <= 0 || r.Raw.CPUPerMessage <= 0 {
		t.Errorf("raw baseline: %+v, settled/raw %.3f", r.Raw, r.SettledOverRaw)
	}
	if !strings.Contains(errs.String(), "orders") {
		t.Errorf("no progress line on stderr:\n%s", errs.String())
	}
}
