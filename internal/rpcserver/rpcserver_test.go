package rpcserver_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tradex-mesh/tradex/gateway/auth"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/internal/rpcserver"
	"github.com/tradex-mesh/tradex/internal/tlsconfig"
	"github.com/tradex-mesh/tradex/internal/tlsconfig/tlstest"
)

// startServer serves a real generated service on loopback and returns the
// base URL and the server.
func startServer(t *testing.T, checker grpchealth.Checker, opts rpcserver.Options) (string, *rpcserver.Server) {
	t.Helper()
	path, handler := walletv1connect.NewWalletServiceHandler(walletv1connect.UnimplementedWalletServiceHandler{})
	srv := rpcserver.New(nil, checker, opts, rpcserver.Service{Name: walletv1connect.WalletServiceName, Path: path, Handler: handler})
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve returned %v after shutdown, want nil", err)
		}
	})
	if opts.TLS != nil {
		return "https://" + ln.Addr().String(), srv
	}
	return "http://" + ln.Addr().String(), srv
}

// h2c is an HTTP/2 client without TLS, as gRPC tooling uses against the port.
func h2c() *http.Client {
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: protocols}}
}

func TestGRPCOverH2C(t *testing.T) {
	t.Parallel()
	url, _ := startServer(t, nil, rpcserver.Options{})
	client := walletv1connect.NewWalletServiceClient(h2c(), url, connect.WithGRPC())
	_, err := client.GetBalance(t.Context(), &walletv1.GetBalanceRequest{AccountId: "a", Asset: "USDT"})
	if connect.CodeOf(err) != connect.CodeUnimplemented {
		t.Fatalf("GetBalance over gRPC/h2c: err = %v, want the handler's Unimplemented", err)
	}
}

func TestConnectOverHTTP1(t *testing.T) {
	t.Parallel()
	url, _ := startServer(t, nil, rpcserver.Options{})
	client := walletv1connect.NewWalletServiceClient(http.DefaultClient, url)
	_, err := client.GetBalance(t.Context(), &walletv1.GetBalanceRequest{AccountId: "a", Asset: "USDT"})
	var cerr *connect.Error
	if !errors.As(err, &cerr) || cerr.Code() != connect.CodeUnimplemented {
		t.Fatalf("GetBalance over Connect/HTTP1.1: err = %v, want Unimplemented", err)
	}
}

