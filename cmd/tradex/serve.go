package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/gateway"
	"github.com/tradex-mesh/tradex/gateway/auth"
	"github.com/tradex-mesh/tradex/gateway/wsfeed"
	"github.com/tradex-mesh/tradex/internal/rpcserver"
	"github.com/tradex-mesh/tradex/internal/telemetry"
	"github.com/tradex-mesh/tradex/streams"
)

// endpoints are the addresses serve actually listens on, once it does.
type endpoints struct {
	HTTP string
	GRPC string
	// NATS is the embedded server's client URL, or the external URLs.
	NATS string
}

// serve runs the platform until ctx is cancelled, then stops it gracefully.
// onReady, when not nil, is called once every listener accepts connections.
func serve(ctx context.Context, logger *slog.Logger, cfg serveConfig, onReady func(endpoints)) error {
	started := time.Now()

	broker, err := startBroker(ctx, logger, cfg)
	if err != nil {
		return err
	}
	defer broker.close(context.WithoutCancel(ctx), logger, cfg.ShutdownTimeout) // also on early returns

	js, err := jetstream.New(broker.conn)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	catalog := streams.DefaultCatalog()
	replicas := cfg.Replicas
	if replicas == 0 {
		replicas = autoReplicas(broker.conn)
	}
	if err := streams.EnsureStreams(ctx, js, catalog, streams.WithReplicas(replicas)); err != nil {
		return fmt.Errorf("provision streams: %w", err)
	}
	if err := streams.PublishSchemas(ctx, js, catalog, streams.WithSchemaReplicas(replicas)); err != nil {
		return fmt.Errorf("publish schemas: %w", err)
	}

	builders, err := selectServices(cfg.Services)
	if err != nil {
		return err
	}
	p := platform{logger: logger, js: js, catalog: catalog, replicas: replicas, instruments: newCacheRef(),
		local: &localServices{}, remoteURL: cfg.ServicesURL, metrics: telemetry.New()}
	var components []component
	var connectServices []rpcserver.Service
	for _, b := range builders {
		c, err := b.build(p)
		if err != nil {
			return err
		}
		if c.wallet != nil {
			p.local.wallet = c.wallet
		}
		components = append(components, c)
		connectServices = append(connectServices, c.connect...)
	}

	httpLn, err := listen(ctx, "--http-addr", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	grpcLn, err := listen(ctx, "--grpc-addr", cfg.GRPCAddr)
	if err != nil {
		_ = httpLn.Close()
		return err
	}

	adminToken, err := adminToken(cfg)
	if err != nil {
		_, _ = httpLn.Close(), grpcLn.Close()
		return err
	}
	verifier := auth.Dev{AdminToken: adminToken}
	feedCfg := wsfeed.Default()
	feedCfg.Origins = splitList(cfg.AllowedOrigins)
	feed, err := wsfeed.New(feedCfg, feedDeps(components, loopbackURL(grpcLn.Addr()), cfg.ServicesURL, verifier,
		logger.With("component", "wsfeed")))
	if err != nil {
		_, _ = httpLn.Close(), grpcLn.Close()
		return err
	}
	p.metrics.GaugeFunc("tradex_ws_connections", "Open WebSocket connections.", func() float64 { return float64(feed.Stats().Connections) })
	p.metrics.GaugeFunc("tradex_ws_upstreams", "Upstream streams the WebSocket feed reads (one per channel and symbol in use).",
		func() float64 { return float64(feed.Stats().Upstreams) })
	p.metrics.CounterFunc("tradex_ws_slow_consumers_total", "WebSocket connections dropped for a full send queue.",
		func() float64 { return float64(feed.Stats().SlowConsumers) })
	gwCfg := gateway.Default()
	gwCfg.AllowedOrigins = splitList(cfg.AllowedOrigins)
	gwCfg.TrustedProxies = splitList(cfg.TrustedProxies)
	gwCfg.RateLimit = gateway.RateLimit{PerSecond: cfg.RateLimit, Burst: cfg.RateBurst}
	gw, err := gateway.New(gwCfg, gateway.Deps{ //nolint:contextcheck // handlers use each request's context
		Logger:    logger.With("component", "gateway"),
		Services:  gatewayServices(components, cfg.ServicesURL),
		Verifier:  verifier,
		Connect:   connectServices,
		WebSocket: feed.Handler(),
		Metrics:   p.metrics,
		Ready: map[string]gateway.Check{
			"nats": func(ctx context.Context) error {
				if !broker.conn.IsConnected() {
					return fmt.Errorf("nats: %s", broker.conn.Status())
				}
				_, err := js.AccountInfo(ctx)
				return err
			},
		},
	})
	if err != nil {
		_, _ = httpLn.Close(), grpcLn.Close()
		return err
	}
	rpc := rpcserver.New(logger.With("component", "rpcserver"), connectServices...)

	g, gctx := errgroup.WithContext(ctx)
	metadataFor := metadataClient(components, cfg.ServicesURL)
	g.Go(func() error { return p.instruments.run(gctx, p, metadataFor) })
	for _, c := range components {
		g.Go(func() error {
			err := c.run(gctx)
			if stoppedByShutdown := gctx.Err() != nil && errors.Is(err, context.Canceled); err != nil && !stoppedByShutdown {
				return fmt.Errorf("service %s: %w", c.name, err)
			}
			return nil
		})
	}
	g.Go(func() error { return gw.Serve(httpLn) })
	g.Go(func() error { return rpc.Serve(grpcLn) })
	g.Go(func() error {
		<-gctx.Done()
		logger.InfoContext(ctx, "shutting down", "timeout", cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		return errors.Join(feed.Shutdown(sctx), gw.Shutdown(sctx), rpc.Shutdown(sctx))
	})

	for _, c := range components {
		select {
		case <-c.ready:
		case <-gctx.Done():
			_ = g.Wait()
			return fmt.Errorf("service %s did not start: %w", c.name, context.Cause(gctx))
		}
	}
	names := make([]string, 0, len(components))
	for _, c := range components {
		names = append(names, c.name)
	}

	ep := endpoints{HTTP: httpLn.Addr().String(), GRPC: grpcLn.Addr().String(), NATS: broker.url}
	logger.InfoContext(ctx, "tradex started",
		"http", ep.HTTP, "grpc", ep.GRPC, "nats", ep.NATS, "embedded", broker.server != nil,
		"data_dir", broker.storeDir, "auth", "dev (bearer token = account id; admin token in --admin-token or "+filepath.Join(cfg.DataDir, adminTokenFile)+")", "sync", cfg.Sync, "streams", len(catalog.Topics()), "replicas", replicas, "services", names, "startup", time.Since(started).Round(time.Millisecond))
	if onReady != nil {
		onReady(ep)
	}

	err = g.Wait()
	broker.close(context.WithoutCancel(ctx), logger, cfg.ShutdownTimeout)
	if err != nil {
		return err
	}
	logger.InfoContext(ctx, "tradex stopped")
	return nil
}

// autoReplicas is 3 when connected to a cluster of three or more servers
// (as the server advertises them), else 1.
func autoReplicas(nc *nats.Conn) int {
	if nc.ConnectedClusterName() != "" && len(nc.Servers()) >= 3 {
		return 3
	}
	return 1
}

// listen binds addr, naming the flag it came from when that fails.
func listen(ctx context.Context, flagName, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", flagName, addr, err)
	}
	return ln, nil
}

// broker is the NATS connection serve runs on, and the embedded server
// behind it when there is one.
type broker struct {
	server   *embedded.Server
	conn     *nats.Conn
	url      string
	storeDir string
	closed   bool
}

// startBroker starts the embedded server (unless cfg.NATSURL points at an
// external cluster) and connects to it.
func startBroker(ctx context.Context, logger *slog.Logger, cfg serveConfig) (*broker, error) {
	connOpts := []nats.Option{
		nats.Name("tradex"),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: we closed it ourselves
				logger.WarnContext(ctx, "nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.InfoContext(ctx, "nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
	}
	if cfg.NATSURL != "" {
		nc, err := nats.Connect(cfg.NATSURL, connOpts...)
		if err != nil {
			return nil, fmt.Errorf("--nats: connect to %s: %w", cfg.NATSURL, err)
		}
		return &broker{conn: nc, url: cfg.NATSURL}, nil
	}

	opts := embedded.Options{
		StoreDir: filepath.Join(cfg.DataDir, "nats"),
		Port:     embedded.NoListener,
		Logger:   natsServerLogger(ctx, logger),
	}
	if cfg.Sync == "periodic" {
		opts.Sync = embedded.SyncPeriodic
	}
	if cfg.NATSListen != "none" {
		host, port, _ := net.SplitHostPort(cfg.NATSListen) // validated with the flags
		opts.Host = host
		opts.Port, _ = strconv.Atoi(port)
	}
	srv, err := embedded.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	nc, err := srv.Connect(connOpts...)
	if err != nil {
		_ = srv.Shutdown(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("embedded nats: connect: %w", err)
	}
	url := srv.ClientURL()
	if url == "" {
		url = "in-process"
	}
	return &broker{server: srv, conn: nc, url: url, storeDir: srv.StoreDir()}, nil
}

// close closes the connection and stops the embedded server, if any; only
// the first call does anything. ctx must outlive the cancellation that
// started the shutdown.
func (b *broker) close(ctx context.Context, logger *slog.Logger, timeout time.Duration) {
	if b.closed {
		return
	}
	b.closed = true
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	b.conn.Close()
	if b.server == nil {
		return
	}
	if err := b.server.Shutdown(ctx); err != nil {
		logger.ErrorContext(ctx, "embedded nats shutdown", "err", err)
	}
}

// adminTokenFile holds the dev verifier's admin token in the data folder.
const adminTokenFile = "admin-token"

// adminToken is --admin-token, else the token kept in the data folder
// (created with a random one the first time, readable by its owner only).
func adminToken(cfg serveConfig) (string, error) {
	if cfg.AdminToken != "" {
		return cfg.AdminToken, nil
	}
	path := filepath.Join(cfg.DataDir, adminTokenFile)
	if b, err := os.ReadFile(path); err == nil { //nolint:gosec // the operator's own --data-dir
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("--admin-token: read %s: %w", path, err)
	}
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	tok := hex.EncodeToString(b[:])
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return "", fmt.Errorf("--admin-token: %w", err)
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("--admin-token: write %s: %w", path, err)
	}
	return tok, nil
}

// loopbackURL is the http:// URL of a listener as this process reaches it
// (an unspecified host, as in ":8081", is the loopback address).
func loopbackURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
