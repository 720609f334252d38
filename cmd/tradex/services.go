package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/gateway"
	"github.com/tradex-mesh/tradex/gateway/auth"
	"github.com/tradex-mesh/tradex/gateway/wsfeed"
	"github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1/marketdatav1connect"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/order/v1/orderv1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/internal/instruments"
	"github.com/tradex-mesh/tradex/internal/rpcserver"
	"github.com/tradex-mesh/tradex/internal/telemetry"
	"github.com/tradex-mesh/tradex/services/marketdata"
	"github.com/tradex-mesh/tradex/services/matching"
	"github.com/tradex-mesh/tradex/services/metadata"
	"github.com/tradex-mesh/tradex/services/order"
	"github.com/tradex-mesh/tradex/services/wallet"
	"github.com/tradex-mesh/tradex/streams"
)

// platform is what every service is built from.
type platform struct {
	logger   *slog.Logger
	js       jetstream.JetStream
	catalog  *streams.Catalog
	replicas int
	// instruments is the process's one instrument cache, usable once serve
	// has started it.
	instruments *cacheRef
	// local holds the in-process clients of the services built so far;
	// remoteURL is where the others are served (--services-url).
	local     *localServices
	remoteURL string
	// metrics is the process's registry.
	metrics *telemetry.Metrics
}

// cacheRef hands out the instrument cache once it exists, so services can
// be built before it starts.
type cacheRef struct {
	ready chan struct{}
	cache *instruments.Cache
}

func newCacheRef() *cacheRef { return &cacheRef{ready: make(chan struct{})} }

// Get waits for the cache, then looks symbol up.
func (r *cacheRef) Get(ctx context.Context, symbol string) (*metadatav1.Instrument, error) {
	select {
	case <-r.ready:
		return r.cache.Get(ctx, symbol)
	case <-ctx.Done():
		return nil, fmt.Errorf("instrument %s: %w", symbol, ctx.Err())
	}
}

// Rules waits for the cache, then returns the trading rules of symbol.
func (r *cacheRef) Rules(ctx context.Context, symbol string) (instruments.Rules, error) {
	select {
	case <-r.ready:
		return r.cache.Rules(ctx, symbol)
	case <-ctx.Done():
		return instruments.Rules{}, fmt.Errorf("instrument %s: %w", symbol, ctx.Err())
	}
}

// runInstruments starts the cache over client and keeps it until ctx ends.
func (r *cacheRef) run(ctx context.Context, p platform, client instruments.Client) error {
	cache, err := instruments.New(ctx, client, p.js, p.catalog,
		instruments.WithLogger(p.logger.With("component", "instruments")), instruments.WithConsumerName("tradex-instruments"))
	if err != nil {
		return fmt.Errorf("instrument cache: %w", err)
	}
	r.cache = cache
	close(r.ready)
	<-ctx.Done()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := cache.Close(cctx); err != nil { // its consumers expire on their own
		p.logger.WarnContext(ctx, "instrument cache close", "err", err)
	}
	return nil
}

// component is one service as serve runs it: its background work and the
// Connect services it serves.
type component struct {
	name    string
	run     func(ctx context.Context) error
	ready   <-chan struct{}
	connect []rpcserver.Service
	// metadata, set by the metadata service, is its in-process client.
	metadata metadatav1connect.MetadataServiceHandler
	// wallet, set by the wallet service, is its in-process client.
	wallet walletv1connect.WalletServiceHandler
	// orders and marketData, set by those services, are their in-process
	// clients.
	orders     orderv1connect.OrderServiceHandler
	marketData marketdatav1connect.MarketDataServiceHandler
}

// handlerOptions are the options of every service's Connect handler: every
// call is counted in the metrics; the gateway puts a caller's principal in
// the context, and auth.Interceptor keeps a user to their own account
// (calls without one, on the internal port, pass unchanged).
func (p platform) handlerOptions() connect.HandlerOption {
	return connect.WithHandlerOptions(
		connect.WithInterceptors(p.metrics.Interceptor(), auth.Interceptor()),
		connect.WithRecover(func(ctx context.Context, spec connect.Spec, _ http.Header, r any) error {
			p.logger.ErrorContext(ctx, "handler panicked", "procedure", spec.Procedure, "panic", r, "stack", string(debug.Stack()))
			return connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}),
	)
}

