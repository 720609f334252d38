package embedded

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultClusterNodes is the cluster size when [ClusterConfig.Nodes] is 0.
const DefaultClusterNodes = 3

// DefaultClusterName is the cluster name when [ClusterConfig.Name] is empty.
const DefaultClusterName = "embedded"

// DefaultClusterReadyTimeout bounds how long [StartCluster] and
// [Cluster.RestartNode] wait when [ClusterConfig.ReadyTimeout] is zero. It
// is longer than a single node's: electing the JetStream meta leader takes
// a few seconds.
const DefaultClusterReadyTimeout = 30 * time.Second

// startAttempts is how often StartCluster tries fresh ports when one of
// the picked ports was taken before the node bound it.
const startAttempts = 3

// ClusterConfig configures [StartCluster].
type ClusterConfig struct {
	// Nodes is the number of nodes, at least 2; 0 means
	// [DefaultClusterNodes]. Use [Start] for a single node.
	Nodes int

	// StoreDir is the parent directory of the nodes' stores: node i keeps
	// its data in StoreDir/<node name>. Required.
	StoreDir string

	// Name is the cluster name; node i is named "<Name>-<i>". Empty means
	// [DefaultClusterName].
	Name string

	// Host is the loopback (or other) interface every client and route
	// listener binds to. Empty means [DefaultHost].
	Host string

	// Sync, Logger, MaxMemory and MaxStore apply to every node as in
	// [Options]. Log lines carry a "server" attribute with the node name.
	Sync      SyncPolicy
	Logger    *slog.Logger
	MaxMemory int64
	MaxStore  int64

	// ReadyTimeout bounds the wait for each node to be ready. Zero means
	// [DefaultClusterReadyTimeout].
	ReadyTimeout time.Duration

	// TLS, when set, is every node's client listener TLS ([Options.TLS]);
	// RouteTLS the routes' between nodes ([ClusterOptions.TLS]): its
	// certificate must be valid for Host as a server and as a client.
	TLS, RouteTLS *tls.Config
}

// Cluster is a JetStream cluster of embedded nodes, all in this process,
// connected by routes on their own ports. Its methods are safe for
// concurrent use.
type Cluster struct {
	opts         []Options // per node, with fixed ports, reused on restart
	readyTimeout time.Duration

	mu    sync.Mutex
	nodes []*Server
}

// StartCluster starts cfg.Nodes nodes with JetStream clustered and returns
// once every node is ready as described in [Start] (each has contact with
// the JetStream meta leader and is current with it) and the meta leader
// counts every node as a peer that streams can be placed on, so that an R3
// stream can be created right away.
//
// Client and route ports are picked before any node starts, so that every
// node is configured with the route URLs of all the others and keeps its
// ports across [Cluster.RestartNode]. Should another process take one of
// them in between, StartCluster retries with new ports.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	cfg, err := cfg.resolved()
	if err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	for attempt := 1; ; attempt++ {
		c, err := startCluster(ctx, cfg)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, ErrAddrInUse) || attempt == startAttempts || ctx.Err() != nil {
			return nil, fmt.Errorf("start cluster %s: %w", cfg.Name, err)
		}
	}
}

func (cfg ClusterConfig) resolved() (ClusterConfig, error) {
	if cfg.StoreDir == "" {
		return cfg, ErrNoStoreDir
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = DefaultClusterNodes
	}
	if cfg.Nodes < 2 {
		// nats-server refuses clustered JetStream without routes.
		return cfg, fmt.Errorf("a cluster needs at least 2 nodes, not %d", cfg.Nodes)
	}
	if cfg.Name == "" {
		cfg.Name = DefaultClusterName
	}
	if cfg.Host == "" {
		cfg.Host = DefaultHost
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultClusterReadyTimeout
	}
	return cfg, nil
}

func startCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	opts, err := nodeOptions(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, readyTimeout: cfg.ReadyTimeout, nodes: make([]*Server, len(opts))}
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i := range opts {
		wg.Go(func() { c.nodes[i], errs[i] = Start(ctx, opts[i]) })
	}
	wg.Wait()
	err = errors.Join(errs...)
	if err == nil {
		names := make([]string, len(opts))
		for i, o := range opts {
			names[i] = o.ServerName
		}
		err = c.waitPeers(ctx, names)
	}
	if err != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), failedStartShutdownTimeout)
		defer cancel()
		return nil, errors.Join(err, c.Shutdown(sctx))
	}
	return c, nil
}

