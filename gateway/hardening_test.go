package gateway_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/gateway"
	"github.com/tradex-mesh/tradex/gateway/auth"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1/marketdatav1connect"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/internal/rpcserver"
	"github.com/tradex-mesh/tradex/streams"
)

// keepingWallet is a wallet handler that keeps every account id it was
// asked about, as a service that caches or logs later would.
type keepingWallet struct {
	walletv1connect.UnimplementedWalletServiceHandler
	mu   sync.Mutex
	seen []string
}

func (w *keepingWallet) GetBalance(_ context.Context, r *walletv1.GetBalanceRequest) (*walletv1.GetBalanceResponse, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, r.GetAccountId())
	return &walletv1.GetBalanceResponse{}, nil
}

// TestConnectPrincipalOutlivesTheRequest: the account a Connect call acts
// for is the caller's own string, not a view of fasthttp's header buffer
// that the connection's next request overwrites.
func TestConnectPrincipalOutlivesTheRequest(t *testing.T) {
	t.Parallel()
	w := &keepingWallet{}
	path, h := walletv1connect.NewWalletServiceHandler(w, connect.WithInterceptors(auth.Interceptor()))
	gw, err := gateway.New(gateway.Default(), gateway.Deps{
		Verifier: auth.Dev{},
		Connect:  []rpcserver.Service{{Name: walletv1connect.WalletServiceName, Path: path, Handler: h}},
	})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, gw)
	oneConn := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	defer oneConn.CloseIdleConnections()
	want := []string{"alice", "bobby", "carol"}
	for _, tok := range want {
		client := walletv1connect.NewWalletServiceClient(&http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+tok)
			return oneConn.RoundTrip(r)
		})}, base)
		if _, err := client.GetBalance(t.Context(), &walletv1.GetBalanceRequest{Asset: "USDT"}); err != nil {
			t.Fatal(err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range want {
		if w.seen[i] != want[i] {
			t.Fatalf("account ids kept by the service: %q, want %q", w.seen, want)
		}
	}
}

// TestStreamsHaveAMaximumLifetime: a quiet server stream ends on its own
// after MaxStreamLifetime (for a client that vanished without closing
// its connection).
func TestStreamsHaveAMaximumLifetime(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	cfg := gateway.Default()
	cfg.MaxStreamLifetime = 200 * time.Millisecond
	gw, err := gateway.New(cfg, gateway.Deps{Connect: p.ConnectServices()})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, gw)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	stream, err := marketdatav1connect.NewMarketDataServiceClient(http.DefaultClient, base).StreamTrades(ctx, &marketdatav1.StreamTradesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if stream.Receive() {
		t.Fatalf("a trade on a quiet stream: %v", stream.Msg())
	}
	if ctx.Err() != nil {
		t.Fatal("the stream did not end before the test's deadline")
	}
}

// TestAbandonedStreamReleasesItsConsumer: a quiet WatchBalances whose
// client closed its connection ends within seconds, and its NATS
// consumer with it (not after MaxStreamLifetime), in the Connect protocol
// and in gRPC-Web.
func TestAbandonedStreamReleasesItsConsumer(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	gw, err := gateway.New(gateway.Default(), gateway.Deps{Connect: p.ConnectServices(), Verifier: auth.Dev{AdminToken: "admin-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, gw)
	journal, err := p.JetStream().Stream(t.Context(), streams.StreamName(streams.TopicBalanceChanged))
	if err != nil {
		t.Fatal(err)
	}
	consumers := func() int {
		info, err := journal.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Consumers
	}
	for _, opts := range [][]connect.ClientOption{nil, {connect.WithGRPCWeb()}} {
		before := consumers()
		ctx, leave := context.WithCancel(t.Context())
		stream, err := walletv1connect.NewWalletServiceClient(bearer("alice"), base, opts...).
			WatchBalances(ctx, &walletv1.WatchBalancesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if !stream.Receive() { // the balances now; then nothing changes
			t.Fatalf("no first message: %v", stream.Err())
		}
		polltest.True(t, "the watch's consumer", func() bool { return consumers() == before+1 })
		leave() // closes the connection
		_ = stream.Close()
		polltest.True(t, "the abandoned stream's consumer to go", func() bool { return consumers() == before },
			polltest.WithTimeout(5*time.Second))
	}
}

// TestConnectCallsAreRateLimited: Connect calls through the gateway share
// the client's budget.
func TestConnectCallsAreRateLimited(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	cfg := gateway.Default()
	cfg.RateLimit = gateway.RateLimit{PerSecond: 0.001, Burst: 2}
	gw, err := gateway.New(cfg, gateway.Deps{Connect: p.ConnectServices()})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, gw)
	md := metadatav1connect.NewMetadataServiceClient(http.DefaultClient, base)
	var errs []error
	for range 3 {
		_, err := md.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: "BTCUSDT"})
		errs = append(errs, err)
	}
	if errs[0] != nil || errs[1] != nil || connect.CodeOf(errs[2]) != connect.CodeResourceExhausted {
		t.Errorf("errors %v, want two successes then resource_exhausted", errs)
	}
}

// panickingMetadata panics in GetInstrument.
type panickingMetadata struct {
	metadatav1connect.UnimplementedMetadataServiceHandler
}

func (panickingMetadata) GetInstrument(context.Context, *metadatav1.GetInstrumentRequest) (*metadatav1.GetInstrumentResponse, error) {
	panic("bug") //nolint:forbidigo // the panic is what this test is about
}

// TestPanicIsAnInternalError: a handler's panic answers 500 and the
// gateway goes on.
func TestPanicIsAnInternalError(t *testing.T) {
	t.Parallel()
	gw, err := gateway.New(gateway.Default(), gateway.Deps{Services: gateway.Services{Metadata: panickingMetadata{}}})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, gw)
	checkError(t, call(t, "GET", base+"/v1/instruments/BTCUSDT", "", nil), 500, "internal", "internal error")
	call(t, "GET", base+"/healthz", "", nil).ok(t, http.StatusOK)
}

// TestRefusedCredentialsAreRateLimited: guessing tokens costs the
// guesser's address its budget.
func TestRefusedCredentialsAreRateLimited(t *testing.T) {
	t.Parallel()
	cfg := gateway.Default()
	cfg.RateLimit = gateway.RateLimit{PerSecond: 0.001, Burst: 2}
	gw, err := gateway.New(cfg, gateway.Deps{Verifier: auth.Tokens{"good-key": {Subject: "k", AccountID: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, gw)
	var statuses []int
	for _, tok := range []string{"guess-1", "guess-2", "guess-3"} {
		statuses = append(statuses, call(t, "GET", base+"/v1/balances", tok, nil).status)
	}
	if statuses[0] != 401 || statuses[1] != 401 || statuses[2] != 429 {
		t.Errorf("statuses %v, want 401 401 429", statuses)
	}
}