// localServices are the in-process clients of the services built so far,
// for the services built after them.
type localServices struct {
	wallet walletv1connect.WalletServiceHandler
}

// serviceBuilder builds one service from the platform.
type serviceBuilder struct {
	name  string
	build func(p platform) (component, error)
}

// serviceBuilders lists every service tradex can run, in start order.
func serviceBuilders() []serviceBuilder {
	return []serviceBuilder{
		{name: "metadata", build: buildMetadata},
		{name: "wallet", build: buildWallet},
		{name: "order", build: buildOrder},
		{name: "matching", build: buildMatching},
		{name: "marketdata", build: buildMarketData},
	}
}

// selectServices resolves the --services list ("all" or names) to builders.
func selectServices(list string) ([]serviceBuilder, error) {
	all := serviceBuilders()
	if strings.TrimSpace(list) == "all" {
		return all, nil
	}
	names := make([]string, 0, len(all))
	for _, b := range all {
		names = append(names, b.name)
	}
	var out []serviceBuilder
	for _, want := range strings.Split(list, ",") {
		want = strings.TrimSpace(want)
		if want == "" {
			continue
		}
		i := slices.Index(names, want)
		if i < 0 {
			return nil, fmt.Errorf("--services: unknown service %q (available: all, %s)", want, strings.Join(names, ", "))
		}
		if !slices.ContainsFunc(out, func(b serviceBuilder) bool { return b.name == want }) {
			out = append(out, all[i])
		}
	}
	return out, nil
}

func buildMetadata(p platform) (component, error) {
	cfg := metadata.Default()
	cfg.Replicas = p.replicas
	svc, err := metadata.New(cfg, metadata.Deps{
		Logger:    p.logger.With("service", "metadata"),
		JetStream: p.js,
		Publisher: streams.NewPublisher(p.js, p.catalog, streams.WithSource("tradex/metadata")),
	})
	if err != nil {
		return component{}, fmt.Errorf("metadata: %w", err)
	}
	path, h := svc.Handler(p.handlerOptions())
	return component{
		name:     "metadata",
		run:      svc.Run,
		ready:    svc.Ready(),
		connect:  []rpcserver.Service{{Name: metadatav1connect.MetadataServiceName, Path: path, Handler: h}},
		metadata: svc.InProcess(),
	}, nil
}

func buildWallet(p platform) (component, error) {
	cfg := wallet.Default()
	cfg.Replicas = p.replicas
	svc, err := wallet.New(cfg, wallet.Deps{
		Logger:      p.logger.With("service", "wallet"),
		JetStream:   p.js,
		Publisher:   streams.NewPublisher(p.js, p.catalog, streams.WithSource("tradex/wallet")),
		Instruments: p.instruments,
	})
	if err != nil {
		return component{}, fmt.Errorf("wallet: %w", err)
	}
	path, h := svc.Handler(p.handlerOptions())
	return component{
		name:    "wallet",
		run:     svc.Run,
		ready:   svc.Ready(),
		connect: []rpcserver.Service{{Name: walletv1connect.WalletServiceName, Path: path, Handler: h}},
		wallet:  svc.InProcess(),
	}, nil
}

// buildOrder builds the order service. Its wallet is the in-process wallet
// when this process runs it, else a Connect client at --services-url.
func buildOrder(p platform) (component, error) {
	var w order.Wallet = p.local.wallet
	if w == nil {
		w = walletv1connect.NewWalletServiceClient(http.DefaultClient, p.remoteURL)
	}
	cfg := order.Default()
	cfg.Replicas = p.replicas
	svc, err := order.New(cfg, order.Deps{
		Logger:      p.logger.With("service", "order"),
		JetStream:   p.js,
		Publisher:   streams.NewPublisher(p.js, p.catalog, streams.WithSource("tradex/order")),
		Instruments: p.instruments,
		Wallet:      w,
	})
	if err != nil {
		return component{}, fmt.Errorf("order: %w", err)
	}
	path, h := svc.Handler(p.handlerOptions())
	return component{
		name:    "order",
		run:     svc.Run,
		ready:   svc.Ready(),
		connect: []rpcserver.Service{{Name: orderv1connect.OrderServiceName, Path: path, Handler: h}},
		orders:  svc.InProcess(),
	}, nil
}