// nodeOptions picks the ports and builds every node's options.
func nodeOptions(ctx context.Context, cfg ClusterConfig) ([]Options, error) {
	ports, err := freePorts(ctx, cfg.Host, 2*cfg.Nodes)
	if err != nil {
		return nil, err
	}
	clientPorts, routePorts := ports[:cfg.Nodes], ports[cfg.Nodes:]
	opts := make([]Options, cfg.Nodes)
	for i := range opts {
		name := fmt.Sprintf("%s-%d", cfg.Name, i)
		var routes []string
		for j, p := range routePorts {
			if j != i {
				routes = append(routes, "nats://"+hostPort(connectHost(cfg.Host), p))
			}
		}
		opts[i] = Options{
			StoreDir:     filepath.Join(cfg.StoreDir, name),
			Host:         cfg.Host,
			Port:         clientPorts[i],
			ServerName:   name,
			Sync:         cfg.Sync,
			Logger:       cfg.Logger,
			MaxMemory:    cfg.MaxMemory,
			MaxStore:     cfg.MaxStore,
			ReadyTimeout: cfg.ReadyTimeout,
			TLS:          cfg.TLS,
			Cluster: &ClusterOptions{
				Name:   cfg.Name,
				Host:   cfg.Host,
				Port:   routePorts[i],
				Routes: routes,
				TLS:    cfg.RouteTLS,
			},
		}
	}
	return opts, nil
}

// Nodes returns the cluster's nodes in order. A stopped node is still
// listed (its Server is shut down) until it is restarted.
func (c *Cluster) Nodes() []*Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Server(nil), c.nodes...)
}

// Node returns node i (0-based), which must exist.
func (c *Cluster) Node(i int) *Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// ClientURLs returns every node's client URL, stopped nodes included: the
// ports do not change on restart.
func (c *Cluster) ClientURLs() []string {
	urls := make([]string, len(c.opts))
	for i, o := range c.opts {
		urls[i] = "nats://" + hostPort(connectHost(o.Host), o.Port)
	}
	return urls
}

// ClientURL returns the client URLs joined by commas, the form nats.Connect
// accepts for a client that fails over between nodes.
func (c *Cluster) ClientURL() string { return strings.Join(c.ClientURLs(), ",") }

// Connect returns a TCP client connection that knows every node and
// reconnects to another one when its node stops.
func (c *Cluster) Connect(opts ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(c.ClientURL(), opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to cluster: %w", err)
	}
	return nc, nil
}

// StopNode shuts node i down gracefully and waits until it stopped. Its
// store stays on disk for [Cluster.RestartNode].
func (c *Cluster) StopNode(ctx context.Context, i int) error {
	if err := c.Node(i).Shutdown(ctx); err != nil {
		return fmt.Errorf("stop node %d: %w", i, err)
	}
	return nil
}

// RestartNode stops node i if it runs, then starts it again with the same
// name, store directory and ports, so that routes reconnect and JetStream
// recognises the peer. It returns once the node is ready as described in
// [Start], which includes having caught up the stream and consumer
// replicas placed on it, and the meta leader counts it as a peer again.
// Should another process have taken one of its ports while it was down,
// it fails with [ErrAddrInUse].
func (c *Cluster) RestartNode(ctx context.Context, i int) error {
	if err := c.StopNode(ctx, i); err != nil {
		return fmt.Errorf("restart node %d: %w", i, err)
	}
	s, err := Start(ctx, c.opts[i])
	if err != nil {
		return fmt.Errorf("restart node %d: %w", i, err)
	}
	c.mu.Lock()
	c.nodes[i] = s
	c.mu.Unlock()
	if err := c.waitPeers(ctx, []string{s.Name()}); err != nil {
		return fmt.Errorf("restart node %d: %w", i, err)
	}
	return nil
}

// waitPeers waits until a running node is the JetStream meta leader and
// lists every one of names among the peers it can place streams on (online,
// JetStream enabled, statistics received).
func (c *Cluster) waitPeers(ctx context.Context, names []string) error {
	deadline := time.NewTimer(c.readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(readyPollInterval)
	defer tick.Stop()
	for {
		missing := c.missingPeers(names)
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for peers %v: %w", missing, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("%w after %s: meta leader does not list peers %v", ErrNotReady, c.readyTimeout, missing)
		case <-tick.C:
		}
	}
}

// missingPeers returns the names the meta leader does not list as
// placement peers (all of them while there is no meta leader).
func (c *Cluster) missingPeers(names []string) []string {
	for _, s := range c.Nodes() {
		if !s.srv.Running() || !s.srv.JetStreamIsLeader() {
			continue
		}
		peers := s.srv.JetStreamClusterPeers()
		var missing []string
		for _, n := range names {
			if !slices.Contains(peers, n) {
				missing = append(missing, n)
			}
		}
		return missing
	}
	return names
}

// Shutdown stops every node, concurrently, and waits until they stopped or
// ctx ends. It is safe to call more than once.
func (c *Cluster) Shutdown(ctx context.Context) error {
	nodes := c.Nodes()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, s := range nodes {
		if s == nil {
			continue
		}
		wg.Go(func() { errs[i] = s.Shutdown(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shut down cluster: %w", err)
	}
	return nil
}
