package platform

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/streams"
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
	// Credentials are the platform's NATS users: the embedded server
	// admits only them, each within its permissions from the catalog, and
	// every connection logs in as its user. For an external cluster they
	// are what its configuration must hold (tradex nats config). Nil: no
	// authentication (an external cluster that does not ask for it).
	Credentials Credentials
	// TLS, when set, makes the embedded server's client listener require
	// TLS with this server configuration; in-process connections need none.
	TLS *tls.Config
	// Encryption, when set, encrypts the embedded server's store at rest.
	Encryption *embedded.Encryption
	// ClientTLS, when set, is how connections to the external cluster
	// (URL) speak TLS: the CAs they trust and the certificate they present.
	ClientTLS *tls.Config
}

// Broker is the NATS the platform runs on: the embedded server, or an
// external cluster.
type Broker struct {
	log       *slog.Logger
	server    *embedded.Server
	url       string
	creds     Credentials
	clientTLS *tls.Config
}

// StartBroker starts the embedded server, unless cfg.URL names an external
// one (then it only checks that it can connect).
func StartBroker(ctx context.Context, log *slog.Logger, cfg BrokerConfig) (*Broker, error) {
	b := &Broker{log: log, url: cfg.URL, creds: cfg.Credentials, clientTLS: cfg.ClientTLS}
	if cfg.URL != "" {
		nc, err := b.Dial(UserPlatform)
		if err != nil {
			return nil, fmt.Errorf("--nats: connect to %s: %w", cfg.URL, err)
		}
		nc.Close()
		return b, nil
	}
	opts := embedded.Options{StoreDir: cfg.StoreDir, Port: embedded.NoListener, Sync: cfg.Sync, Logger: cfg.ServerLog, TLS: cfg.TLS, Encryption: cfg.Encryption}
	if cfg.Credentials != nil {
		users, err := cfg.Credentials.EmbeddedUsers(streams.DefaultCatalog())
		if err != nil {
			return nil, err
		}
		opts.Users = users
	}
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

// connectTimeout bounds a connection attempt (nats.go's default is 2 s;
// a loaded machine needs more).
const connectTimeout = 10 * time.Second

// Dial opens a connection named name, logged in as the user of that name
// (with the broker's credentials), that reconnects for ever.
func (b *Broker) Dial(name string) (*nats.Conn, error) {
	auth, err := b.creds.ConnectOptions(name)
	if err != nil {
		return nil, err
	}
	opts := append(auth,
		nats.Name(name),
		nats.Timeout(connectTimeout),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: we closed it ourselves
				b.log.Warn("nats disconnected", "conn", name, "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("nats reconnected", "conn", name, "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			b.log.Warn("nats error", "conn", name, "err", err) // a permissions violation is a bug or an attack
		}),
	)
	if b.server != nil {
		return b.server.Connect(opts...)
	}
	if b.clientTLS != nil {
		opts = append(opts, nats.Secure(b.clientTLS))
	}
	return nats.Connect(b.url, opts...)
}

// DialOption changes how Dial connects.
type DialOption func(*[]nats.Option)

// WithTLS connects over TLS with cfg (the CAs trusted, the client
// certificate presented).
func WithTLS(cfg *tls.Config) DialOption {
	return func(opts *[]nats.Option) { *opts = append(*opts, nats.Secure(cfg)) }
}

// Reconnecting makes a connection for a long-running process (tradex
// bridge): it retries the first connect and reconnects for ever.
func Reconnecting() DialOption {
	return func(opts *[]nats.Option) {
		*opts = append(*opts, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	}
}

// Dial connects to the NATS at url (comma-separated URLs) once as user
// (with creds; nil creds: without authentication), as a short-lived tool
// does (tradex dlq).
func Dial(url string, creds Credentials, user string, options ...DialOption) (*nats.Conn, error) {
	auth, err := creds.ConnectOptions(user)
	if err != nil {
		return nil, err
	}
	opts := append(auth, nats.Name(user), nats.Timeout(connectTimeout))
	for _, o := range options {
		o(&opts)
	}
	nc, err := nats.Connect(url, opts...)
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

// ConnectOptions log a connection in as user: its password and its own inbox
// prefix (the only subjects it may subscribe to). Nil credentials: none.
func (c Credentials) ConnectOptions(user string) ([]nats.Option, error) {
	if c == nil {
		return nil, nil
	}
	password, ok := c[user]
	if !ok {
		return nil, fmt.Errorf("nats credentials: no password for %s", user)
	}
	return []nats.Option{nats.UserInfo(user, password), nats.CustomInboxPrefix(streams.InboxPrefix(user))}, nil
}
