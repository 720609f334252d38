package embeddedtest

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/embedded"
)

// CleanupTimeout bounds the shutdown of a test's servers in t.Cleanup.
const CleanupTimeout = 30 * time.Second

// Server is a running single node with a connected client. The embedded
// server's methods (ClientURL, Connect, StoreDir, Shutdown, ...) are
// available on it directly.
type Server struct {
	*embedded.Server

	conn *nats.Conn
	js   jetstream.JetStream
}

// New starts a node for the test and connects to it; it fails the test if
// either fails. Unless options say otherwise the node stores in
// t.TempDir(), opens no TCP listener and the connection is in process.
// Cleanup closes the connection and shuts the node down.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := newConfig(t, opts)
	o := embedded.Options{
		StoreDir: cfg.storeDir,
		Port:     embedded.NoListener,
		Sync:     cfg.sync,
		Logger:   cfg.logger,
	}
	if cfg.tcp {
		o.Port = 0
	}
	var auth []nats.Option
	if len(cfg.users) > 0 {
		password := rand.Text()
		o.Users = append(append([]embedded.User{}, cfg.users...), embedded.User{Name: "embeddedtest", Password: password})
		auth = append(auth, nats.UserInfo("embeddedtest", password))
	}
	srv, err := embedded.Start(t.Context(), o)
	if err != nil {
		t.Fatalf("embeddedtest: %v", err)
	}
	cleanupShutdown(t, srv.Shutdown)

	var nc *nats.Conn
	if cfg.tcp {
		nc, err = nats.Connect(srv.ClientURL(), auth...)
	} else {
		nc, err = srv.Connect(auth...)
	}
	if err != nil {
		t.Fatalf("embeddedtest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return &Server{Server: srv, conn: nc, js: newJetStream(t, nc)}
}

// Conn returns the test's connection to the node.
func (s *Server) Conn() *nats.Conn { return s.conn }

// JetStream returns a JetStream handle on [Server.Conn].
func (s *Server) JetStream() jetstream.JetStream { return s.js }

// cleanupShutdown registers shutdown with t.Cleanup. t.Context() is
// already cancelled when cleanup runs, so the shutdown gets its own
// timeout on a context that keeps the test context's values.
func cleanupShutdown(t testing.TB, shutdown func(context.Context) error) {
	ctx := context.WithoutCancel(t.Context())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(ctx, CleanupTimeout)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("embeddedtest: %v", err)
		}
	})
}

func newJetStream(t testing.TB, nc *nats.Conn, opts ...jetstream.JetStreamOpt) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		t.Fatalf("embeddedtest: jetstream: %v", err)
	}
	return js
}
