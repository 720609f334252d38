package gateway_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/fasthttp/websocket"

	"github.com/tradex-mesh/tradex/gateway"
	"github.com/tradex-mesh/tradex/gateway/auth"
	"github.com/tradex-mesh/tradex/gateway/wsfeed"
	authv1 "github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1/authv1connect"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/services/auth/signature"
)

// authEnv is a platform behind a gateway that checks the credentials the
// auth service issues, as `tradex serve` does.
type authEnv struct {
	p    *platformtest.Platform
	gw   *gateway.Gateway
	base string
}

const goodPassword = "correct horse battery"

func newAuthEnv(t *testing.T) *authEnv {
	t.Helper()
	return newAuthEnvAt(t, time.Now)
}

// newAuthEnvAt is newAuthEnv whose gateway checks tokens at now's time.
func newAuthEnvAt(t *testing.T, now func() time.Time) *authEnv {
	t.Helper()
	p := platformtest.New(t)
	icfg := auth.DefaultIssued()
	icfg.Now = now
	v := auth.NewIssued(icfg, p.Core().AuthClient())
	ctx, cancel := context.WithCancel(t.Context())
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		_ = p.Core().FollowUsers(ctx, v.UserChanged)
	}()
	t.Cleanup(func() { cancel(); <-followed })
	feed := newFeed(t, wsfeed.Default(), wsfeed.Deps{MarketData: p.MarketData, Orders: p.Orders, Wallet: p.Wallet, Verifier: v})
	cfg := gateway.Default()
	cfg.RateLimit = gateway.RateLimit{}
	gw, err := gateway.New(cfg, gateway.Deps{Services: p.Core().Gateway(), Verifier: v, Connect: p.ConnectServices(), WebSocket: feed.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	return &authEnv{p: p, gw: gw, base: serve(t, gw)}
}

// session is a signed-in user.
type session struct {
	userID, access, refresh string
}

func (e *authEnv) register(t *testing.T, email string) session {
	t.Helper()
	call(t, "POST", e.base+"/v1/auth/register", "", map[string]any{"email": email, "password": goodPassword, "displayName": email}).
		ok(t, http.StatusCreated)
	return e.login(t, email)
}

func (e *authEnv) login(t *testing.T, email string) session {
	t.Helper()
	r := call(t, "POST", e.base+"/v1/auth/login", "", map[string]any{"email": email, "password": goodPassword}).ok(t, http.StatusOK)
	return session{userID: r.str("user.userId"), access: r.str("tokens.accessToken"), refresh: r.str("tokens.refreshToken")}
}

// admin registers a user and makes them an admin (as the bootstrap admin
// would), returning their new session (the roles are in the token).
func (e *authEnv) admin(t *testing.T, email string) session {
	t.Helper()
	s := e.register(t, email)
	if _, err := e.p.Core().Gateway().Auth.SetUserRoles(t.Context(), &authv1.SetUserRolesRequest{
		UserId: s.userID, Roles: []authv1.Role{authv1.Role_ROLE_ADMIN}}); err != nil {
		t.Fatal(err)
	}
	return e.login(t, email)
}

// signed sends a REST request signed with an API key (HMAC secret, or an
// Ed25519 private key); at is its timestamp.
func signed(t *testing.T, method, url, keyID string, sign func([]byte) string, at time.Time, body string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	ts := at.UnixMilli()
	req.Header.Set(signature.HeaderKey, keyID)
	req.Header.Set(signature.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(signature.HeaderSignature, sign(signature.Message(ts, method, req.URL.RequestURI(), []byte(body))))
	return send(t, req)
}

func hmacSigner(secret string) func([]byte) string {
	return func(m []byte) string { return signature.SignHMAC([]byte(secret), m) }
}

// TestSignInTradeAndSignOut: register, log in, fund with an admin token,
// trade with a token and with a signed API key, refresh, reuse, log out —
// all through the gateway.
func TestSignInTradeAndSignOut(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	alice, bob := e.register(t, "alice@example.com"), e.register(t, "bob@example.com")
	root := e.admin(t, "root@example.com")
	for _, d := range []struct{ acct, asset, amount string }{{alice.userID, "USDT", "100000"}, {bob.userID, "BTC", "1"}} {
		call(t, "POST", e.base+"/v1/admin/deposits", root.access, map[string]any{
			"transferId": "d-" + d.acct, "accountId": d.acct, "asset": d.asset, "amount": d.amount}).ok(t, http.StatusOK)
	}
	// A trader's token cannot deposit.
	call(t, "POST", e.base+"/v1/admin/deposits", alice.access, map[string]any{
		"transferId": "self", "accountId": alice.userID, "asset": "USDT", "amount": "1"}).ok(t, http.StatusForbidden)

	// Alice buys with her token.
	call(t, "POST", e.base+"/v1/orders", alice.access, map[string]any{
		"instrumentId": "BTCUSDT", "side": "buy", "type": "limit", "quantity": "0.5", "price": "50000"}).ok(t, http.StatusCreated)

	// Bob sells with a signed API key.
	k := call(t, "POST", e.base+"/v1/api-keys", bob.access, map[string]any{"name": "bot", "scopes": []string{"read", "trade"}}).ok(t, http.StatusCreated)
	keyID, secret := k.str("apiKey.apiKeyId"), k.str("secret")
	if keyID == "" || len(secret) != 64 {
		t.Fatalf("created key %s", k.raw)
	}
	sell := `{"instrumentId":"BTCUSDT","side":"sell","type":"limit","quantity":"0.5","price":"50000"}`
	signed(t, "POST", e.base+"/v1/orders", keyID, hmacSigner(secret), time.Now(), sell).ok(t, http.StatusCreated)
	e.p.WaitSettled(t)
	if got := call(t, "GET", e.base+"/v1/balances/BTC", alice.access, nil).ok(t, http.StatusOK).str("balance.available"); !strings.HasPrefix(got, "0.5") {
		t.Errorf("alice's BTC after the trade: %s", got)
	}
	if got := signed(t, "GET", e.base+"/v1/balances/USDT", keyID, hmacSigner(secret), time.Now(), "").ok(t, http.StatusOK).str("balance.available"); !strings.HasPrefix(got, "25000") {
		t.Errorf("bob's USDT after the trade, read with his key: %s", got)
	}

	// Refresh rotates; the rotated token again revokes the family.
	r := call(t, "POST", e.base+"/v1/auth/refresh", "", map[string]any{"refreshToken": alice.refresh}).ok(t, http.StatusOK)
	next := r.str("tokens.refreshToken")
	call(t, "GET", e.base+"/v1/orders", r.str("tokens.accessToken"), nil).ok(t, http.StatusOK)
	call(t, "POST", e.base+"/v1/auth/refresh", "", map[string]any{"refreshToken": alice.refresh}).ok(t, http.StatusUnauthorized)
	call(t, "POST", e.base+"/v1/auth/refresh", "", map[string]any{"refreshToken": next}).ok(t, http.StatusUnauthorized)

	// Logout ends the session; twice is fine.
	s := e.login(t, "alice@example.com")
	for range 2 {
		call(t, "POST", e.base+"/v1/auth/logout", "", map[string]any{"refreshToken": s.refresh}).ok(t, http.StatusOK)
	}
	call(t, "POST", e.base+"/v1/auth/refresh", "", map[string]any{"refreshToken": s.refresh}).ok(t, http.StatusUnauthorized)

	// The profile came by the event path.
	polltest.True(t, "alice's profile", func() bool {
		return call(t, "GET", e.base+"/v1/users/me", alice.access, nil).str("profile.email") == "alice@example.com"
	})
	call(t, "PATCH", e.base+"/v1/users/me", alice.access, map[string]any{"displayName": "Alice"}).ok(t, http.StatusOK)
}

// forge returns raw with its payload replaced (the signature kept).
func forge(t *testing.T, raw string, change func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	change(claims)
	b, _ := json.Marshal(claims)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}

// TestBadTokensAreRefused: tampered, unsigned, otherwise-signed, foreign
// and disabled users' tokens get 401 on REST and Unauthenticated on
// Connect; a key rotation keeps old tokens valid.
func TestBadTokensAreRefused(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	carol := e.register(t, "carol@example.com")
	header := strings.Split(carol.access, ".")[0]
	claims := strings.Split(carol.access, ".")[1]
	hs256 := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	for name, tok := range map[string]string{
		"tampered subject": forge(t, carol.access, func(c map[string]any) { c["sub"] = "someone-else" }),
		"admin role added": forge(t, carol.access, func(c map[string]any) { c["roles"] = []string{"admin"} }),
		"expired":          forge(t, carol.access, func(c map[string]any) { c["exp"] = 1 }),
		"alg none":         none + "." + claims + ".",
		"HS256":            hs256 + "." + claims + "." + strings.Split(carol.access, ".")[2],
		"unknown key id":   base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"nope"}`)) + "." + claims + "." + strings.Split(carol.access, ".")[2],
		"garbage":          "x" + header,
	} {
		if r := call(t, "GET", e.base+"/v1/orders", tok, nil); r.status != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	wallet := walletv1connect.NewWalletServiceClient(bearer(forge(t, carol.access, func(c map[string]any) { c["sub"] = "x" })), e.base)
	_, err := wallet.ListBalances(t.Context(), &walletv1.ListBalancesRequest{})
	wantCode(t, "a tampered token over Connect", err, connect.CodeUnauthenticated)
	if _, err := walletv1connect.NewWalletServiceClient(bearer(carol.access), e.base).ListBalances(t.Context(), &walletv1.ListBalancesRequest{}); err != nil {
		t.Errorf("carol's token over Connect: %v", err)
	}

	// A rotation: the old token still works, and so does a new one.
	if _, err := e.p.Core().RotateAuthKey(t.Context()); err != nil {
		t.Fatal(err)
	}
	call(t, "GET", e.base+"/v1/orders", carol.access, nil).ok(t, http.StatusOK)
	call(t, "GET", e.base+"/v1/orders", e.login(t, "carol@example.com").access, nil).ok(t, http.StatusOK)

	// Disabled: her token stops working as soon as the event arrives.
	root := e.admin(t, "root@example.com")
	call(t, "POST", e.base+"/v1/admin/users/"+carol.userID+"/disable", root.access, map[string]any{"reason": "test"}).ok(t, http.StatusOK)
	polltest.True(t, "a disabled user's token to be refused", func() bool {
		return call(t, "GET", e.base+"/v1/orders", carol.access, nil).status == http.StatusUnauthorized
	})
}

// TestExpiredTokensAreRefused: a token the auth service signed is refused
// by the gateway once it has expired (past the leeway), on REST and
// Connect; until then it works.
func TestExpiredTokensAreRefused(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	skew := time.Duration(0)
	e := newAuthEnvAt(t, func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(skew) })
	gil := e.register(t, "gil@example.com")
	call(t, "GET", e.base+"/v1/orders", gil.access, nil).ok(t, http.StatusOK)
	mu.Lock()
	skew = 15*time.Minute + 31*time.Second // the token's life and the leeway
	mu.Unlock()
	if r := call(t, "GET", e.base+"/v1/orders", gil.access, nil); r.status != http.StatusUnauthorized || !strings.Contains(r.str("message"), "expired") {
		t.Errorf("an expired token: %d %s", r.status, r.raw)
	}
	_, err := walletv1connect.NewWalletServiceClient(bearer(gil.access), e.base).ListBalances(t.Context(), &walletv1.ListBalancesRequest{})
	wantCode(t, "an expired token over Connect", err, connect.CodeUnauthenticated)
}

// TestConnectWebSignIn: a browser app on Connect-Web (here connect-go
// over HTTP/1.1, in the Connect protocol and gRPC-Web) registers, signs
// in, refreshes and calls with its token, through the gateway.
func TestConnectWebSignIn(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	for i, opts := range [][]connect.ClientOption{nil, {connect.WithGRPCWeb()}} {
		email := fmt.Sprintf("web%d@example.com", i)
		a := authv1connect.NewAuthServiceClient(http.DefaultClient, e.base, opts...)
		if _, err := a.Register(t.Context(), &authv1.RegisterRequest{Email: email, Password: goodPassword}); err != nil {
			t.Fatal(err)
		}
		_, err := a.Login(t.Context(), &authv1.LoginRequest{Email: email, Password: "wrong horse battery"})
		wantCode(t, "a wrong password", err, connect.CodeUnauthenticated)
		in, err := a.Login(t.Context(), &authv1.LoginRequest{Email: email, Password: goodPassword})
		if err != nil {
			t.Fatal(err)
		}
		again, err := a.Refresh(t.Context(), &authv1.RefreshRequest{RefreshToken: in.GetTokens().GetRefreshToken()})
		if err != nil {
			t.Fatal(err)
		}
		w := walletv1connect.NewWalletServiceClient(bearer(again.GetTokens().GetAccessToken()), e.base, opts...)
		if _, err := w.ListBalances(t.Context(), &walletv1.ListBalancesRequest{}); err != nil {
			t.Errorf("a refreshed token over Connect: %v", err)
		}
		_, err = w.ListBalances(t.Context(), &walletv1.ListBalancesRequest{AccountId: "someone-else"})
		wantCode(t, "another account over Connect", err, connect.CodePermissionDenied)
	}
}

// TestSignedRequestsAreChecked: a signed request works; one outside its
// window, with a changed body, from a revoked key or from an address the
// key does not allow does not; Ed25519 keys work with the server holding
// only the public key.
func TestSignedRequestsAreChecked(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	dave := e.register(t, "dave@example.com")
	k := call(t, "POST", e.base+"/v1/api-keys", dave.access, map[string]any{"name": "k"}).ok(t, http.StatusCreated)
	keyID, sign := k.str("apiKey.apiKeyId"), hmacSigner(k.str("secret"))
	signed(t, "GET", e.base+"/v1/orders", keyID, sign, time.Now(), "").ok(t, http.StatusOK)
	signed(t, "GET", e.base+"/v1/orders", keyID, sign, time.Now().Add(-10*time.Second), "").ok(t, http.StatusUnauthorized)
	signed(t, "GET", e.base+"/v1/orders", keyID, sign, time.Now().Add(10*time.Second), "").ok(t, http.StatusUnauthorized)

	// A changed body: the signature covers it.
	body := `{"instrumentId":"BTCUSDT","side":"buy","type":"limit","quantity":"0.001","price":"50000"}`
	changedBody := func(m []byte) string { return sign(bytes.Replace(m, []byte("0.001"), []byte("0.002"), 1)) }
	signed(t, "POST", e.base+"/v1/orders", keyID, changedBody, time.Now(), body).ok(t, http.StatusUnauthorized)

	// A read-only key cannot trade.
	ro := call(t, "POST", e.base+"/v1/api-keys", dave.access, map[string]any{"name": "ro", "scopes": []string{"read"}}).ok(t, http.StatusCreated)
	r := signed(t, "POST", e.base+"/v1/orders", ro.str("apiKey.apiKeyId"), hmacSigner(ro.str("secret")), time.Now(), body)
	if r.status != http.StatusForbidden || !strings.Contains(r.str("message"), "trade") {
		t.Errorf("a read-only key placing an order: %d %s", r.status, r.raw)
	}

	// An allow-list the test's address is not on.
	far := call(t, "POST", e.base+"/v1/api-keys", dave.access, map[string]any{"name": "far", "allowedIps": []string{"203.0.113.0/24"}}).ok(t, http.StatusCreated)
	signed(t, "GET", e.base+"/v1/orders", far.str("apiKey.apiKeyId"), hmacSigner(far.str("secret")), time.Now(), "").ok(t, http.StatusUnauthorized)

	// Ed25519.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	ed := call(t, "POST", e.base+"/v1/api-keys", dave.access, map[string]any{"name": "ed", "publicKey": base64.StdEncoding.EncodeToString(pub)}).ok(t, http.StatusCreated)
	if ed.str("secret") != "" {
		t.Errorf("an Ed25519 key came with a secret: %s", ed.raw)
	}
	edSign := func(m []byte) string { return signature.SignEd25519(priv, m) }
	signed(t, "GET", e.base+"/v1/orders", ed.str("apiKey.apiKeyId"), edSign, time.Now(), "").ok(t, http.StatusOK)

	// Revoked: refused at once.
	call(t, "DELETE", e.base+"/v1/api-keys/"+keyID, dave.access, nil).ok(t, http.StatusOK)
	signed(t, "GET", e.base+"/v1/orders", keyID, sign, time.Now(), "").ok(t, http.StatusUnauthorized)
	// Another user cannot revoke dave's key.
	erin := e.register(t, "erin@example.com")
	call(t, "DELETE", e.base+"/v1/api-keys/"+ed.str("apiKey.apiKeyId"), erin.access, nil).ok(t, http.StatusNotFound)
	signed(t, "GET", e.base+"/v1/orders", ed.str("apiKey.apiKeyId"), edSign, time.Now(), "").ok(t, http.StatusOK)
}

// wsConn is a test's WebSocket client of the gateway.
type wsConn struct {
	t  *testing.T
	ws *websocket.Conn
}

func (e *authEnv) dialWS(t *testing.T) *wsConn {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(e.base, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = ws.Close() })
	return &wsConn{t: t, ws: ws}
}

func (c *wsConn) send(frame string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatal(err)
	}
}

// until reads frames until one of op (heartbeats come meanwhile).
func (c *wsConn) until(op string) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		_ = c.ws.SetReadDeadline(deadline)
		var f map[string]any
		if err := c.ws.ReadJSON(&f); err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if f["op"] == op {
			return f
		}
	}
	c.t.Fatalf("no %s frame within 20 s", op)
	return nil
}

// wsCrossAccount: alice, signed in on the WebSocket with her token, gets
// the orders channel of her own account only, whatever the frame names;
// bob's order never reaches her.
func wsCrossAccount(t *testing.T, e *authEnv, alice, bob session) {
	t.Helper()
	c := e.dialWS(t)
	c.send(`{"op":"auth","token":"` + bob.access[:len(bob.access)-4] + `xxxx"}`) // a tampered token
	if f := c.until("error"); f["code"] != "unauthenticated" {
		t.Fatalf("a tampered token: %v", f)
	}
	c.send(`{"op":"auth","token":"` + alice.access + `"}`)
	if f := c.until("authenticated"); f["account"] != alice.userID {
		t.Fatalf("auth ack %v", f)
	}
	c.send(`{"op":"subscribe","channels":[{"name":"orders","symbols":["` + bob.userID + `"]}]}`)
	c.until("subscribed")
	root := e.admin(t, "root-ws@example.com")
	for _, acct := range []string{alice.userID, bob.userID} {
		call(t, "POST", e.base+"/v1/admin/deposits", root.access, map[string]any{
			"transferId": "ws-" + acct, "accountId": acct, "asset": "USDT", "amount": "1000"}).ok(t, http.StatusOK)
	}
	order := map[string]any{"instrumentId": "BTCUSDT", "side": "buy", "type": "limit", "quantity": "0.001", "price": "50000"}
	call(t, "POST", e.base+"/v1/orders", bob.access, order).ok(t, http.StatusCreated)
	mine := call(t, "POST", e.base+"/v1/orders", alice.access, order).ok(t, http.StatusCreated).str("order.orderId")
	for {
		f := c.until("orders")
		orders, _ := f["data"].([]any) // a snapshot: her working orders
		if o, ok := f["data"].(map[string]any); ok {
			orders = []any{o}
		}
		for _, o := range orders {
			o, _ := o.(map[string]any)
			if o["accountId"] != alice.userID {
				t.Fatalf("alice's orders channel carried %v", f)
			}
			if o["orderId"] == mine {
				return
			}
		}
	}
}

// TestWebSocketAPIKeyLogin: the WebSocket's auth frame may be signed with
// an API key (timestamp + "GET" + "/ws"); a stale or wrongly signed one is
// refused.
func TestWebSocketAPIKeyLogin(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	fay := e.register(t, "fay@example.com")
	k := call(t, "POST", e.base+"/v1/api-keys", fay.access, map[string]any{"name": "ws"}).ok(t, http.StatusCreated)
	keyID, secret := k.str("apiKey.apiKeyId"), k.str("secret")
	frame := func(at time.Time, secret string) string {
		ts := at.UnixMilli()
		sig := signature.SignHMAC([]byte(secret), signature.Message(ts, "GET", "/ws", nil))
		return fmt.Sprintf(`{"op":"auth","apiKey":%q,"timestamp":%d,"signature":%q}`, keyID, ts, sig)
	}
	c := e.dialWS(t)
	for name, f := range map[string]string{
		"stale":        frame(time.Now().Add(-time.Minute), secret),
		"wrong secret": frame(time.Now(), strings.Repeat("0", 64)),
	} {
		c.send(f)
		if got := c.until("error"); got["code"] != "unauthenticated" {
			t.Errorf("%s: %v", name, got)
		}
	}
	c.send(frame(time.Now(), secret))
	if f := c.until("authenticated"); f["account"] != fay.userID {
		t.Fatalf("auth ack %v", f)
	}
	c.send(`{"op":"subscribe","channels":[{"name":"balances"}]}`)
	c.until("subscribed")
}
