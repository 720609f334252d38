package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// readyPollInterval is how often Start re-checks readiness.
const readyPollInterval = 5 * time.Millisecond

// failedStartShutdownTimeout bounds the cleanup of a server that failed to
// become ready.
const failedStartShutdownTimeout = 10 * time.Second

// Server is a running embedded nats-server with JetStream. Its methods are
// safe for concurrent use.
type Server struct {
	srv       *server.Server
	opts      Options // resolved
	clientURL string

	shutdownOnce sync.Once
	stopped      chan struct{} // closed once the server has fully shut down
}

// Start starts a nats-server with JetStream in this process and returns
// once it is ready: it accepts connections and JetStream is up (streams
// recovered from StoreDir). For a cluster node ([Options.Cluster] set) it
// also waits until the node has contact with the JetStream meta leader, is
// current with it, and every stream and consumer replica placed on it has
// caught up; a lone cluster node therefore only becomes ready once enough
// of its peers run (see [StartCluster]).
//
// ctx bounds the wait only: the server keeps running until
// [Server.Shutdown]. Recovering a large store happens before the wait and
// does not observe ctx. On any error the server is shut down again.
func Start(ctx context.Context, opts Options) (*Server, error) {
	o, err := opts.resolved()
	if err != nil {
		return nil, fmt.Errorf("start nats-server: %w", err)
	}
	s, err := start(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("start nats-server %s: %w", o.ServerName, err)
	}
	return s, nil
}

func start(ctx context.Context, o Options) (*Server, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := prepareStoreDir(o.StoreDir); err != nil {
		return nil, err
	}
	if err := checkStoreKey(o); err != nil {
		return nil, err
	}
	if err := checkAddrsFree(ctx, o); err != nil {
		return nil, err
	}
	so, err := o.serverOptions()
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("configure: %w", err)
	}
	logs := newLogBridge(o.Logger, o.ServerName)
	debug, trace := logs.levels(ctx)
	srv.SetLoggerV2(logs, debug, trace, false)

	s := &Server{srv: srv, opts: o, stopped: make(chan struct{})}
	srv.Start()
	if err := s.waitReady(ctx, logs.fatal); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), failedStartShutdownTimeout)
		defer cancel()
		return nil, errors.Join(err, s.Shutdown(cctx))
	}
	if addr, ok := srv.Addr().(*net.TCPAddr); ok {
		s.clientURL = "nats://" + hostPort(connectHost(o.Host), addr.Port)
	}
	return s, nil
}

// prepareStoreDir creates dir and checks that files can be written in it.
func prepareStoreDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrStoreDir, dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrStoreDir, dir, err)
	}
	name := f.Name()
	if err := errors.Join(f.Close(), os.Remove(name)); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrStoreDir, dir, err)
	}
	return nil
}

// checkAddrsFree checks the client and route addresses before nats-server
// tries them: on a bound port it would only log a fatal error.
func checkAddrsFree(ctx context.Context, o Options) error {
	if err := checkAddrFree(ctx, "client", o.Host, o.Port); err != nil {
		return err
	}
	if o.Cluster != nil {
		return checkAddrFree(ctx, "route", o.Cluster.Host, o.Cluster.Port)
	}
	return nil
}

// waitReady polls the server's health until it is ready, a fatal error is
// logged, ctx ends or the ready timeout passes.
func (s *Server) waitReady(ctx context.Context, fatal <-chan error) error {
	deadline := time.NewTimer(s.opts.ReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(readyPollInterval)
	defer tick.Stop()
	for {
		status := s.health()
		if status == "" {
			return nil
		}
		if err := s.unrecovered(); err != nil {
			return err
		}
		select {
		case err := <-fatal:
			return fatalError(err)
		case <-ctx.Done():
			return fmt.Errorf("wait until ready (%s): %w", status, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("%w after %s: %s", ErrNotReady, s.opts.ReadyTimeout, status)
		case <-tick.C:
		}
	}
}

// health returns "" when the server is ready, or why it is not.
func (s *Server) health() string {
	h := s.srv.Healthz(nil)
	if h.Error == "" && h.Status == "ok" {
		return ""
	}
	if h.Error != "" {
		return h.Error
	}
	return "status " + h.Status
}

// fatalError marks a fatal bind error as ErrAddrInUse: the pre-check can
// race with another process taking the port.
func fatalError(err error) error {
	if strings.Contains(err.Error(), "address already in use") {
		return fmt.Errorf("%w: %w", ErrAddrInUse, err)
	}
	return err
}

// connectHost is the host clients dial for a listener bound to host.
func connectHost(host string) string {
	switch ip := net.ParseIP(host); {
	case ip == nil:
		return host
	case ip.IsUnspecified() && ip.To4() != nil:
		return "127.0.0.1"
	case ip.IsUnspecified():
		return "::1"
	default:
		return host
	}
}

// ClientURL returns the URL TCP clients connect to, such as
// "nats://127.0.0.1:41234", or "" for a server started with [NoListener].
func (s *Server) ClientURL() string { return s.clientURL }

// InProcessOption returns the nats.Option that connects a client to this
// server in process, through a pipe instead of TCP. Pass it to
// nats.Connect with an empty URL.
func (s *Server) InProcessOption() nats.Option { return nats.InProcessServer(s.srv) }

// Connect returns a client connection to this server, in process (no TCP
// even when the server listens). opts are applied after the in-process
// option.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{s.InProcessOption()}, opts...)
	nc, err := nats.Connect("", all...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s in process: %w", s.opts.ServerName, err)
	}
	return nc, nil
}

// StoreDir returns the JetStream store directory the server was started
// with.
func (s *Server) StoreDir() string { return s.opts.StoreDir }

// Name returns the server name.
func (s *Server) Name() string { return s.opts.ServerName }

// Sync returns the fsync policy the server runs with.
func (s *Server) Sync() SyncPolicy { return s.opts.Sync }

// Shutdown stops the server gracefully (stepping down any JetStream
// leadership it holds, closing clients and flushing stores) and waits until
// it has stopped or ctx ends. It is safe to call more than once and from
// several goroutines; later calls wait for the same shutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		go func() {
			s.srv.Shutdown()
			s.srv.WaitForShutdown()
			close(s.stopped)
		}()
	})
	select {
	case <-s.stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shut down nats-server %s: %w", s.opts.ServerName, ctx.Err())
	}
}

// ConnectionNames lists the names of the clients connected now (as
// nats.Name set them; in-process connections too), sorted.
func (s *Server) ConnectionNames() ([]string, error) {
	cz, err := s.srv.Connz(&server.ConnzOptions{Limit: 4096})
	if err != nil {
		return nil, fmt.Errorf("connections: %w", err)
	}
	names := make([]string, 0, len(cz.Conns))
	for _, c := range cz.Conns {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return names, nil
}

// ServerVersion is the version of the nats-server this package embeds.
func ServerVersion() string { return server.VERSION }
