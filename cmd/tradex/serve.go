package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/gateway"
	"github.com/tradex-mesh/tradex/gateway/auth"
	"github.com/tradex-mesh/tradex/gateway/wsfeed"
	"github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1/marketdatav1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/order/v1/orderv1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/internal/platform"
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
// onReady, when not nil, is called once every listener accepts connections
// and every service is ready.
func serve(ctx context.Context, logger *slog.Logger, cfg serveConfig, onReady func(endpoints)) error {
	started := time.Now()
	lt, err := loadListenerTLS(ctx, logger, cfg)
	if err != nil {
		return err
	}
	pprofLn, err := listenPprof(ctx, cfg.PprofAddr)
	if err != nil {
		return err
	}
	if pprofLn != nil {
		defer func() { _ = pprofLn.Close() }() // on early returns; closed already otherwise
	}
	bcfg, err := brokerConfig(ctx, logger, cfg)
	if err != nil {
		return err
	}
	broker, err := platform.StartBroker(ctx, logger, bcfg)
	if errors.Is(err, embedded.ErrStoreEncrypted) {
		return fmt.Errorf("%w (the store's key: --nats-encrypt with --nats-store-key, default <data-dir>/%s; after a rotation also --nats-store-old-key)", err, natsStoreKeyFile)
	}
	if err != nil {
		return err
	}
	defer func() { // also on early returns
		if err := broker.Close(context.WithoutCancel(ctx), cfg.ShutdownTimeout); err != nil {
			logger.ErrorContext(ctx, "broker close", "err", err)
		}
	}()
	internalToken, err := tokenFile(cfg.InternalToken, cfg.DataDir, internalTokenFile, "--internal-token")
	if err != nil {
		return err
	}
	internal := internalHTTPClient(internalToken, lt.InternalClient)
	tracing, stopTracing, err := telemetry.NewTracing(ctx, telemetry.TracingConfig{
		Endpoint: cfg.OTLPEndpoint, SampleRatio: cfg.TraceSample, Service: "tradex", Version: moduleVersion(),
	})
	if err != nil {
		return fmt.Errorf("--otlp-endpoint: %w", err)
	}
	defer func() { // after the platform stopped: its last spans are flushed
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		if err := stopTracing(sctx); err != nil {
			logger.WarnContext(ctx, "tracing", "err", err)
		}
	}()
	p, err := newPlatform(cfg, broker, internal, tracing, logger)
	if err != nil {
		return err
	}
	if err := p.Start(ctx); err != nil {
		return errors.Join(err, p.Stop(context.WithoutCancel(ctx)))
	}
	s, err := newServers(ctx, cfg, p, internalToken, lt, logger)
	if err != nil {
		return errors.Join(err, p.Stop(context.WithoutCancel(ctx)))
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.Wait(gctx) })
	g.Go(func() error { return s.gateway.Serve(s.httpLn) })
	g.Go(func() error { return s.rpc.Serve(s.grpcLn) })
	if pprofLn != nil {
		g.Go(func() error { return servePprof(gctx, logger, pprofLn, internalToken) })
	}
	if s.issued != nil {
		g.Go(func() error {
			if err := p.FollowUsers(gctx, s.issued.UserChanged); err != nil && gctx.Err() == nil {
				return fmt.Errorf("follow users: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		logger.InfoContext(ctx, "shutting down", "timeout", cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		return errors.Join(s.shutdown(sctx), p.Stop(sctx))
	})

	if err := p.WaitReady(gctx); err != nil {
		return errors.Join(err, g.Wait())
	}
	if s.bootstrapped != nil {
		if err := bootstrapAdmin(ctx, logger, p, cfg.DataDir); err != nil {
			logger.ErrorContext(ctx, "bootstrap admin", "err", err)
		}
		close(s.bootstrapped) // ready even if it failed: the platform serves, the log says why
	}
	if cfg.Kafka.enabled() {
		if err := startBridge(gctx, g, logger, cfg, broker, p); err != nil {
			return errors.Join(err, g.Wait())
		}
	}
	ep := endpoints{HTTP: s.httpLn.Addr().String(), GRPC: s.grpcLn.Addr().String(), NATS: broker.URL()}
	logStarted(ctx, logger, cfg, p, broker, ep, time.Since(started))
	if onReady != nil {
		onReady(ep)
	}
	if err := g.Wait(); err != nil {
		return err
	}
	logger.InfoContext(ctx, "tradex stopped")
	return nil
}

// startBridge runs the Kafka bridge in g, logged in to NATS as its own
// user, its metrics on the gateway's /metrics, its schema registry (when
// asked for) with the password kept in the data folder.
func startBridge(ctx context.Context, g *errgroup.Group, logger *slog.Logger, cfg serveConfig, broker *platform.Broker, p *platform.Platform) error {
	kc := cfg.Kafka
	if kc.RegistryAddr != "" && kc.RegistryPasswordFile == "" {
		kc.RegistryPasswordFile = filepath.Join(cfg.DataDir, schemaRegistryPasswordFile)
	}
	nc, err := broker.Dial(platform.UserKafkaBridge)
	if err != nil {
		return fmt.Errorf("kafka bridge: %w", err)
	}
	client, err := streams.Connect(nc, streams.DefaultCatalog())
	if err == nil {
		err = runKafkaBridge(ctx, g, logger, kc, client, p.Metrics().Registerer())
	}
	if err != nil {
		nc.Close()
		return err
	}
	g.Go(func() error {
		<-ctx.Done()
		nc.Close()
		return nil
	})
	return nil
}

// natsCredentialsFile holds the platform's NATS users in the data folder.
const natsCredentialsFile = "nats-credentials.json"

// brokerConfig is where serve's NATS is, --nats or the embedded server,
// and the credentials its connections log in with.
func brokerConfig(ctx context.Context, logger *slog.Logger, cfg serveConfig) (platform.BrokerConfig, error) {
	b := platform.BrokerConfig{URL: cfg.NATSURL, StoreDir: filepath.Join(cfg.DataDir, "nats"),
		ServerLog: natsServerLogger(ctx, logger)}
	if cfg.Sync == "periodic" {
		b.Sync = embedded.SyncPeriodic
	}
	if cfg.NATSListen != "none" {
		b.Listen = cfg.NATSListen
	}
	var err error
	if b.TLS, b.ClientTLS, err = natsTLS(cfg); err != nil {
		return b, err
	}
	if b.Encryption, err = storeEncryption(cfg); err != nil {
		return b, err
	}
	if b.Encryption != nil && cfg.NATSStoreKey == "" {
		logger.WarnContext(ctx, "the store key is kept next to the data it encrypts: only copies of the store without it are protected; give --nats-store-key on another volume",
			"key", filepath.Join(cfg.DataDir, natsStoreKeyFile))
	}
	switch {
	case cfg.NATSCredentials != "":
		b.Credentials, err = platform.LoadCredentials(cfg.NATSCredentials)
	case cfg.NATSURL == "":
		b.Credentials, err = platform.EnsureCredentials(filepath.Join(cfg.DataDir, natsCredentialsFile))
	}
	if err != nil {
		return b, fmt.Errorf("--nats-credentials: %w", err)
	}
	return b, nil
}

// newPlatform builds the services of --services; internal reaches the
// services of other processes (their internal ports).
func newPlatform(cfg serveConfig, broker *platform.Broker, internal *http.Client, tracing trace.TracerProvider, logger *slog.Logger) (*platform.Platform, error) {
	pcfg := platform.Default()
	services, err := platform.ParseServices(cfg.Services)
	if err != nil {
		return nil, fmt.Errorf("--services: %w", err)
	}
	pcfg.Services, pcfg.RemoteURL, pcfg.Replicas = services, cfg.ServicesURL, cfg.Replicas
	if slices.Contains(services, platform.Auth) {
		if pcfg.Auth.MasterKey, err = masterKey(cfg.AuthMasterKey, cfg.DataDir); err != nil {
			return nil, err
		}
	}
	return platform.New(pcfg, platform.Deps{Dial: broker.Dial, Logger: logger, HTTPClient: internal, TracerProvider: tracing})
}

// logStarted logs what serve started, once every service is ready.
func logStarted(ctx context.Context, logger *slog.Logger, cfg serveConfig, p *platform.Platform, broker *platform.Broker, ep endpoints, took time.Duration) {
	wiring := make([]string, 0, len(p.Wiring()))
	for _, l := range p.Wiring() {
		wiring = append(wiring, l.String())
	}
	logger.InfoContext(ctx, "tradex started",
		"http", ep.HTTP, "grpc", ep.GRPC, "nats", ep.NATS, "embedded", broker.Embedded(), "data_dir", broker.StoreDir(),
		"auth", authMode(cfg),
		"https", cfg.TLSCert != "" || cfg.TLSSelfSigned, "internal_tls", tlsMode(cfg.InternalTLSCert, cfg.InternalClientCA), "nats_tls", cfg.NATSTLSCert != "" || cfg.NATSCA != "", "tracing", cfg.OTLPEndpoint != "", "store_encrypted", cfg.encryptsStore(),
		"sync", cfg.Sync, "streams", len(p.Catalog().Topics()), "replicas", p.Replicas(), "services", p.Services(),
		"wiring", strings.Join(wiring, ", "), "startup", took.Round(time.Millisecond))
}

// tlsMode names how a listener speaks: "off", "tls" (a certificate) or
// "mtls" (and client certificates).
func tlsMode(cert, clientCA string) string {
	switch {
	case clientCA != "":
		return "mtls"
	case cert != "":
		return "tls"
	default:
		return "off"
	}
}

// servers are serve's listeners and what serves them.
type servers struct {
	httpLn, grpcLn net.Listener
	gateway        *gateway.Gateway
	feed           *wsfeed.Feed
	rpc            *rpcserver.Server
	// issued is the verifier of the auth service's credentials (nil with
	// --auth dev); the platform feeds it the users it disables.
	issued *auth.Issued
	// bootstrapped is closed once the bootstrap admin exists (or was not
	// needed): /readyz's "bootstrap" check waits for it, so that a script
	// that waits for readiness finds the credential file. Nil when serve
	// makes no bootstrap admin.
	bootstrapped chan struct{}
}

// newServers binds both ports and builds the gateway (REST, /ws,
// Connect-Web, probes) and the internal Connect server over p, each over
// TLS when lt says so.
func newServers(ctx context.Context, cfg serveConfig, p *platform.Platform, internalToken string, lt listenerTLS, logger *slog.Logger) (*servers, error) {
	s := &servers{}
	var verifier auth.Verifier
	switch cfg.Auth {
	case "dev":
		token, err := tokenFile(cfg.AdminToken, cfg.DataDir, adminTokenFile, "--admin-token")
		if err != nil {
			return nil, err
		}
		verifier = auth.Dev{AdminToken: token}
		logger.WarnContext(ctx, "--auth dev: a bearer token is an account id, so anyone who reaches the gateway acts for any account; never expose this gateway")
	default:
		s.issued = auth.NewIssued(auth.DefaultIssued(), p.AuthClient())
		verifier = s.issued
	}
	var err error
	if s.httpLn, err = listen(ctx, "--http-addr", cfg.HTTPAddr); err != nil {
		return nil, err
	}
	if lt.Gateway != nil {
		s.httpLn = tls.NewListener(s.httpLn, lt.Gateway)
	}
	if s.grpcLn, err = listen(ctx, "--grpc-addr", cfg.GRPCAddr); err != nil {
		return nil, errors.Join(err, s.httpLn.Close())
	}
	if err := s.build(cfg, p, verifier, internalToken, lt, logger); err != nil { //nolint:contextcheck // the gateway's handlers use each request's context
		return nil, errors.Join(err, s.httpLn.Close(), s.grpcLn.Close())
	}
	return s, nil
}

func (s *servers) build(cfg serveConfig, p *platform.Platform, verifier auth.Verifier, internalToken string, lt listenerTLS, logger *slog.Logger) error {
	internal := internalHTTPClient(internalToken, lt.InternalClient)
	feed, err := newFeed(cfg, p, loopbackURL(s.grpcLn.Addr(), lt.Internal != nil), internal, verifier, logger)
	if err != nil {
		return err
	}
	s.feed = feed
	gwCfg := gateway.Default()
	gwCfg.AllowedOrigins = splitList(cfg.AllowedOrigins)
	gwCfg.TrustedProxies = splitList(cfg.TrustedProxies)
	gwCfg.RateLimit = gateway.RateLimit{PerSecond: cfg.RateLimit, Burst: cfg.RateBurst}
	ready := map[string]gateway.Check{}
	for name, check := range p.ReadyChecks() {
		ready[name] = check
	}
	if makesBootstrapAdmin(cfg, p) {
		s.bootstrapped = make(chan struct{})
		ready["bootstrap"] = func(context.Context) error {
			select {
			case <-s.bootstrapped:
				return nil
			default:
				return errors.New("creating the bootstrap admin")
			}
		}
	}
	s.gateway, err = gateway.New(gwCfg, gateway.Deps{
		Logger:    logger.With("component", "gateway"),
		Services:  p.Gateway(),
		Verifier:  verifier,
		Connect:   p.ConnectServices(),
		WebSocket: feed.Handler(),
		Metrics:   p.Metrics(),
		Ready:     ready,
		Lags:      p.Lags,

		TracerProvider: p.TracerProvider(),
	})
	if err != nil {
		return err
	}
	opts := rpcserver.Options{Token: internalToken, TLS: lt.Internal}
	if cfg.InternalInsecure {
		opts.Token = ""
	}
	s.rpc = rpcserver.New(logger.With("component", "rpcserver"), p, opts, p.ConnectServices()...)
	return nil
}

// makesBootstrapAdmin reports whether serve creates the bootstrap admin:
// real credentials, with the auth service in this process.
func makesBootstrapAdmin(cfg serveConfig, p *platform.Platform) bool {
	return cfg.Auth == "jwt" && slices.Contains(p.Services(), platform.Auth)
}

// shutdown stops the WebSocket feed, the gateway and the internal port.
func (s *servers) shutdown(ctx context.Context) error {
	return errors.Join(s.feed.Shutdown(ctx), s.gateway.Shutdown(ctx), s.rpc.Shutdown(ctx))
}

// newFeed builds the WebSocket feed: its upstreams are Connect clients
// (the feed reads server streams) of this process's internal port for the
// services it runs, else of the ones at --services-url.
func newFeed(cfg serveConfig, p *platform.Platform, internalURL string, internal *http.Client, v auth.Verifier, logger *slog.Logger) (*wsfeed.Feed, error) {
	runs := map[string]bool{}
	for _, name := range p.Services() {
		runs[name] = true
	}
	urlOf := func(name string) string {
		if runs[name] {
			return internalURL
		}
		return cfg.ServicesURL
	}
	feedCfg := wsfeed.Default()
	feedCfg.Origins = splitList(cfg.AllowedOrigins)
	feed, err := wsfeed.New(feedCfg, wsfeed.Deps{
		MarketData: marketdatav1connect.NewMarketDataServiceClient(internal, urlOf(platform.MarketData)),
		Orders:     orderv1connect.NewOrderServiceClient(internal, urlOf(platform.Order)),
		Wallet:     walletv1connect.NewWalletServiceClient(internal, urlOf(platform.Wallet)),
		Verifier:   v,
		Logger:     logger.With("component", "wsfeed"),
	})
	if err != nil {
		return nil, err
	}
	m := p.Metrics()
	m.GaugeFunc("tradex_ws_connections", "Open WebSocket connections.", func() float64 { return float64(feed.Stats().Connections) })
	m.GaugeFunc("tradex_ws_upstreams", "Upstream streams the WebSocket feed reads (one per channel and symbol in use).",
		func() float64 { return float64(feed.Stats().Upstreams) })
	m.CounterFunc("tradex_ws_slow_consumers_total", "WebSocket connections dropped for a full send queue.",
		func() float64 { return float64(feed.Stats().SlowConsumers) })
	m.GaugeFunc("tradex_ws_queued_bytes", "Bytes of WebSocket frames waiting to be written, over every connection.",
		func() float64 { return float64(feed.Stats().QueuedBytes) })
	return feed, nil
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

// Files of the tokens serve keeps in the data folder.
const (
	adminTokenFile    = "admin-token"
	internalTokenFile = "internal-token"
)

// tokenFile is value (a flag's), else the token kept in dataDir/file
// (created with a random one the first time, readable by its owner only).
func tokenFile(value, dataDir, file, flagName string) (string, error) {
	if value != "" {
		return value, nil
	}
	path := filepath.Join(dataDir, file)
	if b, err := os.ReadFile(path); err == nil { //nolint:gosec // the operator's own --data-dir
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: read %s: %w", flagName, path, err)
	}
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	tok := hex.EncodeToString(b[:])
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return "", fmt.Errorf("%s: %w", flagName, err)
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("%s: write %s: %w", flagName, path, err)
	}
	return tok, nil
}

// loopbackURL is the http:// (https:// over TLS) URL of a listener as
// this process reaches it (an unspecified host, as in ":8081", is the
// loopback address).
func loopbackURL(addr net.Addr, overTLS bool) string {
	scheme := "http://"
	if overTLS {
		scheme = "https://"
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + addr.String()
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return scheme + net.JoinHostPort(host, port)
}
