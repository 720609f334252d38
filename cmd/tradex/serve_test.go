package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/internal/rpcserver"
	"github.com/tradex-mesh/tradex/streams"
)

// testServeConfig listens on free loopback ports with data in a temp folder.
func testServeConfig(t *testing.T) serveConfig {
	t.Helper()
	cfg := defaultServeConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.NATSListen = "none"
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.InternalToken = testInternalToken
	cfg.Auth = "dev" // tests that need real credentials set "jwt"
	return cfg
}

// testInternalToken is the internal port's service credential in these
// tests.
const testInternalToken = "test-internal-token-0123456789"

// internalClient calls the internal port with the service credential
// (HTTP/1.1).
func internalClient() *http.Client {
	return &http.Client{Transport: rpcserver.TokenTransport{Token: testInternalToken}}
}

// startServe runs serve in the background until the returned stop is
// called; stop cancels it and returns what serve returned.
func startServe(t *testing.T, cfg serveConfig) (endpoints, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan endpoints, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, slog.New(slog.DiscardHandler), cfg, func(ep endpoints) { ready <- ep })
	}()
	stop := sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Error("serve did not return within 20s of cancellation")
			return nil
		}
	})
	select {
	case ep := <-ready:
		t.Cleanup(func() { _ = stop() })
		return ep, stop
	case err := <-done:
		cancel()
		t.Fatalf("serve failed to start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not become ready within 30s")
	}
	return endpoints{}, nil
}

// getJSON GETs url and decodes the JSON body.
func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("GET %s: body %q is not JSON: %v", url, body, err)
	}
	return resp.StatusCode, m
}

// h2cClient speaks HTTP/2 without TLS, as gRPC clients do on the internal
// port, with the service credential.
func h2cClient() *http.Client {
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: rpcserver.TokenTransport{Token: testInternalToken, Base: &http.Transport{
		Protocols:       protocols,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
	}}}
}

func TestServeEmbedded(t *testing.T) {
	t.Parallel()
	ep, stop := startServe(t, testServeConfig(t))

	if ep.NATS != "in-process" {
		t.Errorf("NATS endpoint = %q, want in-process with --nats-listen none", ep.NATS)
	}
	status, body := getJSON(t, "http://"+ep.HTTP+"/healthz")
	if status != http.StatusOK || body["status"] != "ok" {
		t.Errorf("/healthz = %d %v, want 200 ok", status, body)
	}
	status, body = getJSON(t, "http://"+ep.HTTP+"/readyz")
	if status != http.StatusOK || body["status"] != "ok" {
		t.Errorf("/readyz = %d %v, want 200 ok", status, body)
	}
	// The body also gives every durable consumer's backlog.
	lag, _ := body["lag"].(map[string]any)
	for _, consumer := range []string{"engine.event.v1 wallet-settlement", "engine.event.v1 order-status", "engine.order.v1 matching-engine"} {
		if v, ok := lag[consumer].(float64); !ok || v != 0 {
			t.Errorf("/readyz lag of %s = %v, want 0 in %v", consumer, lag[consumer], lag)
		}
	}

	// gRPC health over h2c on the internal port, as grpc tooling calls it.
	health := grpchealth.NewClient(h2cClient(), "http://"+ep.GRPC, connect.WithGRPC())
	res, err := health.Check(t.Context(), &grpchealth.CheckRequest{})
	if err != nil {
		t.Fatalf("grpc health check: %v", err)
	}
	if res.Status != grpchealth.StatusServing {
		t.Errorf("grpc health = %v, want SERVING", res.Status)
	}

	// The metadata service answers over gRPC on the internal port, seeded.
	md := metadatav1connect.NewMetadataServiceClient(h2cClient(), "http://"+ep.GRPC, connect.WithGRPC())
	list, err := md.ListInstruments(t.Context(), &metadatav1.ListInstrumentsRequest{})
	if err != nil {
		t.Fatalf("ListInstruments over gRPC: %v", err)
	}
	var symbols []string
	for _, in := range list.GetInstruments() {
		symbols = append(symbols, in.GetSymbol())
	}
	for _, want := range []string{"BTCUSDT", "ETHUSDT", "BTCUSDT-PERP"} {
		if !slices.Contains(symbols, want) {
			t.Errorf("instruments %v lack the demo instrument %s", symbols, want)
		}
	}
	// The wallet takes a deposit over Connect (HTTP/1.1) and reports it.
	wc := walletv1connect.NewWalletServiceClient(internalClient(), "http://"+ep.GRPC)
	if _, err := wc.Deposit(t.Context(), &walletv1.DepositRequest{TransferId: "t1", AccountId: "alice", Asset: "USDT", Amount: "100.5"}); err != nil {
		t.Fatalf("Deposit: %v", err)
	}
	bal, err := wc.GetBalance(t.Context(), &walletv1.GetBalanceRequest{AccountId: "alice", Asset: "USDT"})
	if err != nil {
		t.Fatalf("GetBalance: %v", err)
	}
	if got, want := bal.GetBalance().GetAvailable(), "100.50000000"; got != want {
		t.Errorf("available after a deposit of 100.5 = %q, want %q", got, want)
	}
	res, err = health.Check(t.Context(), &grpchealth.CheckRequest{Service: metadatav1connect.MetadataServiceName})
	if err != nil || res.Status != grpchealth.StatusServing {
		t.Errorf("metadata health = %v, %v; want SERVING", res, err)
	}

	if err := stop(); err != nil {
		t.Fatalf("serve returned %v after a clean stop, want nil", err)
	}
	if _, err := (&net.Dialer{Timeout: time.Second}).DialContext(t.Context(), "tcp", ep.HTTP); err == nil {
		t.Errorf("gateway %s still accepts connections after stop", ep.HTTP)
	}
}

