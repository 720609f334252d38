package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/fasthttp/websocket"
	"github.com/nats-io/nats.go"

	"github.com/tradex-mesh/tradex/embedded"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/internal/platform"
	"github.com/tradex-mesh/tradex/internal/tlsconfig"
	"github.com/tradex-mesh/tradex/internal/tlsconfig/tlstest"
)

func TestTLSFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr string // "": valid
	}{
		{"gateway cert and key", []string{"--tls-cert", "c.pem", "--tls-key", "k.pem"}, ""},
		{"gateway cert without key", []string{"--tls-cert", "c.pem"}, "--tls-cert and --tls-key: give both"},
		{"gateway key without cert", []string{"--tls-key", "k.pem"}, "--tls-cert and --tls-key: give both"},
		{"self-signed", []string{"--tls-self-signed"}, ""},
		{"self-signed and a cert", []string{"--tls-self-signed", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "--tls-self-signed: not with --tls-cert"},
		{"internal cert without key", []string{"--internal-tls-cert", "c.pem"}, "--internal-tls-cert and --internal-tls-key"},
		{"internal mtls", []string{"--internal-tls-cert", "c", "--internal-tls-key", "k", "--internal-client-ca", "ca",
			"--internal-client-cert", "cc", "--internal-client-key", "ck"}, ""},
		{"client ca without tls", []string{"--internal-client-ca", "ca", "--internal-client-cert", "cc", "--internal-client-key", "ck"}, "--internal-client-ca: needs --internal-tls-cert"},
		{"client ca without own client cert", []string{"--internal-tls-cert", "c", "--internal-tls-key", "k", "--internal-client-ca", "ca"},
			"--internal-client-ca: this process calls its own internal port"},
		{"client cert without key", []string{"--internal-client-cert", "cc"}, "--internal-client-cert and --internal-client-key"},
		{"internal ca with nothing over tls", []string{"--internal-ca", "ca"}, "--internal-ca, --internal-client-cert: no TLS"},
		{"internal ca for an https services url", []string{"--internal-ca", "ca", "--services", "order", "--services-url", "https://svc:8081"}, ""},
		{"nats tls", []string{"--nats-tls-cert", "c", "--nats-tls-key", "k"}, ""},
		{"nats tls key without cert", []string{"--nats-tls-key", "k"}, "--nats-tls-cert and --nats-tls-key"},
		{"nats tls without a listener", []string{"--nats-tls-cert", "c", "--nats-tls-key", "k", "--nats-listen", "none"}, "--nats-listen is none"},
		{"nats tls with an external cluster", []string{"--nats-tls-cert", "c", "--nats-tls-key", "k", "--nats", "nats://n:4222"}, "--nats-tls-cert: configures the embedded server"},
		{"nats ca", []string{"--nats", "tls://n:4222", "--nats-ca", "ca", "--nats-client-cert", "c", "--nats-client-key", "k"}, ""},
		{"nats ca without an external cluster", []string{"--nats-ca", "ca"}, "--nats-ca, --nats-client-cert: only for an external cluster"},
		{"nats client cert without key", []string{"--nats", "tls://n:4222", "--nats-client-cert", "c"}, "--nats-client-cert and --nats-client-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseServeFlags(tt.args, func(string) string { return "" }, io.Discard)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("parse: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
			}
		})
	}
}

