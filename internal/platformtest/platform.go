// Package platformtest runs the trading core in process for a test: an
// embedded JetStream and the metadata, wallet, order, matching and market
// data services built by internal/platform exactly as `tradex serve` builds
// them (the same wiring, interceptors and per-service connections), behind
// one loopback HTTP server that speaks Connect (like the internal port).
//
//	p := platformtest.New(t)
//	p.Wallet.Deposit(ctx, ...)
//	p.Orders.PlaceOrder(ctx, ...)
//	p.WaitSettled(t)
//
// All it adds to the platform is killing and restarting a service
// ([Platform.KillWallet], [Platform.KillOrders], [Platform.KillMatching],
// [Platform.KillMarketData]: the service's own connection is closed before
// it is stopped, so nothing is drained or acknowledged) and starting it
// again from the streams ([Platform.StartWallet], ...). While a service is
// down its RPCs answer Unavailable, in process as over HTTP.
package platformtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	"github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1/authv1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1/marketdatav1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/order/v1/orderv1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/user/v1/userv1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/internal/platform"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/internal/rpcserver"
	"github.com/tradex-mesh/tradex/services/auth/password"
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
	metadata   metadata.Config
	orderClock func() time.Time
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

// WithOrderClock gives the order service a clock of the test's (it
// decides when funding intervals end); default time.Now.
func WithOrderClock(now func() time.Time) Option { return func(c *config) { c.orderClock = now } }

// WithMarketDataConfig changes the market data service's configuration
// (default marketdata.Default()); it applies to every start.
func WithMarketDataConfig(f func(*marketdata.Config)) Option {
	return func(c *config) { f(&c.marketData) }
}

// WithMetadataConfig changes the metadata service's configuration (its
// seed instruments, for one).
func WithMetadataConfig(f func(*metadata.Config)) Option { return func(c *config) { f(&c.metadata) } }

// WithMatchingConfig changes the matching engine's configuration (default
// matching.Default()); it applies to every start.
func WithMatchingConfig(f func(*matching.Config)) Option { return func(c *config) { f(&c.matching) } }

