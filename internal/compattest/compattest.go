// Package compattest gates tests that run tools this project did not
// write (kcat, a Node schema-registry client): where a tool is missing, a
// developer's `go test ./...` skips them, and CI, which installs the tools
// and sets TRADEX_COMPAT_TESTS=require, fails instead.
package compattest

import (
	"os"
	"testing"
)

// Env is the variable that makes a missing tool a failure when it is
// "require".
const Env = "TRADEX_COMPAT_TESTS"

// Missing skips t because what is missing (with why), or fails it when
// Env requires the tools; install says how to get it.
func Missing(t testing.TB, what, install string, why error) {
	t.Helper()
	if os.Getenv(Env) == "require" { //nolint:forbidigo // CI's switch that turns this skip into a failure; no configuration reaches a test
		t.Fatalf("%s: %v (%s=require; %s)", what, why, Env, install)
	}
	t.Skipf("%s: %v (%s; CI runs this test)", what, why, install)
}
