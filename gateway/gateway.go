package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
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
	// BodyLimit is the largest request body accepted, in bytes.
	BodyLimit int
}

// Default returns the settings used by `tradex serve`.
func Default() Config {
	return Config{
		ReadTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute,
		BodyLimit:   1 << 20,
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
}

// Gateway is the Fiber application and what it needs to serve.
type Gateway struct {
	app    *fiber.App
	logger *slog.Logger
	ready  map[string]Check
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
	g := &Gateway{
		app: fiber.New(fiber.Config{
			AppName:               "tradex",
			DisableStartupMessage: true,
			ReadTimeout:           cfg.ReadTimeout,
			WriteTimeout:          cfg.WriteTimeout,
			IdleTimeout:           cfg.IdleTimeout,
			BodyLimit:             cfg.BodyLimit,
		}),
		logger: logger,
		ready:  deps.Ready,
	}
	g.routes()
	return g, nil
}

// Serve accepts connections on ln until Shutdown is called.
func (g *Gateway) Serve(ln net.Listener) error {
	if err := g.app.Listener(ln); err != nil {
		return fmt.Errorf("gateway: serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for in-flight requests,
// up to ctx's deadline.
func (g *Gateway) Shutdown(ctx context.Context) error {
	if err := g.app.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("gateway: shutdown: %w", err)
	}
	return nil
}

// App exposes the Fiber application, for tests that drive it in memory.
func (g *Gateway) App() *fiber.App { return g.app }