// Platform is a running trading core. Its clients are safe for concurrent
// use; Kill and Start calls must come from one goroutine at a time.
type Platform struct {
	t      testing.TB
	server *embeddedtest.Server
	js     jetstream.JetStream
	core   *platform.Platform
	creds  platform.Credentials

	// URL is the base URL of the Connect server of every service.
	URL string
	// Metadata, Auth, User, Wallet, Orders and MarketData are Connect
	// clients of the services over HTTP/1.1 (Connect protocol).
	Metadata   metadatav1connect.MetadataServiceClient
	Auth       authv1connect.AuthServiceClient
	User       userv1connect.UserServiceClient
	Wallet     walletv1connect.WalletServiceClient
	Orders     orderv1connect.OrderServiceClient
	MarketData marketdatav1connect.MarketDataServiceClient
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
		metadata:   metadata.Default(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	creds := platform.NewCredentials()
	users, err := creds.EmbeddedUsers(streams.DefaultCatalog())
	if err != nil {
		t.Fatalf("platformtest: %v", err)
	}
	s := embeddedtest.New(t, embeddedtest.WithSync(cfg.sync), embeddedtest.WithUsers(users...))
	pcfg := platform.Default()
	pcfg.Wallet, pcfg.Order, pcfg.Matching, pcfg.MarketData = cfg.wallet, cfg.order, cfg.matching, cfg.marketData
	pcfg.Metadata = cfg.metadata
	pcfg.Auth.MasterKey = make([]byte, 32)
	_, _ = rand.Read(pcfg.Auth.MasterKey)                                 // crypto/rand.Read never fails
	pcfg.Auth.Password = password.Params{Memory: 64, Time: 1, Threads: 1} // fast; the password package checks the real costs
	core, err := platform.New(pcfg, platform.Deps{
		Logger:     cfg.logger,
		OrderClock: cfg.orderClock,
		Dial: func(name string) (*nats.Conn, error) { // Stop closes them
			auth, err := creds.ConnectOptions(name)
			if err != nil {
				return nil, err
			}
			return s.Connect(append(auth, nats.Name(name))...)
		},
	})
	if err != nil {
		t.Fatalf("platformtest: %v", err)
	}
	p := &Platform{t: t, server: s, js: s.JetStream(), core: core, creds: creds}
	t.Cleanup(func() {
		if err := core.Stop(context.WithoutCancel(t.Context())); err != nil {
			t.Errorf("platformtest: stop: %v", err)
		}
	})
	if err := core.Start(t.Context()); err != nil {
		t.Fatalf("platformtest: start: %v", err)
	}
	p.waitReady()

	mux := http.NewServeMux()
	for _, svc := range core.ConnectServices() {
		mux.Handle(svc.Path, svc.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	p.Metadata = metadatav1connect.NewMetadataServiceClient(srv.Client(), srv.URL)
	p.Auth = authv1connect.NewAuthServiceClient(srv.Client(), srv.URL)
	p.User = userv1connect.NewUserServiceClient(srv.Client(), srv.URL)
	p.Wallet = walletv1connect.NewWalletServiceClient(srv.Client(), srv.URL)
	p.Orders = orderv1connect.NewOrderServiceClient(srv.Client(), srv.URL)
	p.MarketData = marketdatav1connect.NewMarketDataServiceClient(srv.Client(), srv.URL)
	return p
}

// Connect opens a connection to the embedded server as one of the
// platform's NATS users (platform.UserNames), closed when the test ends.
func (p *Platform) Connect(user string) *nats.Conn {
	p.t.Helper()
	auth, err := p.creds.ConnectOptions(user)
	if err != nil {
		p.t.Fatalf("platformtest: %v", err)
	}
	nc, err := p.server.Connect(append(auth, nats.Name(user+"-test"))...)
	if err != nil {
		p.t.Fatalf("platformtest: connect as %s: %v", user, err)
	}
	p.t.Cleanup(nc.Close)
	return nc
}

// Core is the platform the test runs (readiness, wiring, metrics).
func (p *Platform) Core() *platform.Platform { return p.core }

// ConnectServices are the services' Connect handlers, to mount on another
// server (the gateway): each answers Unavailable while its service is down.
func (p *Platform) ConnectServices() []rpcserver.Service { return p.core.ConnectServices() }

// JetStream is the test's connection to the embedded server.
func (p *Platform) JetStream() jetstream.JetStream { return p.js }

// Server is the embedded server.
func (p *Platform) Server() *embeddedtest.Server { return p.server }

// waitReady waits until the named services (all without names) are ready.
func (p *Platform) waitReady(names ...string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.t.Context(), startTimeout)
	defer cancel()
	if err := p.core.WaitReady(ctx, names...); err != nil {
		p.t.Fatalf("platformtest: %v", err)
	}
}

// start starts a killed service again on a new connection (it rebuilds
// its state from the streams) and waits until it is ready.
func (p *Platform) start(name string) {
	p.t.Helper()
	if err := p.core.StartService(p.t.Context(), name); err != nil {
		p.t.Fatalf("platformtest: %v", err)
	}
	p.waitReady(name)
}

// kill closes the service's connection mid-flight, then stops it; its RPCs
// answer Unavailable until it is started again.
func (p *Platform) kill(name string) {
	p.t.Helper()
	if err := p.core.KillService(p.t.Context(), name); err != nil {
		p.t.Fatalf("platformtest: kill %s: %v", name, err)
	}
}

// StartWallet starts the wallet again after KillWallet.
func (p *Platform) StartWallet() { p.t.Helper(); p.start(platform.Wallet) }

// KillWallet kills the wallet.
func (p *Platform) KillWallet() { p.t.Helper(); p.kill(platform.Wallet) }

// StartOrders starts the order service again after KillOrders (it loads
// the orders from its bucket and resumes the engine events).
func (p *Platform) StartOrders() { p.t.Helper(); p.start(platform.Order) }

// KillOrders kills the order service.
func (p *Platform) KillOrders() { p.t.Helper(); p.kill(platform.Order) }

// StartMarketData starts the market data service again after
// KillMarketData (it rebuilds from the engine events).
func (p *Platform) StartMarketData() { p.t.Helper(); p.start(platform.MarketData) }

// KillMarketData kills the market data service.
func (p *Platform) KillMarketData() { p.t.Helper(); p.kill(platform.MarketData) }

// StartMatching starts the matching engine again after KillMatching (it
// recovers each instrument from its snapshot and the streams).
func (p *Platform) StartMatching() { p.t.Helper(); p.start(platform.Matching) }

// KillMatching kills the matching engine.
func (p *Platform) KillMatching() { p.t.Helper(); p.kill(platform.Matching) }

// settleTimeout bounds WaitSettled.
const settleTimeout = 2 * time.Minute

// WaitSettled waits until every command on engine.order.v1 has been
// executed by the matching engine and every engine event has been applied
// by the order and wallet services: every durable consumer of the two
// streams has nothing pending and nothing unacknowledged. (The market data
// service reads with an ephemeral consumer: wait for what it serves.) It
// fails the test after two minutes.
func (p *Platform) WaitSettled(t testing.TB) {
	t.Helper()
	polltest.Until(t, "platformtest: settled", func() error {
		busy, err := p.busyConsumers(t.Context())
		if err == nil && len(busy) > 0 {
			err = fmt.Errorf("busy %v", busy)
		}
		return err
	}, polltest.WithTimeout(settleTimeout))
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
