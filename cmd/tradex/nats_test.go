package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tradex-mesh/tradex/internal/platform"
)

func TestNATSCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"nats", "creds", "--data-dir", dir}, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("nats creds: %v (%s)", err, errOut.String())
	}
	creds, err := platform.LoadCredentials(filepath.Join(dir, natsCredentialsFile))
	if err != nil {
		t.Fatalf("the credentials file was not created: %v", err)
	}
	if want := "user: tradex-reader\npassword: " + creds[platform.UserReader] + "\n"; !strings.HasPrefix(out.String(), want) {
		t.Fatalf("nats creds printed %q, want it to start with %q", out.String(), want)
	}
	if fi, err := os.Stat(filepath.Join(dir, natsCredentialsFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode: %v, %v", fi, err)
	}

	out.Reset()
	if err := run(t.Context(), []string{"nats", "config", "--data-dir", dir}, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("nats config: %v", err)
	}
	for _, want := range []string{"authorization {", `user: "tradex-wallet"`, `"wallet.balance.changed.v1.>"`, `user: "tradex-admin"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("nats config lacks %s", want)
		}
	}
	if strings.Contains(out.String(), creds[platform.UserReader]) {
		t.Error("nats config prints a password in clear")
	}

	if err := run(t.Context(), []string{"nats", "creds", "--data-dir", dir, "--user", "mallory"}, func(string) string { return "" }, &out, &errOut); err == nil || !strings.Contains(err.Error(), "--user") {
		t.Errorf("an unknown user: %v", err)
	}
	if err := run(t.Context(), []string{"nats"}, func(string) string { return "" }, &out, &errOut); !errors.Is(err, errUsage) {
		t.Errorf("tradex nats without a command: %v", err)
	}
}