func buildMatching(p platform) (component, error) {
	cfg := matching.Default()
	cfg.Replicas = p.replicas
	svc, err := matching.New(cfg, matching.Deps{
		Logger:    p.logger.With("service", "matching"),
		JetStream: p.js,
		Publisher: streams.NewPublisher(p.js, p.catalog, streams.WithSource("tradex/matching")),
		Catalog:   p.catalog,
	})
	if err != nil {
		return component{}, fmt.Errorf("matching: %w", err)
	}
	return component{name: "matching", run: svc.Run, ready: svc.Ready()}, nil
}

func buildMarketData(p platform) (component, error) {
	cfg := marketdata.Default()
	cfg.Replicas = p.replicas
	svc, err := marketdata.New(cfg, marketdata.Deps{
		Logger:      p.logger.With("service", "marketdata"),
		JetStream:   p.js,
		Instruments: p.instruments,
		Publisher:   streams.NewPublisher(p.js, p.catalog, streams.WithSource("tradex/marketdata")),
	})
	if err != nil {
		return component{}, fmt.Errorf("marketdata: %w", err)
	}
	path, h := svc.Handler(p.handlerOptions())
	return component{
		name:       "marketdata",
		run:        svc.Run,
		ready:      svc.Ready(),
		connect:    []rpcserver.Service{{Name: marketdatav1connect.MarketDataServiceName, Path: path, Handler: h}},
		marketData: svc.InProcess(),
	}, nil
}

// metadataClient is the in-process metadata service when this process runs
// it, else a Connect client of the one at url.
func metadataClient(components []component, url string) instruments.Client {
	return gatewayServices(components, url).Metadata
}

// gatewayServices are the services REST calls: in process for those this
// process runs, else Connect clients of the ones at url.
func gatewayServices(components []component, url string) gateway.Services {
	s := gateway.Services{
		Orders:     orderv1connect.NewOrderServiceClient(http.DefaultClient, url),
		Wallet:     walletv1connect.NewWalletServiceClient(http.DefaultClient, url),
		Metadata:   metadatav1connect.NewMetadataServiceClient(http.DefaultClient, url),
		MarketData: marketdatav1connect.NewMarketDataServiceClient(http.DefaultClient, url),
	}
	for _, c := range components {
		switch {
		case c.metadata != nil:
			s.Metadata = c.metadata
		case c.wallet != nil:
			s.Wallet = c.wallet
		case c.orders != nil:
			s.Orders = c.orders
		case c.marketData != nil:
			s.MarketData = c.marketData
		}
	}
	return s
}

// feedDeps are the WebSocket feed's upstreams: Connect clients (the feed
// reads server streams) of this process's internal port for the services
// it runs, else of the ones at servicesURL.
func feedDeps(components []component, internalURL, servicesURL string, v auth.Verifier, logger *slog.Logger) wsfeed.Deps {
	urlOf := func(local func(component) bool) string {
		for _, c := range components {
			if local(c) {
				return internalURL
			}
		}
		return servicesURL
	}
	return wsfeed.Deps{
		MarketData: marketdatav1connect.NewMarketDataServiceClient(http.DefaultClient,
			urlOf(func(c component) bool { return c.marketData != nil })),
		Orders:   orderv1connect.NewOrderServiceClient(http.DefaultClient, urlOf(func(c component) bool { return c.orders != nil })),
		Wallet:   walletv1connect.NewWalletServiceClient(http.DefaultClient, urlOf(func(c component) bool { return c.wallet != nil })),
		Verifier: v,
		Logger:   logger,
	}
}
