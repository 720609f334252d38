package platform

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tradex-mesh/tradex/embedded"
)

// BrokerConfig says where the platform's NATS is.
type BrokerConfig struct {
	// URL, when set, is an external NATS cluster (comma-separated URLs);
	// otherwise an embedded server runs in the process.
	URL string
	// StoreDir is the embedded server's JetStream store.
	StoreDir string
	// Listen is the embedded server's client listen address ("host:port"),
	// or "" for in-process connections only.
	Listen string
	// Sync is the embedded server's fsync policy.
	Sync embedded.SyncPolicy
	// ServerLog receives the embedded server's own logs; nil discards them.
	ServerLog *slog.Logger
}

// Broker is the NATS the platform runs on: the embedded server, or an
// external cluster.
type Broker struct {
	log    *slog.Logger
	server *embedded.Server
	url    string
}

// StartBroker starts the embedded server, unless cfg.URL names an external
// one (then it only checks that it can connect).
func StartBroker(ctx context.Context, log *slog.Logger, cfg BrokerConfig) (*Broker, error) {
	b := &Broker{log: log, url: cfg.URL}
	if cfg.URL != "" {
		nc, err := b.Dial(connName("probe"))
		if err != nil {
			return nil, fmt.Errorf("--nats: connect to %s: %w", cfg.URL, err)
		}
		nc.Close()
		return b, nil
	}
	opts := embedded.Options{StoreDir: cfg.StoreDir, Port: embedded.NoListener, Sync: cfg.Sync, Logger: cfg.ServerLog}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
		}
		opts.Host = host
		if opts.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
		}
	}
	srv, err := embedded.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	b.server = srv
	b.url = srv.ClientURL()
	if b.url == "" {
		b.url = "in-process"
	}
	return b, nil
}

// Dial opens a connection named name that reconnects for ever.
func (b *Broker) Dial(name string) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: we closed it ourselves
				b.log.Warn("nats disconnected", "conn", name, "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("nats reconnected", "conn", name, "url", nc.ConnectedUrlRedacted())
		}),
	}
	if b.server != nil {
		return b.server.Connect(opts...)
	}
	return nats.Connect(b.url, opts...)
}

// Dial connects to the NATS at url (comma-separated URLs) once, as a
// short-lived tool does (tradex dlq).
func Dial(url, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(url, nats.Name(name))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	return nc, nil
}

// URL is the embedded server's client URL ("in-process" without a
// listener), or the external URLs.
func (b *Broker) URL() string { return b.url }

// Embedded reports whether the broker is the embedded server.
func (b *Broker) Embedded() bool { return b.server != nil }

// StoreDir is the embedded server's store ("" for an external broker).
func (b *Broker) StoreDir() string {
	if b.server == nil {
		return ""
	}
	return b.server.StoreDir()
}

// Close stops the embedded server, if any, within timeout.
func (b *Broker) Close(ctx context.Context, timeout time.Duration) error {
	if b.server == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := b.server.Shutdown(ctx); err != nil {
		return fmt.Errorf("embedded nats shutdown: %w", err)
	}
	return nil
}
