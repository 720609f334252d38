package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// post sends a JSON body with an optional bearer token and decodes the
// answer.
func post(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

// TestServeRealAuthByDefault: serve checks the auth service's credentials
// unless told --auth dev: an account id as a bearer token is refused; the
// first start writes a one-time bootstrap admin (0600) who can sign in and
// fund a user who registered, and that user trades with their own token.
func TestServeRealAuthByDefault(t *testing.T) {
	t.Parallel()
	if defaultServeConfig().Auth != "jwt" {
		t.Fatalf("default --auth %q; want jwt", defaultServeConfig().Auth)
	}
	cfg := testServeConfig(t)
	cfg.Auth = "jwt"
	ep, _ := startServe(t, cfg)
	base := "http://" + ep.HTTP

	if status, _ := post(t, http.MethodGet, base+"/v1/balances", "alice", nil); status != http.StatusUnauthorized {
		t.Errorf("an account id as a token: %d; want 401", status)
	}
	// Readiness waits for the bootstrap admin, so a script that waits for
	// /readyz finds its credential file.
	if status, body := getJSON(t, base+"/readyz"); status != http.StatusOK || body["checks"].(map[string]any)["bootstrap"] != "ok" {
		t.Errorf("/readyz = %d %v, want 200 with bootstrap ok", status, body)
	}
	path := filepath.Join(cfg.DataDir, bootstrapAdminFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v; want 0600", path, fi.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cred bootstrapCredential
	if err := json.Unmarshal(raw, &cred); err != nil || cred.Password == "" {
		t.Fatalf("bootstrap credential %s: %v", raw, err)
	}
	login := func(email, pw string) string {
		t.Helper()
		status, m := post(t, http.MethodPost, base+"/v1/auth/login", "", map[string]string{"email": email, "password": pw})
		tokens, _ := m["tokens"].(map[string]any)
		tok, _ := tokens["accessToken"].(string)
		if status != http.StatusOK || tok == "" {
			t.Fatalf("login %s: %d %v", email, status, m)
		}
		return tok
	}
	admin := login(cred.Email, cred.Password)
	status, m := post(t, http.MethodPost, base+"/v1/auth/register", "", map[string]string{"email": "zoe@example.com", "password": "correct horse battery"})
	user, _ := m["user"].(map[string]any)
	zoe, _ := user["userId"].(string)
	if status != http.StatusCreated || zoe == "" {
		t.Fatalf("register: %d %v", status, m)
	}
	if status, m := post(t, http.MethodPost, base+"/v1/admin/deposits", admin, map[string]string{
		"transferId": "t1", "accountId": zoe, "asset": "USDT", "amount": "1000"}); status != http.StatusOK {
		t.Fatalf("the bootstrap admin's deposit: %d %v", status, m)
	}
	token := login("zoe@example.com", "correct horse battery")
	if status, m := post(t, http.MethodPost, base+"/v1/orders", token, map[string]string{
		"instrumentId": "BTCUSDT", "side": "buy", "type": "limit", "quantity": "0.001", "price": "50000"}); status != http.StatusCreated {
		t.Fatalf("zoe's order: %d %v", status, m)
	}
	if status, _ := post(t, http.MethodPost, base+"/v1/admin/deposits", token, map[string]string{
		"transferId": "t2", "accountId": zoe, "asset": "USDT", "amount": "1"}); status != http.StatusForbidden {
		t.Errorf("a trader's deposit: %d; want 403", status)
	}

	// An API key, and a request signed by `tradex sign`, as the README does.
	status, m = post(t, http.MethodPost, base+"/v1/api-keys", token, map[string]string{"name": "cli"})
	key, _ := m["apiKey"].(map[string]any)
	keyID, _ := key["apiKeyId"].(string)
	secret, _ := m["secret"].(string)
	if status != http.StatusCreated || keyID == "" || secret == "" {
		t.Fatalf("create key: %d %v", status, m)
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"sign", "--key-id", keyID, "/v1/balances?includeZero=true"},
		func(k string) string { return map[string]string{"TRADEX_API_SECRET": secret}[k] }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/v1/balances?includeZero=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		arg, ok := strings.CutPrefix(line, "-H ")
		name, value, found := strings.Cut(arg, ":")
		if !ok || !found {
			t.Fatalf("tradex sign printed %q", line)
		}
		req.Header.Set(name, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a request signed by tradex sign: %d", resp.StatusCode)
	}
}

// TestAuthCommands: `tradex admin create-user` makes an admin with a
// one-time password who can sign in and deposit, and `tradex auth
// rotate-key` adds a signing key while the old tokens keep working.
func TestAuthCommands(t *testing.T) {
	t.Parallel()
	cfg := testServeConfig(t)
	cfg.Auth, cfg.NATSListen = "jwt", "127.0.0.1:0"
	ep, _ := startServe(t, cfg)
	base := "http://" + ep.HTTP
	flags := []string{"--nats", ep.NATS, "--nats-credentials", filepath.Join(cfg.DataDir, natsCredentialsFile),
		"--auth-master-key", filepath.Join(cfg.DataDir, authMasterKeyFile)}
	noenv := func(string) string { return "" }

	var out bytes.Buffer
	if err := run(t.Context(), append([]string{"admin", "create-user", "--email", "ops@example.com"}, flags...), noenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var created struct{ UserID, Email, Password string }
	if err := json.Unmarshal(out.Bytes(), &created); err != nil || created.Password == "" || created.UserID == "" {
		t.Fatalf("create-user printed %s (%v)", out.String(), err)
	}
	status, m := post(t, http.MethodPost, base+"/v1/auth/login", "", map[string]string{"email": "ops@example.com", "password": created.Password})
	tokens, _ := m["tokens"].(map[string]any)
	before, _ := tokens["accessToken"].(string)
	if status != http.StatusOK || before == "" {
		t.Fatalf("login: %d %v", status, m)
	}
	if status, m := post(t, http.MethodPost, base+"/v1/admin/deposits", before, map[string]string{
		"transferId": "ops-1", "accountId": created.UserID, "asset": "USDT", "amount": "1"}); status != http.StatusOK {
		t.Fatalf("the new admin's deposit: %d %v", status, m)
	}

	out.Reset()
	if err := run(t.Context(), append([]string{"auth", "rotate-key"}, flags...), noenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "new signing key ") {
		t.Errorf("rotate-key printed %q", out.String())
	}
	if status, _ := post(t, http.MethodGet, base+"/v1/balances", before, nil); status != http.StatusOK {
		t.Errorf("a token of the retired key: %d", status)
	}
}
