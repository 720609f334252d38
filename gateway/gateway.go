package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tradex-mesh/tradex/gateway/auth"
	"github.com/tradex-mesh/tradex/internal/rpcserver"
	"github.com/tradex-mesh/tradex/internal/telemetry"
)

// Config holds the gateway's settings.
type Config struct {
	// ReadTimeout bounds reading one request, headers and body.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one response. Zero means no limit, which
	// long-lived streams need.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle for longer.
	IdleTimeout time.Duration
	// BodyLimit is the largest request body accepted on any route (Connect
	// included), in bytes.
	BodyLimit int
	// RESTBodyLimit is the largest body of a REST request, in bytes; over
	// it a request is 413 resource_exhausted.
	RESTBodyLimit int
	// RequestTimeout bounds the service call behind one REST request.
	RequestTimeout time.Duration
	// RateLimit is every REST client's request budget.
	RateLimit RateLimit
	// AllowedOrigins are the browser origins allowed to call REST and
	// Connect across origins (CORS), such as "https://app.example.com";
	// "*" allows any. Empty: same-origin only.
	AllowedOrigins []string
	// TrustedProxies are the addresses (IPs or CIDRs) of the reverse
	// proxies in front of the gateway. A request from one of them is
	// attributed (rate limits, logs) to the right-most address of its
	// X-Forwarded-For header that is not a trusted proxy; from anywhere
	// else the header is ignored. Empty: the peer address always.
	TrustedProxies []string
	// MaxStreamLifetime ends a Connect server stream served through the
	// gateway after this long (clients reconnect): fasthttp does not tell
	// a handler that its client left, so a quiet stream of a gone client
	// would otherwise live until its next message. Zero: no limit.
	MaxStreamLifetime time.Duration
}

// Default returns the settings used by `tradex serve`.
func Default() Config {
	return Config{
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BodyLimit:         4 << 20,
		RESTBodyLimit:     64 << 10,
		RequestTimeout:    10 * time.Second,
		RateLimit:         RateLimit{PerSecond: 100, Burst: 200},
		MaxStreamLifetime: 15 * time.Minute,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.ReadTimeout < 0:
		return errors.New("gateway: read timeout must not be negative")
	case c.WriteTimeout < 0:
		return errors.New("gateway: write timeout must not be negative")
	case c.IdleTimeout < 0:
		return errors.New("gateway: idle timeout must not be negative")
	case c.BodyLimit <= 0:
		return errors.New("gateway: body limit must be positive")
	case c.RESTBodyLimit <= 0 || c.RESTBodyLimit > c.BodyLimit:
		return errors.New("gateway: REST body limit must be positive and at most the body limit")
	case c.RequestTimeout <= 0:
		return errors.New("gateway: request timeout must be positive")
	case c.MaxStreamLifetime < 0:
		return errors.New("gateway: max stream lifetime must not be negative")
	case c.RateLimit.AddressPerSecond < 0 || c.RateLimit.AddressBurst < 0:
		return errors.New("gateway: the rate limit's address ceiling must not be negative")
	case c.RateLimit.PerSecond < 0 || c.RateLimit.PerSecond > 0 && c.RateLimit.Burst < 1:
		return errors.New("gateway: rate limit needs a non-negative rate and, when on, a burst of at least 1")
	}
	return nil
}

// Check is one readiness check: it returns nil when the dependency it
// guards can serve. It must honour ctx's deadline.
type Check func(ctx context.Context) error

// Deps are the gateway's collaborators.
type Deps struct {
	// Logger receives the gateway's logs; nil discards them.
	Logger *slog.Logger
	// Ready maps a dependency name to its readiness check.
	Ready map[string]Check
	// Lags, when set, reports every durable consumer's backlog, by
	// "<topic> <consumer>", in /readyz's body.
	Lags func(ctx context.Context) map[string]uint64
	// Services serve the REST API.
	Services Services
	// Verifier checks credentials; nil refuses every credential (only
	// public routes work).
	Verifier auth.Verifier
	// Connect are the Connect handlers mounted for browsers (Connect
	// protocol and gRPC-Web over HTTP/1.1).
	Connect []rpcserver.Service
	// WebSocket serves /ws; nil leaves it out.
	WebSocket fiber.Handler
	// Metrics records every request and is served at /metrics; nil
	// records nothing.
	Metrics *telemetry.Metrics
	// Now is the clock of the rate limits and of signed requests'
	// freshness; nil is time.Now.
	Now func() time.Time
	// TracerProvider records a server span per API request (REST,
	// Connect-Web, /ws), continuing the caller's traceparent; what the
	// request calls and publishes continues its trace. Nil records none.
	TracerProvider trace.TracerProvider
}

// Gateway is the Fiber application and what it needs to serve.
type Gateway struct {
	app      *fiber.App
	cfg      Config
	logger   *slog.Logger
	ready    map[string]Check
	lags     func(ctx context.Context) map[string]uint64
	services Services
	verifier auth.Verifier
	limits   *limiter
	ceiling  *limiter
	metrics  *telemetry.Metrics
	proxies  proxies
	now      func() time.Time
	tracer   trace.Tracer
	// streams is the context of the Connect server streams, cancelled when
	// Shutdown starts.
	streams     context.Context //nolint:containedctx // the lifetime of the gateway, not of a request
	stopStreams context.CancelFunc
	// streaming are the server-stream procedures of the mounted services.
	streaming map[string]bool

	openAPIOnce sync.Once
	openAPIDoc  []byte
	openAPIErr  error
}

// New builds the gateway; call Serve to accept connections.
func New(cfg Config, deps Deps) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	trusted, err := parseProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	tp := deps.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	streams, stopStreams := context.WithCancel(context.Background())
	g := &Gateway{
		tracer:      tp.Tracer(tracerName),
		streams:     streams,
		stopStreams: stopStreams,
		cfg:         cfg,
		logger:      logger,
		ready:       deps.Ready,
		lags:        deps.Lags,
		services:    deps.Services.orUnimplemented(),
		verifier:    deps.Verifier,
		limits:      newLimiter(cfg.RateLimit, now),
		ceiling:     newLimiter(cfg.RateLimit.addressCeiling(), now),
		metrics:     deps.Metrics,
		proxies:     trusted,
		now:         now,
	}
	g.app = fiber.New(fiber.Config{
		AppName:               "tradex",
		DisableStartupMessage: true,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		BodyLimit:             cfg.BodyLimit,
		ErrorHandler:          g.handleError,
		// Every string a handler reads from the request is its own copy:
		// they reach services in process (an account id, a symbol) and
		// metric labels, all of which outlive fasthttp's reused buffers.
		Immutable: true,
	})
	g.routes(deps)
	return g, nil
}

// Serve accepts connections on ln until Shutdown is called.
func (g *Gateway) Serve(ln net.Listener) error {
	if err := g.app.Listener(ln); err != nil {
		return fmt.Errorf("gateway: serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting connections, ends the open Connect server
// streams and waits for in-flight requests, up to ctx's deadline.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.stopStreams()
	if err := g.app.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("gateway: shutdown: %w", err)
	}
	return nil
}

// App exposes the Fiber application, for tests that drive it in memory.
func (g *Gateway) App() *fiber.App { return g.app }