// A certificate file that does not load stops serve with the flag named.
func TestServeTLSFilesMustLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	certFile, keyFile := ca.Server(t).Write(t, dir, "server")
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		set  func(*serveConfig)
		want string
	}{
		{"gateway", func(c *serveConfig) { c.TLSCert, c.TLSKey = certFile, missing }, "--tls-cert, --tls-key"},
		{"internal", func(c *serveConfig) { c.InternalTLSCert, c.InternalTLSKey = missing, keyFile }, "--internal-tls-cert, --internal-tls-key"},
		{"internal client ca", func(c *serveConfig) {
			c.InternalTLSCert, c.InternalTLSKey, c.InternalClientCA = certFile, keyFile, keyFile
			c.InternalClientCert, c.InternalClientKey = certFile, keyFile
		}, "--internal-client-ca"},
		{"nats", func(c *serveConfig) { c.NATSListen, c.NATSTLSCert, c.NATSTLSKey = "127.0.0.1:0", missing, missing }, "--nats-tls-cert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testServeConfig(t)
			tt.set(&cfg)
			if err := cfg.validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			err := serve(t.Context(), slog.New(slog.DiscardHandler), cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("serve: %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

// httpsClient trusts pool (nil: the system's roots).
func httpsClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tlsconfig.Client(pool, nil)}}
}

// get GETs url with c and returns the status, or the error.
func get(t *testing.T, c *http.Client, url string) (int, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// bookSnapshot opens the WebSocket feed at url with d, subscribes to a
// book and waits for its snapshot: the feed read it from the internal
// port.
func bookSnapshot(t *testing.T, d *websocket.Dialer, url string) error {
	t.Helper()
	ws, resp, err := d.DialContext(t.Context(), url, nil)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","channels":[{"name":"book","symbols":["BTCUSDT"]}]}`)); err != nil {
		return err
	}
	for _, want := range []string{`"op":"subscribed"`, `"type":"snapshot","symbol":"BTCUSDT"`} {
		_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		if !strings.Contains(string(msg), want) {
			t.Fatalf("frame %s, want %s", msg, want)
		}
	}
	return nil
}

// The gateway serves HTTPS and WSS with --tls-cert/--tls-key: a client that
// trusts the CA gets /healthz and a book over /ws, one that does not gets
// nothing, and plaintext HTTP gets no answer.
func TestServeGatewayTLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "gateway")
	cfg := testServeConfig(t)
	cfg.TLSCert, cfg.TLSKey = ca.Server(t).Write(t, t.TempDir(), "gateway")
	ep, _ := startServe(t, cfg)

	if status, err := get(t, httpsClient(ca.Pool()), "https://"+ep.HTTP+"/healthz"); err != nil || status != http.StatusOK {
		t.Errorf("HTTPS /healthz trusting the CA: %d, %v; want 200", status, err)
	}
	if _, err := get(t, httpsClient(nil), "https://"+ep.HTTP+"/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("HTTPS /healthz without the CA: %v, want a certificate error", err)
	}
	if status, err := get(t, http.DefaultClient, "http://"+ep.HTTP+"/healthz"); err == nil && status == http.StatusOK {
		t.Error("plaintext HTTP /healthz was served by the TLS gateway")
	}
	trusting := &websocket.Dialer{TLSClientConfig: tlsconfig.Client(ca.Pool(), nil), HandshakeTimeout: 10 * time.Second}
	if err := bookSnapshot(t, trusting, "wss://"+ep.HTTP+"/ws"); err != nil {
		t.Errorf("WSS trusting the CA: %v", err)
	}
	stranger := &websocket.Dialer{TLSClientConfig: tlsconfig.Client(tlstest.NewCA(t, "other").Pool(), nil), HandshakeTimeout: 10 * time.Second}
	if err := bookSnapshot(t, stranger, "wss://"+ep.HTTP+"/ws"); err == nil {
		t.Error("WSS without the gateway's CA upgraded")
	}
}

// servedCertificate is the certificate the server at addr presents.
func servedCertificate(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // reads the certificate only
	conn, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0] //nolint:forcetypeassert // tls.Dialer's own type
}

