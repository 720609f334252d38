package gateway_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/gateway"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1/marketdatav1connect"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/order/v1/orderv1connect"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/internal/platformtest"
)

// bearer is an HTTP/1.1 client that sends a bearer token with every request.
func bearer(token string) *http.Client {
	return &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestConnectThroughTheGateway calls the services with connect-go over
// HTTP/1.1 on the gateway's port: unary calls in the Connect protocol and
// gRPC-Web, a server stream that delivers a trade while it is open, and
// the access checks of the mount.
func TestConnectThroughTheGateway(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	base := serveGateway(t, p, gateway.Default())

	for name, opts := range map[string][]connect.ClientOption{"connect": nil, "grpc-web": {connect.WithGRPCWeb()}} {
		md := metadatav1connect.NewMetadataServiceClient(http.DefaultClient, base, opts...)
		got, err := md.GetInstrument(t.Context(), &metadatav1.GetInstrumentRequest{Symbol: "BTCUSDT-PERP"})
		if err != nil || got.GetInstrument().GetKind() != commonv1.InstrumentKind_INSTRUMENT_KIND_PERPETUAL {
			t.Errorf("%s: GetInstrument: %v, %v", name, got, err)
		}
	}

	// A live server stream: it is open before the trade happens, and the
	// trade arrives while it stays open.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	mdc := marketdatav1connect.NewMarketDataServiceClient(http.DefaultClient, base)
	stream, err := mdc.StreamTrades(ctx, &marketdatav1.StreamTradesRequest{InstrumentIds: []string{"BTCUSDT"}})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()

	deposit(t, base, "alice", "USDT", "100000")
	deposit(t, base, "bob", "BTC", "1")
	alice := orderv1connect.NewOrderServiceClient(bearer("alice"), base)
	bob := orderv1connect.NewOrderServiceClient(bearer("bob"), base, connect.WithGRPCWeb())
	limit := func(side commonv1.Side) *orderv1.PlaceOrderRequest {
		return &orderv1.PlaceOrderRequest{InstrumentId: "BTCUSDT", Side: side, Type: commonv1.OrderType_ORDER_TYPE_LIMIT,
			Quantity: "0.5", Price: "60000"}
	}
	placed, err := alice.PlaceOrder(t.Context(), limit(commonv1.Side_SIDE_BUY))
	if err != nil || placed.GetOrder().GetAccountId() != "alice" {
		t.Fatalf("alice's buy: %v, %v", placed, err)
	}
	if _, err := bob.PlaceOrder(t.Context(), limit(commonv1.Side_SIDE_SELL)); err != nil {
		t.Fatalf("bob's sell (gRPC-Web): %v", err)
	}
	if !stream.Receive() {
		t.Fatalf("no trade on the open stream: %v", stream.Err())
	}
	if tr := stream.Msg().GetTrade(); tr.GetPrice() != "60000.00" || tr.GetQuantity() != "0.50000" || tr.GetTakerSide() != commonv1.Side_SIDE_SELL {
		t.Errorf("trade: %v", tr)
	}

	// Access checks of the mount.
	anon := orderv1connect.NewOrderServiceClient(http.DefaultClient, base)
	_, err = anon.PlaceOrder(t.Context(), limit(commonv1.Side_SIDE_BUY))
	wantCode(t, "PlaceOrder without a credential", err, connect.CodeUnauthenticated)
	other := limit(commonv1.Side_SIDE_BUY)
	other.AccountId = "bob"
	_, err = alice.PlaceOrder(t.Context(), other)
	wantCode(t, "PlaceOrder for another account", err, connect.CodePermissionDenied)
	_, err = walletv1connect.NewWalletServiceClient(bearer("alice"), base).Deposit(t.Context(),
		&walletv1.DepositRequest{TransferId: "x", AccountId: "alice", Asset: "USDT", Amount: "1"})
	wantCode(t, "Deposit as a user", err, connect.CodePermissionDenied)
	_, err = walletv1connect.NewWalletServiceClient(bearer("not a token"), base).GetBalance(t.Context(),
		&walletv1.GetBalanceRequest{Asset: "USDT"})
	wantCode(t, "a bad credential", err, connect.CodeUnauthenticated)
	bal, err := walletv1connect.NewWalletServiceClient(bearer("alice"), base).GetBalance(t.Context(), &walletv1.GetBalanceRequest{Asset: "USDT"})
	if err != nil || bal.GetBalance().GetAccountId() != "alice" {
		t.Errorf("alice's own balance: %v, %v", bal, err)
	}
	watch, err := alice.WatchOrders(ctx, &orderv1.WatchOrdersRequest{AccountId: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if watch.Receive() {
		t.Errorf("watched bob's orders as alice: %v", watch.Msg())
	}
	wantCode(t, "WatchOrders for another account", watch.Err(), connect.CodePermissionDenied)
	_ = watch.Close()
}

func wantCode(t *testing.T, what string, err error, code connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); got != code {
		var ce *connect.Error
		errors.As(err, &ce)
		t.Errorf("%s: %v (%v), want %v", what, got, err, code)
	}
}

// TestCORS answers a browser's preflight for an allowed origin only.
func TestCORS(t *testing.T) {
	t.Parallel()
	cfg := gateway.Default()
	cfg.AllowedOrigins = []string{"https://app.example"}
	gw, err := gateway.New(cfg, gateway.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, gw)
	preflight := func(origin string) http.Header {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodOptions, base+"/tradex.order.v1.OrderService/PlaceOrder", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "connect-protocol-version,content-type,authorization")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.Header
	}
	h := preflight("https://app.example")
	if h.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("allowed origin: %v", h)
	}
	for _, want := range []string{"Connect-Protocol-Version", "Authorization"} {
		if !containsFold(h.Get("Access-Control-Allow-Headers"), want) {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", h.Get("Access-Control-Allow-Headers"), want)
		}
	}
	if h := preflight("https://evil.example"); h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin allowed: %v", h)
	}
}

func containsFold(list, want string) bool {
	for _, s := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(s), want) {
			return true
		}
	}
	return false
}

// TestShutdownEndsOpenStreams: a Connect server stream open through the
// gateway does not hold its shutdown up; the client sees the stream end.
func TestShutdownEndsOpenStreams(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	gw, err := gateway.New(gateway.Default(), gateway.Deps{Connect: p.ConnectServices()})
	if err != nil {
		t.Fatal(err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ln) }()
	mdc := marketdatav1connect.NewMarketDataServiceClient(http.DefaultClient, "http://"+ln.Addr().String())
	stream, err := mdc.StreamTrades(t.Context(), &marketdatav1.StreamTradesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a stream open: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	if stream.Receive() {
		t.Errorf("a message after shutdown: %v", stream.Msg())
	}
}