func TestReflectionListsServices(t *testing.T) {
	t.Parallel()
	url, _ := startServer(t, nil, rpcserver.Options{})
	stream := grpcreflect.NewClient(h2c(), url, connect.WithGRPC()).NewStream(t.Context())
	defer stream.Close()
	names, err := stream.ListServices()
	if err != nil {
		t.Fatalf("list services: %v", err)
	}
	for _, want := range []protoreflect.FullName{walletv1connect.WalletServiceName, grpchealth.HealthV1ServiceName} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
	files, err := stream.FileContainingSymbol(walletv1connect.WalletServiceName)
	if err != nil || len(files) == 0 {
		t.Fatalf("descriptor of %s: %v (%d files)", walletv1connect.WalletServiceName, err, len(files))
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	checker := grpchealth.NewStaticChecker(walletv1connect.WalletServiceName)
	url, _ := startServer(t, checker, rpcserver.Options{})
	health := grpchealth.NewClient(h2c(), url, connect.WithGRPC())
	check := func(service string) grpchealth.Status {
		t.Helper()
		res, err := health.Check(t.Context(), &grpchealth.CheckRequest{Service: service})
		if err != nil {
			t.Fatalf("health check %q: %v", service, err)
		}
		return res.Status
	}
	if got := check(""); got != grpchealth.StatusServing {
		t.Errorf("server health = %v, want SERVING", got)
	}
	if got := check(walletv1connect.WalletServiceName); got != grpchealth.StatusServing {
		t.Errorf("wallet health = %v, want SERVING", got)
	}
	checker.SetStatus(walletv1connect.WalletServiceName, grpchealth.StatusNotServing)
	if got := check(walletv1connect.WalletServiceName); got != grpchealth.StatusNotServing {
		t.Errorf("wallet health after the checker said NOT_SERVING = %v", got)
	}
}

// The internal port refuses calls without the service credential (not
// health and reflection), bodies over the limit, and bodies that stall.
func TestGuard(t *testing.T) {
	t.Parallel()
	url, _ := startServer(t, nil, rpcserver.Options{Token: "service-secret-0123456789", MaxBodyBytes: 1024, BodyTimeout: 200 * time.Millisecond})
	withToken := &http.Client{Transport: rpcserver.TokenTransport{Token: "service-secret-0123456789"}}
	deposit := func(c *http.Client, memo string) error {
		_, err := walletv1connect.NewWalletServiceClient(c, url).Deposit(t.Context(),
			&walletv1.DepositRequest{TransferId: "t", AccountId: "a", Asset: "USDT", Amount: "1", Memo: memo})
		return err
	}
	if err := deposit(http.DefaultClient, ""); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("Deposit without a credential: %v, want Unauthenticated", err)
	}
	wrong := &http.Client{Transport: rpcserver.TokenTransport{Token: "guess"}}
	if err := deposit(wrong, ""); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("Deposit with a wrong credential: %v, want Unauthenticated", err)
	}
	if err := deposit(withToken, ""); connect.CodeOf(err) != connect.CodeUnimplemented {
		t.Errorf("Deposit with the credential: %v, want the handler's Unimplemented", err)
	}
	res, err := grpchealth.NewClient(h2c(), url, connect.WithGRPC()).Check(t.Context(), &grpchealth.CheckRequest{})
	if err != nil || res.Status != grpchealth.StatusServing {
		t.Errorf("health without a credential: %v, %v", res, err)
	}
	if err := deposit(withToken, strings.Repeat("x", 2048)); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Errorf("a 2 KiB body over a 1 KiB limit: %v, want ResourceExhausted", err)
	}

	// A body that stalls after its first bytes is cut off at BodyTimeout.
	body, stall := io.Pipe()
	defer stall.Close()
	go func() { _, _ = stall.Write([]byte(`{"transferId":`)) }() // and nothing more
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+walletv1connect.WalletServiceDepositProcedure, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := withToken.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("a stalled body was served")
		}
	}
	if ctx.Err() != nil {
		t.Fatal("a stalled body held the request until the client gave up")
	}
}

// h2TLS is an HTTP/2-only client over TLS with cfg (gRPC's transport).
func h2TLS(cfg *tls.Config) *http.Client {
	protocols := new(http.Protocols)
	protocols.SetHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: protocols, TLSClientConfig: cfg}}
}