// --tls-self-signed serves HTTPS with a certificate generated into the
// data folder (key 0600), which clients can trust, and the same one after
// a restart.
func TestServeSelfSigned(t *testing.T) {
	t.Parallel()
	cfg := testServeConfig(t)
	cfg.TLSSelfSigned = true
	ep, stop := startServe(t, cfg)

	certPEM, err := os.ReadFile(filepath.Join(cfg.DataDir, tlsconfig.SelfSignedCertFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(cfg.DataDir, tlsconfig.SelfSignedKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("self-signed key: %v, %v; want mode 0600", fi, err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	if status, err := get(t, httpsClient(pool), "https://"+ep.HTTP+"/healthz"); err != nil || status != http.StatusOK {
		t.Errorf("HTTPS /healthz trusting the stored certificate: %d, %v", status, err)
	}
	first := tlsconfig.Fingerprint(servedCertificate(t, ep.HTTP))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ep, _ = startServe(t, cfg)
	if again := tlsconfig.Fingerprint(servedCertificate(t, ep.HTTP)); again != first {
		t.Errorf("after a restart the gateway serves %s, want the stored %s", again, first)
	}
}

// With --internal-client-ca, a client certificate from the CA is the
// service credential (no token); no certificate, or one from another CA,
// gets nothing; the process's own WebSocket feed reaches the port with
// its --internal-client-cert.
func TestServeInternalMutualTLS(t *testing.T) {
	t.Parallel()
	ca, other := tlstest.NewCA(t, "internal"), tlstest.NewCA(t, "other")
	dir := t.TempDir()
	cfg := testServeConfig(t)
	cfg.InternalTLSCert, cfg.InternalTLSKey = ca.Server(t).Write(t, dir, "server")
	cfg.InternalClientCert, cfg.InternalClientKey = ca.Client(t, "tradex").Write(t, dir, "client")
	cfg.InternalClientCA = ca.WriteCA(t, dir, "ca.pem")
	cfg.InternalCA = cfg.InternalClientCA
	ep, _ := startServe(t, cfg)
	url := "https://" + ep.GRPC

	client := ca.Client(t, "operator").Cert
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsconfig.Client(ca.Pool(), &client), ForceAttemptHTTP2: true}}
	wallet := walletv1connect.NewWalletServiceClient(withCert, url, connect.WithGRPC())
	if _, err := wallet.Deposit(t.Context(), &walletv1.DepositRequest{TransferId: "mtls-1", AccountId: "alice", Asset: "USDT", Amount: "5"}); err != nil {
		t.Fatalf("Deposit with a client certificate and no token: %v", err)
	}
	stranger := other.Client(t, "mallory").Cert
	for _, c := range []struct {
		name, url string
		client    *http.Client
	}{
		{"token, no certificate", url, internalHTTPClient(testInternalToken, tlsconfig.Client(ca.Pool(), nil))},
		{"certificate from another CA", url, &http.Client{Transport: &http.Transport{TLSClientConfig: tlsconfig.Client(ca.Pool(), &stranger), ForceAttemptHTTP2: true}}},
		{"plaintext h2c with token", "http://" + ep.GRPC, h2cClient()},
	} {
		w := walletv1connect.NewWalletServiceClient(c.client, c.url, connect.WithGRPC())
		if _, err := w.Deposit(t.Context(), &walletv1.DepositRequest{TransferId: "forged", AccountId: "mallory", Asset: "USDT", Amount: "5"}); err == nil {
			t.Errorf("%s: Deposit succeeded, want the connection refused", c.name)
		}
	}
	bal, err := wallet.GetBalance(t.Context(), &walletv1.GetBalanceRequest{AccountId: "mallory", Asset: "USDT"})
	if err != nil || bal.GetBalance().GetAvailable() != "0.00000000" {
		t.Errorf("mallory's balance after refused deposits: %v, %v", bal, err)
	}
	health, err := grpchealth.NewClient(withCert, url, connect.WithGRPC()).Check(t.Context(), &grpchealth.CheckRequest{})
	if err != nil || health.Status != grpchealth.StatusServing {
		t.Errorf("health over mutual TLS: %v, %v", health, err)
	}
	if err := bookSnapshot(t, websocket.DefaultDialer, "ws://"+ep.HTTP+"/ws"); err != nil {
		t.Errorf("the WebSocket feed over the mutual-TLS internal port: %v", err)
	}
}

// With --nats-tls-cert the embedded server's listener takes TLS clients
// that trust its CA (tradex dlq with --nats-ca among them) and refuses
// the others.
func TestServeNATSTLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "nats")
	cfg := testServeConfig(t)
	cfg.NATSListen = "127.0.0.1:0"
	cfg.NATSTLSCert, cfg.NATSTLSKey = ca.Server(t).Write(t, t.TempDir(), "nats")
	ep, _ := startServe(t, cfg)
	creds, err := platform.LoadCredentials(filepath.Join(cfg.DataDir, natsCredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	login := nats.UserInfo(platform.UserReader, creds[platform.UserReader])
	nc, err := nats.Connect(ep.NATS, login, nats.Secure(tlsconfig.Client(ca.Pool(), nil)))
	if err != nil {
		t.Fatalf("TLS connection trusting the CA: %v", err)
	}
	defer nc.Close()
	if _, err := nc.TLSConnectionState(); err != nil {
		t.Errorf("connected without TLS: %v", err)
	}
	if nc, err := nats.Connect(ep.NATS, login, nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Error("a connection without the CA was admitted")
	}

	// tradex dlq reaches the TLS listener with --nats-ca, and not without.
	caFile := ca.WriteCA(t, t.TempDir(), "ca.pem")
	dlq := []string{"dlq", "stats", "--nats", ep.NATS, "--nats-credentials", filepath.Join(cfg.DataDir, natsCredentialsFile)}
	noenv := func(string) string { return "" }
	if err := run(t.Context(), append(dlq, "--nats-ca", caFile), noenv, io.Discard, io.Discard); err != nil {
		t.Errorf("tradex dlq stats --nats-ca: %v", err)
	}
	if err := run(t.Context(), dlq, noenv, io.Discard, io.Discard); err == nil {
		t.Error("tradex dlq stats without --nats-ca reached the TLS listener")
	}
}

// With --nats-ca and --nats-client-cert, serve runs on an external server
// that requires mutual TLS; without the client certificate it does not
// start.
func TestServeExternalNATSTLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "nats")
	srv, err := embedded.Start(t.Context(), embedded.Options{StoreDir: t.TempDir(), Port: 0,
		TLS: tlsconfig.Server(ca.Server(t).Cert, ca.Pool())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	dir := t.TempDir()
	cfg := testServeConfig(t)
	cfg.NATSURL, cfg.NATSCA = srv.ClientURL(), ca.WriteCA(t, dir, "ca.pem")

	if err := serve(t.Context(), slog.New(slog.DiscardHandler), cfg, nil); err == nil || !strings.Contains(err.Error(), "--nats") {
		t.Fatalf("serve without a client certificate: %v, want --nats: connect failed", err)
	}
	cfg.NATSClientCert, cfg.NATSClientKey = ca.Client(t, "tradex").Write(t, dir, "client")
	ep, _ := startServe(t, cfg)
	if status, body := getJSON(t, "http://"+ep.HTTP+"/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz on the mutual-TLS external server = %d %v, want 200", status, body)
	}
}
