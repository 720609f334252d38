// Package platformtest runs the trading core in process for a test: an
// embedded JetStream with every catalog stream, and the metadata, wallet,
// order, matching and market data services wired as `tradex serve` wires them, behind
// one loopback HTTP server that speaks Connect (like the internal port).
//
//	p := platformtest.New(t)
//	p.Wallet.Deposit(ctx, ...)
//	p.Orders.PlaceOrder(ctx, ...)
//	p.WaitSettled(t)
//
// The order service reaches the wallet over that HTTP server, as two
// processes would. The wallet, the order service and the matching engine
// each have their own NATS connection, so a test can kill one mid-flight
// ([Platform.KillWallet], [Platform.KillOrders], [Platform.KillMatching]:
// the connection is closed before the service is stopped, so nothing is
// drained or acknowledged) and start it again from the streams
// ([Platform.StartWallet], [Platform.StartOrders], [Platform.StartMatching]).
// While the wallet or the order service is down its RPCs answer Unavailable.
package platformtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	"github.com/tradex-mesh/tradex/gateway/auth"
	"github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1/marketdatav1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/order/v1/orderv1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/internal/instruments"
	"github.com/tradex-mesh/tradex/internal/rpcserver"
	"github.com/tradex-mesh/tradex/services/marketdata"
	"github.com/tradex-mesh/tradex/services/matching"
	"github.com/tradex-mesh/tradex/services/metadata"
	"github.com/tradex-mesh/tradex/services/order"
	"github.com/tradex-mesh/tradex/services/wallet"
	"github.com/tradex-mesh/tradex/streams"
)

// startTimeout bounds how long a service may take to become ready, and a
// killed one to stop.
const startTimeout = 30 * time.Second

// Option configures a Platform.
type Option func(*config)

type config struct {
	sync       embedded.SyncPolicy
	logger     *slog.Logger
	wallet     wallet.Config
	order      order.Config
	matching   matching.Config
	marketData marketdata.Config
}

// WithSync sets the embedded server's fsync policy (default
// embedded.SyncAlways, as `tradex serve`).
func WithSync(p embedded.SyncPolicy) Option { return func(c *config) { c.sync = p } }

// WithLogger sends the services' logs to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithWalletConfig changes the wallet's configuration (default
// wallet.Default()); it applies to every start.
func WithWalletConfig(f func(*wallet.Config)) Option { return func(c *config) { f(&c.wallet) } }

// WithOrderConfig changes the order service's configuration (default
// order.Default()).
func WithOrderConfig(f func(*order.Config)) Option { return func(c *config) { f(&c.order) } }

// WithMarketDataConfig changes the market data service's configuration
// (default marketdata.Default()); it applies to every start.
func WithMarketDataConfig(f func(*marketdata.Config)) Option {
	return func(c *config) { f(&c.marketData) }
}

// WithMatchingConfig changes the matching engine's configuration (default
// matching.Default()); it applies to every start.
func WithMatchingConfig(f func(*matching.Config)) Option { return func(c *config) { f(&c.matching) } }

// Platform is a running trading core. Its clients are safe for concurrent
// use; Kill and Start calls must come from one goroutine at a time.
type Platform struct {
	t      testing.TB
	cfg    config
	server *embeddedtest.Server
	js     jetstream.JetStream
	cache  *instruments.Cache

	// URL is the base URL of the Connect server of every service.
	URL string
	// Metadata, Wallet and Orders are Connect clients of the services over
	// HTTP/1.1 (Connect protocol).
	Metadata   metadatav1connect.MetadataServiceClient
	Wallet     walletv1connect.WalletServiceClient
	Orders     orderv1connect.OrderServiceClient
	MarketData marketdatav1connect.MarketDataServiceClient

	mux           *http.ServeMux
	walletHandler atomic.Pointer[http.Handler]
	orderHandler  atomic.Pointer[http.Handler]
	mdHandler     atomic.Pointer[http.Handler]
	wallet        *process
	orders        *process
	matching      *process
	marketData    *process
}