// Over mutual TLS, a client certificate from the configured CA is the
// service credential (no token); no certificate, or one from another CA,
// gets no call through. Over TLS without client CAs, a certificate is not
// a credential: the token still is.
func TestTLSCredentials(t *testing.T) {
	t.Parallel()
	const token = "service-secret-0123456789"
	ca, other := tlstest.NewCA(t, "internal"), tlstest.NewCA(t, "other")
	server, client, stranger := ca.Server(t).Cert, ca.Client(t, "svc").Cert, other.Client(t, "svc").Cert
	mtls, _ := startServer(t, nil, rpcserver.Options{Token: token, TLS: tlsconfig.Server(server, ca.Pool())})
	plain, _ := startServer(t, nil, rpcserver.Options{Token: token, TLS: tlsconfig.Server(server, nil)})
	tests := []struct {
		name   string
		url    string
		client *http.Client
		want   connect.Code // Unimplemented: the call reached the handler; 0: refused before any call
	}{
		{"mtls client certificate no token", mtls, h2TLS(tlsconfig.Client(ca.Pool(), &client)), connect.CodeUnimplemented},
		{"mtls no certificate with token", mtls, &http.Client{Transport: rpcserver.TokenTransport{Token: token,
			Base: &http.Transport{TLSClientConfig: tlsconfig.Client(ca.Pool(), nil)}}}, 0},
		{"mtls certificate from another CA", mtls, h2TLS(tlsconfig.Client(ca.Pool(), &stranger)), 0},
		{"mtls server not trusted", mtls, h2TLS(tlsconfig.Client(other.Pool(), &client)), 0},
		{"tls token", plain, &http.Client{Transport: rpcserver.TokenTransport{Token: token,
			Base: &http.Transport{TLSClientConfig: tlsconfig.Client(ca.Pool(), nil), ForceAttemptHTTP2: true}}}, connect.CodeUnimplemented},
		{"tls certificate is no credential", plain, h2TLS(tlsconfig.Client(ca.Pool(), &client)), connect.CodeUnauthenticated},
		{"tls plaintext client", strings.Replace(plain, "https://", "http://", 1), &http.Client{Transport: rpcserver.TokenTransport{Token: token}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := walletv1connect.NewWalletServiceClient(tt.client, tt.url, connect.WithGRPC()).Deposit(t.Context(),
				&walletv1.DepositRequest{TransferId: "t", AccountId: "a", Asset: "USDT", Amount: "1"})
			switch code := connect.CodeOf(err); {
			case tt.want == 0 && (code == connect.CodeUnimplemented || code == connect.CodeUnauthenticated):
				t.Fatalf("Deposit: %v, want the connection refused", err)
			case tt.want != 0 && code != tt.want:
				t.Fatalf("Deposit: %v, want %v", err, tt.want)
			}
		})
	}
	health, err := grpchealth.NewClient(h2TLS(tlsconfig.Client(ca.Pool(), &client)), mtls, connect.WithGRPC()).Check(t.Context(), &grpchealth.CheckRequest{})
	if err != nil || health.Status != grpchealth.StatusServing {
		t.Errorf("health over mutual TLS: %v, %v", health, err)
	}
}

// whoAmI is a wallet whose GetBalance answers with the account of the
// principal in its context ("" without one).
type whoAmI struct {
	walletv1connect.UnimplementedWalletServiceHandler
}

func (whoAmI) GetBalance(ctx context.Context, _ *walletv1.GetBalanceRequest) (*walletv1.GetBalanceResponse, error) {
	p, _ := auth.FromContext(ctx)
	return &walletv1.GetBalanceResponse{Balance: &walletv1.Balance{AccountId: p.AccountID}}, nil
}

// A credentialed caller (another process's gateway) forwards the principal
// it relays a call for, and the service sees it; the header of a caller
// without the credential never reaches a service.
func TestForwardedPrincipal(t *testing.T) {
	t.Parallel()
	path, handler := walletv1connect.NewWalletServiceHandler(whoAmI{})
	srv := rpcserver.New(nil, nil, rpcserver.Options{Token: "tok"}, rpcserver.Service{Name: walletv1connect.WalletServiceName, Path: path, Handler: handler})
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	base := "http://" + ln.Addr().String()
	forwarding := connect.WithInterceptors(auth.ForwardPrincipal())
	ctx := auth.NewContext(t.Context(), auth.Principal{Subject: "alice", AccountID: "alice", Roles: []string{auth.RoleTrader}})

	trusted := walletv1connect.NewWalletServiceClient(&http.Client{Transport: rpcserver.TokenTransport{Token: "tok"}}, base, forwarding)
	res, err := trusted.GetBalance(ctx, &walletv1.GetBalanceRequest{})
	if err != nil || res.GetBalance().GetAccountId() != "alice" {
		t.Fatalf("forwarded principal: %v, %v; want alice", res, err)
	}
	if res, err := trusted.GetBalance(t.Context(), &walletv1.GetBalanceRequest{}); err != nil || res.GetBalance().GetAccountId() != "" {
		t.Errorf("no principal to forward: %v, %v", res, err)
	}
	_, err = walletv1connect.NewWalletServiceClient(http.DefaultClient, base, forwarding).GetBalance(ctx, &walletv1.GetBalanceRequest{})
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("a principal without the service credential: %v; want unauthenticated", err)
	}
}
