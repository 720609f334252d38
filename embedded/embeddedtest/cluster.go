package embeddedtest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/embedded"
)

// clusterReconnectWait is how long the test connection waits before
// trying a node again; short so that tests stopping nodes stay fast.
const clusterReconnectWait = 50 * time.Millisecond

// clusterAPITimeout bounds a JetStream API call on the cluster's handle
// that has no deadline of its own. A replicated stream's creation is a
// meta-group proposal and then a stream-group election; with the race
// detector and every package's tests sharing two cores it has taken
// longer than the client's default 5 s, so the cluster handle waits
// longer before calling the cluster hung.
const clusterAPITimeout = 30 * time.Second

// Cluster is a running JetStream cluster with a connected client. The
// embedded cluster's methods (Node, StopNode, RestartNode, ClientURLs,
// ...) are available on it directly.
type Cluster struct {
	*embedded.Cluster

	conn *nats.Conn
	js   jetstream.JetStream
}

// NewCluster starts a cluster of nodes (0 means 3) for the test, with its
// stores under t.TempDir() and every listener on loopback, and connects
// to it over TCP with every node's URL, so the connection survives a
// stopped node. It fails the test if the cluster does not start. Cleanup
// closes the connection and shuts every node down. [WithTCP] has no effect
// here.
func NewCluster(t testing.TB, nodes int, opts ...Option) *Cluster {
	t.Helper()
	cfg := newConfig(t, opts)
	c, err := embedded.StartCluster(t.Context(), embedded.ClusterConfig{
		Nodes:    nodes,
		StoreDir: cfg.storeDir,
		Sync:     cfg.sync,
		Logger:   cfg.logger,
	})
	if err != nil {
		t.Fatalf("embeddedtest: %v", err)
	}
	cleanupShutdown(t, c.Shutdown)

	nc, err := c.Connect(nats.MaxReconnects(-1), nats.ReconnectWait(clusterReconnectWait))
	if err != nil {
		t.Fatalf("embeddedtest: %v", err)
	}
	t.Cleanup(nc.Close)
	return &Cluster{Cluster: c, conn: nc, js: newJetStream(t, nc, jetstream.WithDefaultTimeout(clusterAPITimeout))}
}

// Conn returns the test's connection to the cluster.
func (c *Cluster) Conn() *nats.Conn { return c.conn }

// JetStream returns a JetStream handle on [Cluster.Conn]. A call whose
// context has no deadline waits up to 30 s for the cluster's answer.
func (c *Cluster) JetStream() jetstream.JetStream { return c.js }
