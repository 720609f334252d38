package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tradex-mesh/tradex/gateway"
	authv1 "github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1"
)

// caller is one kind of credential the policy tests try.
type caller struct {
	name  string
	roles []string // none: anonymous
	// scopes, for a caller signing with an API key; nil for a token.
	scopes []string
	do     func(t *testing.T, method, url, body string) (status int, code, message string)
}

// policyRefusal tells a refusal of the policy from one of the service
// behind it (a 401 for a bad refresh token, a 403 for a service's own
// check): the policy's messages are its own.
var policyRefusal = regexp.MustCompile(`a credential is needed|may not make this call|lacks the \w+ scope|not open to anyone`)

// TestPolicyTable: every REST route and every Connect procedure, for every
// kind of caller — anonymous, trader, admin, service account (tokens), and
// a trader's read-only API key — is allowed or refused exactly as the
// gateway's one policy says. The cases are generated from Gateway.Policy.
func TestPolicyTable(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	trader := e.register(t, "trader@example.com")
	admin := e.admin(t, "admin@example.com")
	svc := e.register(t, "svc@example.com")
	if _, err := e.p.Core().Gateway().Auth.SetUserRoles(t.Context(), &authv1.SetUserRolesRequest{
		UserId: svc.userID, Roles: []authv1.Role{authv1.Role_ROLE_SERVICE}}); err != nil {
		t.Fatal(err)
	}
	svc = e.login(t, "svc@example.com")
	victim := e.register(t, "victim@example.com") // the target of admin calls on a user
	ro := call(t, "POST", e.base+"/v1/api-keys", trader.access, map[string]any{"name": "ro", "scopes": []string{"read"}}).ok(t, http.StatusCreated)
	roKey, roSign := ro.str("apiKey.apiKeyId"), hmacSigner(ro.str("secret"))

	withToken := func(tok string) func(t *testing.T, method, url, body string) (int, string, string) {
		return func(t *testing.T, method, url, body string) (int, string, string) {
			t.Helper()
			req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			return do(t, req, body)
		}
	}
	callers := []caller{
		{name: "anonymous", do: withToken("")},
		{name: "trader", roles: []string{"trader"}, do: withToken(trader.access)},
		{name: "admin", roles: []string{"admin"}, do: withToken(admin.access)},
		{name: "service", roles: []string{"service"}, do: withToken(svc.access)},
		{name: "read-only key", roles: []string{"trader"}, scopes: []string{"read"},
			do: func(t *testing.T, method, url, body string) (int, string, string) {
				t.Helper()
				r := signed(t, method, url, roKey, roSign, time.Now(), body)
				if r.status == http.StatusOK && strings.HasPrefix(url, e.base+"/tradex.") {
					return r.status, "", ""
				}
				return r.status, r.str("code"), r.str("message")
			}},
	}
	ids := map[string]string{"orderId": "o-none", "asset": "USDT", "symbol": "BTCUSDT", "keyId": "ak-none", "userId": victim.userID}
	checked := 0
	for _, rule := range e.gw.Policy() {
		for _, c := range callers {
			method, url, body := http.MethodPost, e.base+rule.Procedure, "{}"
			if rule.Procedure == "" {
				method, url = rule.Method, e.base+fillPath(rule.Path, ids)
				if method == http.MethodGet || method == http.MethodDelete {
					body = ""
				}
			}
			if isStream(rule.Procedure) {
				continue // server streams are covered by the Connect stream tests; their refusal is the same guard
			}
			status, code, msg := c.do(t, method, url, body)
			want := expectation(rule.Public, rule.Roles, rule.Scope, c)
			name := rule.Method + " " + rule.Path + rule.Procedure + " as " + c.name
			refused := (status == http.StatusUnauthorized || status == http.StatusForbidden) && policyRefusal.MatchString(msg)
			switch {
			case want == "allow" && refused:
				t.Errorf("%s: refused (%d %s %s); the policy allows it", name, status, code, msg)
			case want == "unauthenticated" && (status != http.StatusUnauthorized || code != "unauthenticated"):
				t.Errorf("%s: %d %s %s; want 401 unauthenticated", name, status, code, msg)
			case want == "denied" && (status != http.StatusForbidden || code != "permission_denied" || !refused):
				t.Errorf("%s: %d %s %s; want 403 permission_denied by the policy", name, status, code, msg)
			}
			checked++
		}
	}
	if checked < 5*40 {
		t.Errorf("only %d cases checked", checked)
	}
	// An unknown procedure is denied.
	status, code, _ := callers[2].do(t, http.MethodPost, e.base+"/tradex.wallet.v1.WalletService/Nope", "{}")
	if status != http.StatusNotFound && code != "permission_denied" && code != "unimplemented" {
		t.Errorf("an unknown procedure: %d %s", status, code)
	}
}