func TestServeExternalNATS(t *testing.T) {
	t.Parallel()
	ns := embeddedtest.New(t, embeddedtest.WithTCP())
	cfg := testServeConfig(t)
	cfg.NATSURL = ns.ClientURL()
	ep, _ := startServe(t, cfg)

	if ep.NATS != cfg.NATSURL {
		t.Errorf("NATS endpoint = %q, want the external %q", ep.NATS, cfg.NATSURL)
	}
	if status, body := getJSON(t, "http://"+ep.HTTP+"/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz with the external server up = %d %v, want 200", status, body)
	}
	registry, err := streams.OpenRegistry(t.Context(), ns.JetStream())
	if err != nil {
		t.Fatalf("schema registry not published at start-up: %v", err)
	}
	if schemas, err := registry.Topics(t.Context()); err != nil || len(schemas) != len(streams.DefaultCatalog().Topics()) {
		t.Errorf("registry holds %d schemas (err %v), want one per catalog topic", len(schemas), err)
	}
	for _, topic := range streams.DefaultCatalog().Topics() {
		st, err := ns.JetStream().Stream(t.Context(), topic.Stream())
		if err != nil {
			t.Fatalf("stream of %s not provisioned at start-up: %v", topic.Name, err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 1 {
			t.Errorf("stream %s has %d replicas on a single server, want 1", topic.Stream(), r)
		}
	}

	// With the broker gone, readiness must fail while liveness holds.
	if err := ns.Shutdown(t.Context()); err != nil {
		t.Fatalf("shutdown external server: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, body := getJSON(t, "http://"+ep.HTTP+"/readyz")
		if status == http.StatusServiceUnavailable {
			checks, _ := body["checks"].(map[string]any)
			if checks["nats"] == "ok" {
				t.Errorf("/readyz is 503 but reports nats ok: %v", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %v 15s after the broker stopped", status, body)
		}
		waitABit(t)
	}
	if status, _ := getJSON(t, "http://"+ep.HTTP+"/healthz"); status != http.StatusOK {
		t.Errorf("/healthz = %d with the broker down, want 200 (liveness does not depend on it)", status)
	}
}

func TestServeOnClusterReplicatesStreams(t *testing.T) {
	t.Parallel()
	c := embeddedtest.NewCluster(t, 3)
	cfg := testServeConfig(t)
	cfg.NATSURL = c.ClientURL()
	startServe(t, cfg)
	st, err := c.JetStream().Stream(t.Context(), streams.StreamName(streams.TopicEngineEvent))
	if err != nil {
		t.Fatalf("engine events stream: %v", err)
	}
	if r := st.CachedInfo().Config.Replicas; r != 3 {
		t.Errorf("engine events stream has %d replicas on a 3-node cluster, want 3", r)
	}
	md, err := c.JetStream().Stream(t.Context(), streams.StreamName(streams.TopicBook))
	if err != nil {
		t.Fatalf("book stream: %v", err)
	}
	if r := md.CachedInfo().Config.Replicas; r != 1 {
		t.Errorf("market data stream has %d replicas, want 1 (disposable)", r)
	}
}

func TestServeFailsOnPortInUse(t *testing.T) {
	t.Parallel()
	var lc net.ListenConfig
	taken, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	cfg := testServeConfig(t)
	cfg.HTTPAddr = taken.Addr().String()
	err = serve(t.Context(), slog.New(slog.DiscardHandler), cfg, func(endpoints) {
		t.Error("serve became ready on a port already in use")
	})
	if err == nil || !strings.Contains(err.Error(), "--http-addr") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("err = %v, want one naming --http-addr and the port in use", err)
	}
}

// waitABit pauses between polls of a condition, bounded by the test's context.
func waitABit(t *testing.T) {
	t.Helper()
	select {
	case <-t.Context().Done():
	case <-time.After(50 * time.Millisecond):
	}
}