// New starts the platform for t and stops it in t's cleanup. It fails the
// test if a service does not start.
func New(t testing.TB, opts ...Option) *Platform {
	t.Helper()
	cfg := config{
		sync:       embedded.SyncAlways,
		logger:     slog.New(slog.DiscardHandler),
		wallet:     wallet.Default(),
		order:      order.Default(),
		matching:   matching.Default(),
		marketData: marketdata.Default(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	s := embeddedtest.New(t, embeddedtest.WithSync(cfg.sync))
	js := s.JetStream()
	catalog := streams.DefaultCatalog()
	if err := streams.EnsureStreams(t.Context(), js, catalog); err != nil {
		t.Fatalf("platformtest: provision streams: %v", err)
	}
	p := &Platform{t: t, cfg: cfg, server: s, js: js}

	md, err := metadata.New(metadata.Default(), metadata.Deps{
		Logger:    cfg.logger.With("service", "metadata"),
		JetStream: js,
		Publisher: streams.NewPublisher(js, catalog, streams.WithSource("tradex/metadata")),
	})
	if err != nil {
		t.Fatalf("platformtest: %v", err)
	}
	p.run("metadata", nil, md.Run, md.Ready())
	p.cache, err = instruments.New(t.Context(), md.InProcess(), js, catalog,
		instruments.WithLogger(cfg.logger.With("component", "instruments")))
	if err != nil {
		t.Fatalf("platformtest: instrument cache: %v", err)
	}
	t.Cleanup(func() { _ = p.cache.Close(context.WithoutCancel(t.Context())) })

	mux := http.NewServeMux()
	mux.Handle(md.Handler(connect.WithInterceptors(auth.Interceptor())))
	mux.HandleFunc("/"+walletv1connect.WalletServiceName+"/", func(w http.ResponseWriter, r *http.Request) {
		serveIfUp(w, r, &p.walletHandler, "wallet")
	})
	mux.HandleFunc("/"+orderv1connect.OrderServiceName+"/", func(w http.ResponseWriter, r *http.Request) {
		serveIfUp(w, r, &p.orderHandler, "order service")
	})
	mux.HandleFunc("/"+marketdatav1connect.MarketDataServiceName+"/", func(w http.ResponseWriter, r *http.Request) {
		serveIfUp(w, r, &p.mdHandler, "market data service")
	})
	p.mux = mux
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	p.Metadata = metadatav1connect.NewMetadataServiceClient(srv.Client(), srv.URL)
	p.Wallet = walletv1connect.NewWalletServiceClient(srv.Client(), srv.URL)

	p.Orders = orderv1connect.NewOrderServiceClient(srv.Client(), srv.URL)
	p.MarketData = marketdatav1connect.NewMarketDataServiceClient(srv.Client(), srv.URL)
	p.StartWallet()
	p.StartOrders()
	p.StartMatching()
	p.StartMarketData()
	return p
}

// ConnectServices are the services' Connect handlers, to mount on another
// server (the gateway): each answers Unavailable while its service is down.
func (p *Platform) ConnectServices() []rpcserver.Service {
	names := []string{metadatav1connect.MetadataServiceName, walletv1connect.WalletServiceName,
		orderv1connect.OrderServiceName, marketdatav1connect.MarketDataServiceName}
	out := make([]rpcserver.Service, 0, len(names))
	for _, name := range names {
		out = append(out, rpcserver.Service{Name: name, Path: "/" + name + "/", Handler: p.mux})
	}
	return out
}

// JetStream is the test's connection to the embedded server.
func (p *Platform) JetStream() jetstream.JetStream { return p.js }

// Server is the embedded server.
func (p *Platform) Server() *embeddedtest.Server { return p.server }

// serveIfUp forwards to the running service, or answers 503 (Connect:
// Unavailable) while it is down.
func serveIfUp(w http.ResponseWriter, r *http.Request, handler *atomic.Pointer[http.Handler], name string) {
	h := handler.Load()
	if h == nil {
		http.Error(w, name+" is down", http.StatusServiceUnavailable)
		return
	}
	(*h).ServeHTTP(w, r)
}

// StartWallet starts the wallet service on a new connection (it rebuilds
// its state from the journal) and waits until it is ready.
func (p *Platform) StartWallet() {
	p.t.Helper()
	if p.wallet != nil {
		p.t.Fatal("platformtest: the wallet is running")
	}
	js := p.connect("wallet")
	svc, err := wallet.New(p.cfg.wallet, wallet.Deps{
		Logger:      p.cfg.logger.With("service", "wallet"),
		JetStream:   js,
		Publisher:   streams.NewPublisher(js, streams.DefaultCatalog(), streams.WithSource("tradex/wallet")),
		Instruments: p.cache,
	})
	if err != nil {
		p.t.Fatalf("platformtest: %v", err)
	}
	p.wallet = p.run("wallet", js.Conn(), svc.Run, svc.Ready())
	_, h := svc.Handler(connect.WithInterceptors(auth.Interceptor()))
	p.walletHandler.Store(&h)
}

// KillWallet kills the wallet: its connection is closed mid-flight, then
// it is stopped; its RPCs answer Unavailable until StartWallet.
func (p *Platform) KillWallet() {
	p.t.Helper()
	p.walletHandler.Store(nil)
	p.wallet.kill(p.t)
	p.wallet = nil
}

// StartOrders starts the order service on a new connection (it loads the
// orders from its bucket and resumes the engine events) and waits until it
// is ready.
func (p *Platform) StartOrders() {
	p.t.Helper()
	if p.orders != nil {
		p.t.Fatal("platformtest: the order service is running")
	}
	js := p.connect("order")
	svc, err := order.New(p.cfg.order, order.Deps{
		Logger:      p.cfg.logger.With("service", "order"),
		JetStream:   js,
		Publisher:   streams.NewPublisher(js, streams.DefaultCatalog(), streams.WithSource("tradex/order")),
		Instruments: p.cache,
		Wallet:      p.Wallet,
	})
	if err != nil {
		p.t.Fatalf("platformtest: %v", err)
	}
	p.orders = p.run("order", js.Conn(), svc.Run, svc.Ready())
	_, h := svc.Handler(connect.WithInterceptors(auth.Interceptor()))
	p.orderHandler.Store(&h)
}

// KillOrders kills the order service: its connection is closed mid-flight,
// then it is stopped; its RPCs answer Unavailable until StartOrders.
func (p *Platform) KillOrders() {
	p.t.Helper()
	p.orderHandler.Store(nil)
	p.orders.kill(p.t)
	p.orders = nil
}

// StartMarketData starts the market data service on a new connection (it
// rebuilds from the engine events) and waits until it is ready.
func (p *Platform) StartMarketData() {
	p.t.Helper()
	if p.marketData != nil {
		p.t.Fatal("platformtest: the market data service is running")
	}
	js := p.connect("marketdata")
	svc, err := marketdata.New(p.cfg.marketData, marketdata.Deps{
		Logger: p.cfg.logger.With("service", "marketdata"), JetStream: js, Instruments: p.cache,
		Publisher: streams.NewPublisher(js, streams.DefaultCatalog(), streams.WithSource("tradex/marketdata")),
	})
	if err != nil {
		p.t.Fatalf("platformtest: %v", err)
	}
	p.marketData = p.run("marketdata", js.Conn(), svc.Run, svc.Ready())
	_, h := svc.Handler(connect.WithInterceptors(auth.Interceptor()))
	p.mdHandler.Store(&h)
}

// KillMarketData kills the market data service; its RPCs answer
// Unavailable until StartMarketData.
func (p *Platform) KillMarketData() {
	p.t.Helper()
	p.mdHandler.Store(nil)
	p.marketData.kill(p.t)
	p.marketData = nil
}

// StartMatching starts the matching engine on a new connection (it
// recovers each instrument from its snapshot and the streams).
func (p *Platform) StartMatching() {
	p.t.Helper()
	if p.matching != nil {
		p.t.Fatal("platformtest: matching is running")
	}
	js := p.connect("matching")
	svc, err := matching.New(p.cfg.matching, matching.Deps{
		Logger:    p.cfg.logger.With("service", "matching"),
		JetStream: js,
		Publisher: streams.NewPublisher(js, streams.DefaultCatalog(), streams.WithSource("tradex/matching")),
		Catalog:   streams.DefaultCatalog(),
	})
	if err != nil {
		p.t.Fatalf("platformtest: %v", err)
	}
	p.matching = p.run("matching", js.Conn(), svc.Run, svc.Ready())
}

// KillMatching kills the matching engine: its connection is closed
// mid-flight, then it is stopped.
func (p *Platform) KillMatching() {
	p.t.Helper()
	p.matching.kill(p.t)
	p.matching = nil
}

// connect opens a connection of the service's own.
func (p *Platform) connect(name string) jetstream.JetStream {
	p.t.Helper()
	nc, err := p.server.Connect(nats.Name("platformtest-" + name))
	if err != nil {
		p.t.Fatalf("platformtest: connect %s: %v", name, err)
	}
	p.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		p.t.Fatalf("platformtest: %v", err)
	}
	return js
}

// errNotStopped is a service that did not return from Run when stopped.
var errNotStopped = errors.New("did not stop")

// process is a running service.
type process struct {
	name   string
	conn   *nats.Conn // nil: the shared connection
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// run runs a service until the test ends (or it is killed) and waits for
// it to be ready.
func (p *Platform) run(name string, conn *nats.Conn, run func(context.Context) error, ready <-chan struct{}) *process {
	p.t.Helper()
	ctx, cancel := context.WithCancel(p.t.Context())
	pr := &process{name: name, conn: conn, cancel: cancel, done: make(chan error, 1)}
	go func() { pr.done <- run(ctx) }()
	p.t.Cleanup(func() {
		if err := pr.stop(); err != nil {
			p.t.Errorf("platformtest: %s: %v", name, err)
		}
	})
	select {
	case <-ready:
	case err := <-pr.done:
		pr.once.Do(func() {})
		p.t.Fatalf("platformtest: %s ended before it was ready: %v", name, err)
	case <-time.After(startTimeout):
		p.t.Fatalf("platformtest: %s not ready after %s", name, startTimeout)
	}
	return pr
}

// stop cancels the service and waits for Run; a graceful stop returns
// Run's error.
func (pr *process) stop() error {
	pr.once.Do(func() {
		pr.cancel()
		select {
		case pr.err = <-pr.done:
		case <-time.After(startTimeout):
			pr.err = fmt.Errorf("%w within %s", errNotStopped, startTimeout)
		}
	})
	return pr.err
}

// kill closes the service's connection, then stops it. Run may fail on the
// way (that is the point); only a service that does not stop fails the test.
func (pr *process) kill(t testing.TB) {
	t.Helper()
	pr.conn.Close()
	if err := pr.stop(); errors.Is(err, errNotStopped) {
		t.Fatalf("platformtest: kill %s: %v", pr.name, err)
	}
}

// settleTimeout bounds WaitSettled.
const settleTimeout = 2 * time.Minute

// WaitSettled waits until every command on engine.order.v1 has been
// executed by the matching engine and every engine event has been applied
// by the order and wallet services: every durable consumer of the two
// streams has nothing pending and nothing unacknowledged. (The market data
// service reads with an ephemeral consumer: wait for what it serves.) It fails the test
// after two minutes.
func (p *Platform) WaitSettled(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(settleTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		busy, err := p.busyConsumers(t.Context())
		if err == nil && len(busy) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("platformtest: not settled after %s: busy %v, err %v", settleTimeout, busy, err)
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatal("platformtest: test ended while waiting to settle")
		}
	}
}

// busyConsumers lists the consumers of the command and event streams that
// have messages pending or unacknowledged, commands first (their events
// come after them).
func (p *Platform) busyConsumers(ctx context.Context) ([]string, error) {
	var busy []string
	for _, topic := range []string{streams.TopicOrderCommand, streams.TopicEngineEvent} {
		st, err := p.js.Stream(ctx, streams.StreamName(topic))
		if err != nil {
			return nil, fmt.Errorf("stream of %s: %w", topic, err)
		}
		infos := st.ListConsumers(ctx)
		for ci := range infos.Info() {
			if ci.Config.Durable == "" {
				continue // ephemeral readers (market data) are not part of settling, and linger after a kill
			}
			if ci.NumPending > 0 || ci.NumAckPending > 0 || ci.NumRedelivered > 0 {
				busy = append(busy, fmt.Sprintf("%s (pending %d, unacked %d)", ci.Name, ci.NumPending, ci.NumAckPending))
			}
		}
		if err := infos.Err(); err != nil {
			return nil, fmt.Errorf("consumers of %s: %w", topic, err)
		}
		if len(busy) > 0 {
			return busy, nil
		}
	}
	return nil, nil
}