// expectation is what the policy says of a call by c: allow,
// unauthenticated or denied.
func expectation(public bool, roles []string, scope string, c caller) string {
	switch {
	case public:
		return "allow"
	case len(c.roles) == 0:
		return "unauthenticated"
	case !slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(c.roles, r) }):
		return "denied"
	case c.scopes != nil && !slices.Contains(c.scopes, scope):
		return "denied"
	}
	return "allow"
}

// fillPath puts ids into a Fiber path's parameters.
func fillPath(path string, ids map[string]string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if name, ok := strings.CutPrefix(p, ":"); ok {
			parts[i] = ids[name]
		}
	}
	return strings.Join(parts, "/")
}

func isStream(procedure string) bool {
	return strings.Contains(procedure, "/Stream") || strings.Contains(procedure, "/Watch")
}

// do sends req (a REST request, or a Connect unary call in JSON) and reads
// the error code and message of a refusal.
func do(t *testing.T, req *http.Request, body string) (int, string, string) {
	t.Helper()
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct{ Code, Message string }
	_ = json.Unmarshal(raw, &e)
	return resp.StatusCode, e.Code, e.Message
}

// TestPolicyEntries: explicit cases of the table, so that a change of the
// policy itself shows in review.
func TestPolicyEntries(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	rules := map[string]gateway.Rule{}
	for _, r := range e.gw.Policy() {
		rules[r.Method+" "+r.Path+r.Procedure] = r
	}
	for key, want := range map[string]string{
		"POST /v1/admin/deposits":                          "admin transfer",
		"POST /v1/admin/withdrawals":                       "admin transfer",
		"POST /v1/admin/instruments":                       "admin trade",
		"POST /v1/admin/users/:userId/disable":             "admin trade",
		"GET /v1/admin/users":                              "admin read",
		"POST /v1/orders":                                  "trader,admin trade",
		"GET /v1/balances":                                 "trader,admin read",
		"POST /v1/api-keys":                                "trader,admin trade",
		"POST /v1/auth/login":                              "public",
		"GET /v1/instruments/:symbol/book":                 "public",
		" /tradex.auth.v1.AuthService/VerifyApiKey":        "service,admin trade",
		" /tradex.wallet.v1.WalletService/Deposit":         "admin transfer",
		" /tradex.wallet.v1.WalletService/HoldBalance":     "service,admin trade",
		" /tradex.wallet.v1.WalletService/ListHolds":       "admin read",
		" /tradex.order.v1.OrderService/PlaceOrder":        "trader,admin trade",
		" /tradex.marketdata.v1.MarketDataService/GetBook": "public",
	} {
		r, ok := rules[key]
		got := "public"
		if !r.Public {
			got = strings.Join(r.Roles, ",") + " " + r.Scope
		}
		if !ok || got != want {
			t.Errorf("%s: %q (listed %v); want %q", key, got, ok, want)
		}
	}
}

// TestCrossAccountIsRefused: with real credentials, a trader naming
// another's account is refused on every REST route and Connect procedure
// that acts for an account (the cases generated from the policy), and a
// private WebSocket channel carries only the caller's own.
func TestCrossAccountIsRefused(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	alice, bob := e.register(t, "alice2@example.com"), e.register(t, "bob2@example.com")
	ids := map[string]string{"orderId": "o-none", "asset": "USDT", "symbol": "BTCUSDT", "keyId": "ak-none", "userId": bob.userID}
	checked := 0
	for _, rule := range e.gw.Policy() {
		if rule.Account == "" || isStream(rule.Procedure) {
			continue
		}
		var req *http.Request
		var err error
		switch {
		case rule.Procedure != "":
			body := fmt.Sprintf(`{%q:%q}`, rule.Account, bob.userID)
			req, err = http.NewRequestWithContext(t.Context(), http.MethodPost, e.base+rule.Procedure, strings.NewReader(body))
		case rule.Method == http.MethodGet || rule.Method == http.MethodDelete:
			url := e.base + fillPath(rule.Path, ids) + "?" + rule.Account + "=" + bob.userID
			req, err = http.NewRequestWithContext(t.Context(), rule.Method, url, nil)
		default:
			body := fmt.Sprintf(`{%q:%q}`, rule.Account, bob.userID)
			req, err = http.NewRequestWithContext(t.Context(), rule.Method, e.base+fillPath(rule.Path, ids), strings.NewReader(body))
		}
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+alice.access)
		status, code, msg := do(t, req, "x")
		if status != http.StatusForbidden || code != "permission_denied" || !strings.Contains(msg, "may not") {
			t.Errorf("%s %s%s naming another's account: %d %s %s; want 403", rule.Method, rule.Path, rule.Procedure, status, code, msg)
		}
		checked++
	}
	if checked < 12 {
		t.Errorf("only %d account-bearing calls checked", checked)
	}
	wsCrossAccount(t, e, alice, bob)
}
