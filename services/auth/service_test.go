package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	gwauth "github.com/tradex-mesh/tradex/gateway/auth"
	authv1 "github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1/authv1connect"
	"github.com/tradex-mesh/tradex/services/auth"
	"github.com/tradex-mesh/tradex/services/auth/password"
	"github.com/tradex-mesh/tradex/services/auth/signature"
	"github.com/tradex-mesh/tradex/services/auth/token"
	"github.com/tradex-mesh/tradex/streams"
)

const waitTimeout = 20 * time.Second

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is an embedded JetStream with the catalog provisioned and one auth
// service over it, served on real HTTP.
type env struct {
	js     *embeddedtest.Server
	mesh   *streams.Client
	svc    *auth.Service
	client authv1connect.AuthServiceClient
	clock  *clock
	cfg    auth.Config
}

var masterKey = []byte("0123456789abcdef0123456789abcdef")

func testConfig() auth.Config {
	cfg := auth.Default()
	cfg.MasterKey = masterKey
	cfg.Password = password.Params{Memory: 64, Time: 1, Threads: 1} // fast; password_test checks the real costs
	return cfg
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := embeddedtest.New(t)
	if err := streams.EnsureStreams(t.Context(), s.JetStream(), streams.DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
	e := &env{js: s, mesh: streams.NewClient(s.JetStream(), streams.DefaultCatalog()),
		clock: &clock{now: time.Now().UTC().Truncate(time.Second)}, cfg: testConfig()}
	e.svc = e.start(t)
	_, h := e.svc.Handler()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.client = authv1connect.NewAuthServiceClient(srv.Client(), srv.URL)
	return e
}

// start runs another service instance on the same bucket until the test
// ends, and waits until it is ready.
func (e *env) start(t *testing.T) *auth.Service {
	t.Helper()
	svc, err := auth.New(e.cfg, auth.Deps{Streams: e.mesh, Publisher: e.mesh.Publisher(streams.WithSource("tradex/auth")), Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-svc.Ready():
	case err := <-done:
		t.Fatalf("Run ended: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("auth not ready")
	}
	return svc
}

func (e *env) register(t *testing.T, email string) *authv1.User {
	t.Helper()
	res, err := e.client.Register(t.Context(), &authv1.RegisterRequest{Email: email, Password: "correct horse battery", DisplayName: "Test"})
	if err != nil {
		t.Fatalf("register %s: %v", email, err)
	}
	return res.GetUser()
}

func (e *env) login(t *testing.T, email string) *authv1.LoginResponse {
	t.Helper()
	res, err := e.client.Login(t.Context(), &authv1.LoginRequest{Email: email, Password: "correct horse battery"})
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	return res
}

// verify checks an access token against the service's JWKS.
func (e *env) verify(t *testing.T, raw string) (token.Claims, error) {
	t.Helper()
	res, err := e.client.GetSigningKeys(t.Context(), &authv1.GetSigningKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := token.ParseJWKS(res.GetJwks())
	if err != nil {
		t.Fatal(err)
	}
	return token.Verify(token.Config{Issuer: e.cfg.Issuer, Audience: e.cfg.Audience, Leeway: e.cfg.Leeway}, keys, raw, e.clock.Now())
}

func codeOf(t *testing.T, what string, err error, want connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); err == nil || got != want {
		t.Fatalf("%s: %v; want %v", what, err, want)
	}
}

func TestRegisterAndLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.register(t, "Alice@Example.com")
	if u.GetEmail() != "alice@example.com" || len(u.GetRoles()) != 1 || u.GetRoles()[0] != authv1.Role_ROLE_TRADER ||
		u.GetStatus() != authv1.UserStatus_USER_STATUS_ACTIVE || !strings.HasPrefix(u.GetUserId(), "u") {
		t.Fatalf("registered %v", u)
	}
	// The event path: UserRegistered on auth.user.v1, keyed by the user.
	last, err := e.mesh.Last(t.Context(), streams.TopicUserEvent, u.GetUserId())
	if err != nil {
		t.Fatal(err)
	}
	if id := last.Header.Get("Nats-Msg-Id"); id != auth.EventID(u.GetUserId(), 1) {
		t.Errorf("event id %q", id)
	}

	_, err = e.client.Register(t.Context(), &authv1.RegisterRequest{Email: "alice@example.com", Password: "another good password"})
	codeOf(t, "the same email again", err, connect.CodeAlreadyExists)
	for _, bad := range []struct{ email, password, field string }{
		{"bob@example.com", "short", "password"},
		{"bob@example.com", "Password1234", "password"},
		{"not an email", "correct horse battery", "email"},
		{"bob@localhost", "correct horse battery", "email"},
	} {
		_, err := e.client.Register(t.Context(), &authv1.RegisterRequest{Email: bad.email, Password: bad.password})
		codeOf(t, bad.email+"/"+bad.password, err, connect.CodeInvalidArgument)
		if !strings.Contains(err.Error(), bad.field) {
			t.Errorf("%v does not name %s", err, bad.field)
		}
	}

	res := e.login(t, "ALICE@example.com")
	claims, err := e.verify(t, res.GetTokens().GetAccessToken())
	if err != nil {
		t.Fatal(err)
	}
	if claims.Subject != u.GetUserId() || len(claims.Roles) != 1 || claims.Roles[0] != auth.RoleTrader || claims.Session == "" {
		t.Errorf("claims %+v", claims)
	}
	if exp := res.GetTokens().GetAccessTokenExpiresAt().AsTime(); !exp.Equal(e.clock.Now().Add(e.cfg.AccessTTL)) {
		t.Errorf("access token expires at %v", exp)
	}

	// Wrong password and unknown email fail alike.
	_, wrong := e.client.Login(t.Context(), &authv1.LoginRequest{Email: "alice@example.com", Password: "wrong horse battery"})
	_, unknown := e.client.Login(t.Context(), &authv1.LoginRequest{Email: "nobody@example.com", Password: "correct horse battery"})
	codeOf(t, "wrong password", wrong, connect.CodeUnauthenticated)
	codeOf(t, "unknown email", unknown, connect.CodeUnauthenticated)
	if wrong.Error() != unknown.Error() {
		t.Errorf("wrong password %q, unknown email %q: they must read the same", wrong, unknown)
	}
}

// Failed logins throttle the address that made them, for that email, and
// never the email's owner at another address.
func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(t, "carol@example.com")
	for i := range e.cfg.LoginFailures {
		if _, _, err := e.svc.Login(t.Context(), "203.0.113.9", "carol@example.com", "guess number one"); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if _, _, err := e.svc.Login(t.Context(), "203.0.113.9", "carol@example.com", "correct horse battery"); !errors.Is(err, auth.ErrThrottled) {
		t.Fatalf("after %d failures, the right password from the guessing address: %v; want throttled", e.cfg.LoginFailures, err)
	}
	if _, _, err := e.svc.Login(t.Context(), "198.51.100.1", "carol@example.com", "correct horse battery"); err != nil {
		t.Fatalf("the owner from another address: %v", err)
	}
	e.clock.advance(e.cfg.LoginWindow)
	if _, _, err := e.svc.Login(t.Context(), "203.0.113.9", "carol@example.com", "correct horse battery"); err != nil {
		t.Fatalf("after the window: %v", err)
	}

	// Guessing spread over many addresses: once the email has failed 10x
	// the limit, an address that failed for it is refused even on its
	// first failure's heels, while the owner's address still signs in.
	e.register(t, "dan@example.com")
	for i := range 10 * e.cfg.LoginFailures {
		ip := fmt.Sprintf("198.18.%d.%d", i/200, i%200)
		if _, _, err := e.svc.Login(t.Context(), ip, "dan@example.com", "guess number one"); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("spread guess %d: %v", i, err)
		}
	}
	if _, _, err := e.svc.Login(t.Context(), "198.18.0.0", "dan@example.com", "correct horse battery"); !errors.Is(err, auth.ErrThrottled) {
		t.Errorf("an address that failed once, the email under attack: %v; want throttled", err)
	}
	if _, _, err := e.svc.Login(t.Context(), "192.0.2.55", "dan@example.com", "correct horse battery"); err != nil {
		t.Errorf("the owner's address while the email is under attack: %v", err)
	}
}

func TestRefreshRotatesAndReuseRevokesTheFamily(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(t, "dave@example.com")
	first := e.login(t, "dave@example.com").GetTokens()
	second, err := e.client.Refresh(t.Context(), &authv1.RefreshRequest{RefreshToken: first.GetRefreshToken()})
	if err != nil {
		t.Fatal(err)
	}
	if second.GetTokens().GetRefreshToken() == first.GetRefreshToken() {
		t.Fatal("refresh did not rotate the token")
	}
	c1, _ := e.verify(t, first.GetAccessToken())
	c2, err := e.verify(t, second.GetTokens().GetAccessToken())
	if err != nil || c2.Session != c1.Session {
		t.Fatalf("refreshed access token: %+v, %v; want the same session %s", c2, err, c1.Session)
	}
	// The rotated token presented again: refused, and the family with it.
	_, err = e.client.Refresh(t.Context(), &authv1.RefreshRequest{RefreshToken: first.GetRefreshToken()})
	codeOf(t, "a rotated refresh token", err, connect.CodeUnauthenticated)
	_, err = e.client.Refresh(t.Context(), &authv1.RefreshRequest{RefreshToken: second.GetTokens().GetRefreshToken()})
	codeOf(t, "the current token after the family was revoked", err, connect.CodeUnauthenticated)

	// Another login is its own family.
	third := e.login(t, "dave@example.com").GetTokens()
	if _, err := e.client.Refresh(t.Context(), &authv1.RefreshRequest{RefreshToken: third.GetRefreshToken()}); err != nil {
		t.Fatalf("a fresh login: %v", err)
	}
	for _, bad := range []string{"", "garbage", "rt_nosecret", "rt_s.x", "rt_a.b.c"} {
		_, err := e.client.Refresh(t.Context(), &authv1.RefreshRequest{RefreshToken: bad})
		codeOf(t, "refresh token "+bad, err, connect.CodeUnauthenticated)
	}
	// A login expires after RefreshTTL without a refresh.
	fourth := e.login(t, "dave@example.com").GetTokens()
	e.clock.advance(e.cfg.RefreshTTL)
	_, err = e.client.Refresh(t.Context(), &authv1.RefreshRequest{RefreshToken: fourth.GetRefreshToken()})
	codeOf(t, "an expired login", err, connect.CodeUnauthenticated)
}

func TestLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(t, "erin@example.com")
	a, b := e.login(t, "erin@example.com").GetTokens(), e.login(t, "erin@example.com").GetTokens()
	for range 2 { // twice: no error
		if _, err := e.client.Logout(t.Context(), &authv1.LogoutRequest{RefreshToken: a.GetRefreshToken()}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.client.Refresh(t.Context(), &authv1.RefreshRequest{RefreshToken: a.GetRefreshToken()})
	codeOf(t, "after logout", err, connect.CodeUnauthenticated)
	if _, err := e.client.Refresh(t.Context(), &authv1.RefreshRequest{RefreshToken: b.GetRefreshToken()}); err != nil {
		t.Fatalf("the other session: %v", err)
	}
	c := e.login(t, "erin@example.com").GetTokens()
	if _, err := e.client.Logout(t.Context(), &authv1.LogoutRequest{RefreshToken: c.GetRefreshToken(), AllSessions: true}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.Refresh(t.Context(), &authv1.RefreshRequest{RefreshToken: b.GetRefreshToken()})
	codeOf(t, "another session after logout of all", err, connect.CodeUnauthenticated)
}

// A rotation signs new tokens with the new key and keeps the old key
// published until the tokens it signed have expired.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(t, "frank@example.com")
	before := e.login(t, "frank@example.com").GetTokens().GetAccessToken()
	newKey, err := e.svc.RotateKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	after := e.login(t, "frank@example.com").GetTokens().GetAccessToken()
	if _, err := e.verify(t, before); err != nil {
		t.Errorf("a token of the retired key: %v", err)
	}
	if _, err := e.verify(t, after); err != nil {
		t.Errorf("a token of the new key: %v", err)
	}
	if !strings.Contains(string(mustJWKS(t, e)), newKey) {
		t.Errorf("the JWKS lacks the new key %s", newKey)
	}
	// Once the old tokens have expired, the next rotation deletes the old key.
	e.clock.advance(e.cfg.AccessTTL + e.cfg.Leeway + time.Second)
	if _, err := e.svc.RotateKey(t.Context()); err != nil {
		t.Fatal(err)
	}
	keys, err := token.ParseJWKS(mustJWKS(t, e))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[newKey] == nil {
		t.Errorf("after the second rotation the JWKS holds %d keys; want the last two", len(keys))
	}
}

func mustJWKS(t *testing.T, e *env) []byte {
	t.Helper()
	res, err := e.client.GetSigningKeys(t.Context(), &authv1.GetSigningKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return res.GetJwks()
}

// asUser is ctx acting for a signed-in trader, as the gateway sets it.
func asUser(ctx context.Context, id string) context.Context {
	return gwauth.NewContext(ctx, gwauth.Principal{Subject: id, AccountID: id})
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.register(t, "grace@example.com")
	other := e.register(t, "heidi@example.com")
	h := e.svc.InProcess()
	ctx := asUser(t.Context(), u.GetUserId())

	created, err := h.CreateApiKey(ctx, &authv1.CreateApiKeyRequest{Name: "bot", AllowedIps: []string{"192.0.2.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	k, secret := created.GetApiKey(), created.GetSecret()
	if k.GetUserId() != u.GetUserId() || len(secret) != 64 || k.GetKind() != authv1.ApiKeyKind_API_KEY_KIND_HMAC || len(k.GetScopes()) != 2 {
		t.Fatalf("created %v (secret %d chars)", k, len(secret))
	}
	msg := signature.Message(e.clock.Now().UnixMilli(), "POST", "/v1/orders", []byte(`{"side":"buy"}`))
	sig := signature.SignHMAC([]byte(secret), msg)
	verify := func(keyID string, msg []byte, sig, ip string) error {
		_, err := h.VerifyApiKey(t.Context(), &authv1.VerifyApiKeyRequest{ApiKeyId: keyID, Message: msg, Signature: sig, ClientIp: ip})
		return err
	}
	if err := verify(k.GetApiKeyId(), msg, sig, "192.0.2.7"); err != nil {
		t.Fatalf("a signed request: %v", err)
	}
	changed := signature.Message(e.clock.Now().UnixMilli(), "POST", "/v1/orders", []byte(`{"side":"sell"}`))
	for name, err := range map[string]error{
		"changed body":       verify(k.GetApiKeyId(), changed, sig, "192.0.2.7"),
		"address not listed": verify(k.GetApiKeyId(), msg, sig, "198.51.100.7"),
		"unknown key":        verify("ak0000000000000000", msg, sig, "192.0.2.7"),
	} {
		codeOf(t, name, err, connect.CodeUnauthenticated)
	}
	// Only a trusted caller (the gateway on the internal port) verifies.
	_, err = h.VerifyApiKey(ctx, &authv1.VerifyApiKeyRequest{ApiKeyId: k.GetApiKeyId(), Message: msg, Signature: sig, ClientIp: "192.0.2.7"})
	codeOf(t, "VerifyApiKey by a user", err, connect.CodePermissionDenied)

	// Another user's keys: neither listed, nor revoked, nor created.
	_, err = h.ListApiKeys(ctx, &authv1.ListApiKeysRequest{UserId: other.GetUserId()})
	codeOf(t, "listing another's keys", err, connect.CodePermissionDenied)
	_, err = h.RevokeApiKey(asUser(t.Context(), other.GetUserId()), &authv1.RevokeApiKeyRequest{ApiKeyId: k.GetApiKeyId()})
	codeOf(t, "revoking another's key", err, connect.CodeNotFound)
	_, err = h.CreateApiKey(ctx, &authv1.CreateApiKeyRequest{UserId: other.GetUserId()})
	codeOf(t, "a key for another", err, connect.CodePermissionDenied)
	_, err = h.CreateApiKey(ctx, &authv1.CreateApiKeyRequest{Scopes: []authv1.ApiKeyScope{authv1.ApiKeyScope_API_KEY_SCOPE_TRANSFER}})
	codeOf(t, "a transfer key for a trader", err, connect.CodePermissionDenied)

	// Revoked: refused.
	if _, err := h.RevokeApiKey(ctx, &authv1.RevokeApiKeyRequest{ApiKeyId: k.GetApiKeyId()}); err != nil {
		t.Fatal(err)
	}
	codeOf(t, "a revoked key", verify(k.GetApiKeyId(), msg, sig, "192.0.2.7"), connect.CodeUnauthenticated)
	list, err := h.ListApiKeys(ctx, &authv1.ListApiKeysRequest{IncludeRevoked: true})
	if err != nil || len(list.GetApiKeys()) != 1 || list.GetApiKeys()[0].GetRevokedAt() == nil {
		t.Fatalf("listed %v, %v", list, err)
	}

	// An Ed25519 key: the service holds only the public half.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	ed, err := h.CreateApiKey(ctx, &authv1.CreateApiKeyRequest{PublicKey: base64.StdEncoding.EncodeToString(pub), ExpiresAt: nil})
	if err != nil || ed.GetSecret() != "" || ed.GetApiKey().GetKind() != authv1.ApiKeyKind_API_KEY_KIND_ED25519 {
		t.Fatalf("ed25519 key: %v, %v", ed, err)
	}
	if err := verify(ed.GetApiKey().GetApiKeyId(), msg, signature.SignEd25519(priv, msg), "203.0.113.1"); err != nil {
		t.Errorf("an Ed25519-signed request: %v", err)
	}

	// A disabled user's keys stop working.
	if _, err := h.DisableUser(t.Context(), &authv1.DisableUserRequest{UserId: u.GetUserId(), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	codeOf(t, "a disabled user's key", verify(ed.GetApiKey().GetApiKeyId(), msg, signature.SignEd25519(priv, msg), "203.0.113.1"), connect.CodeUnauthenticated)
}

func TestAdminCalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.register(t, "ivan@example.com")
	h := e.svc.InProcess()
	_, err := h.SetUserRoles(asUser(t.Context(), u.GetUserId()), &authv1.SetUserRolesRequest{UserId: u.GetUserId(), Roles: []authv1.Role{authv1.Role_ROLE_ADMIN}})
	codeOf(t, "a trader making themself admin", err, connect.CodePermissionDenied)
	_, err = h.ListUsers(asUser(t.Context(), u.GetUserId()), &authv1.ListUsersRequest{})
	codeOf(t, "a trader listing users", err, connect.CodePermissionDenied)

	admin := gwauth.NewContext(t.Context(), gwauth.Principal{Subject: "root", Admin: true})
	res, err := h.SetUserRoles(admin, &authv1.SetUserRolesRequest{UserId: u.GetUserId(), Roles: []authv1.Role{authv1.Role_ROLE_ADMIN, authv1.Role_ROLE_TRADER}})
	if err != nil || len(res.GetUser().GetRoles()) != 2 {
		t.Fatalf("SetUserRoles: %v, %v", res, err)
	}
	// Each change is one event, in order: registered, updated, disabled.
	if _, err := h.DisableUser(admin, &authv1.DisableUserRequest{UserId: u.GetUserId(), Reason: "left"}); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	err = e.mesh.Follow(t.Context(), streams.Follow{Topic: streams.TopicUserEvent, Key: u.GetUserId(), ToEnd: true}, func(_ context.Context, m streams.Stored) error {
		kinds = append(kinds, m.Header.Get("Nats-Msg-Id"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{auth.EventID(u.GetUserId(), 1), auth.EventID(u.GetUserId(), 2), auth.EventID(u.GetUserId(), 3)}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Errorf("events %v; want %v", kinds, want)
	}
	_, err = e.client.Login(t.Context(), &authv1.LoginRequest{Email: "ivan@example.com", Password: "correct horse battery"})
	codeOf(t, "a disabled user's login", err, connect.CodeUnauthenticated)
	list, err := h.ListUsers(admin, &authv1.ListUsersRequest{})
	if err != nil || len(list.GetUsers()) != 1 || list.GetUsers()[0].GetStatus() != authv1.UserStatus_USER_STATUS_DISABLED {
		t.Errorf("ListUsers: %v, %v", list, err)
	}
}

// State lives in the bucket: another instance signs in the same users
// with the same keys.
func TestAnotherInstanceSharesTheState(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(t, "judy@example.com")
	tok := e.login(t, "judy@example.com").GetTokens()
	other := e.start(t)
	if _, _, err := other.Login(t.Context(), "10.0.0.1", "judy@example.com", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Refresh(t.Context(), tok.GetRefreshToken()); err != nil {
		t.Fatalf("a session started on the first instance: %v", err)
	}
	jwks, err := other.JWKS(t.Context())
	if err != nil || !strings.Contains(string(jwks), "OKP") {
		t.Fatalf("JWKS %s, %v", jwks, err)
	}
}

// Logins do not pile up: past MaxSessionsPerUser a new login ends the
// oldest, and ended sessions leave the bucket at the user's next login.
func TestSessionsAreBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(t, "lou@example.com")
	var first, last string
	for i := range auth.MaxSessionsPerUser + 5 {
		tok := e.login(t, "lou@example.com").GetTokens().GetRefreshToken()
		if i == 0 {
			first = tok
		}
		last = tok
		e.clock.advance(time.Second) // logins in order of creation
	}
	_, err := e.client.Refresh(t.Context(), &authv1.RefreshRequest{RefreshToken: first})
	codeOf(t, "the oldest login past the bound", err, connect.CodeUnauthenticated)
	if _, err := e.client.Refresh(t.Context(), &authv1.RefreshRequest{RefreshToken: last}); err != nil {
		t.Fatalf("the newest login: %v", err)
	}
	kv, err := e.mesh.KV(t.Context(), streams.StoreAuth)
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := kv.Latest(t.Context(), "session.>")
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) > auth.MaxSessionsPerUser {
		t.Errorf("%d sessions kept; want at most %d", len(sessions), auth.MaxSessionsPerUser)
	}
}
