package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/internal/polltest"
)

// clusterWait bounds the polls in the cluster tests: leader elections
// take up to a few seconds.
const clusterWait = 20 * time.Second

// startTestCluster starts a cluster and shuts it down when the test ends.
func startTestCluster(t *testing.T, cfg ClusterConfig) *Cluster {
	t.Helper()
	c, err := StartCluster(t.Context(), cfg)
	if err != nil {
		t.Fatalf("StartCluster: %v", err)
	}
	ctx := context.WithoutCancel(t.Context())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
		defer cancel()
		if err := c.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return c
}

// publishRetrying publishes messages first..last, retrying each (with a
// message id, so a retry cannot duplicate) while the cluster fails over.
func publishRetrying(t *testing.T, js jetstream.JetStream, subject string, first, last uint64) {
	t.Helper()
	for i := first; i <= last; i++ {
		polltest.Until(t, fmt.Sprintf("publish %d", i), func() error {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			ack, err := js.Publish(ctx, subject, payload(i), jetstream.WithMsgID(fmt.Sprint(i)))
			if err != nil {
				return err
			}
			if ack.Sequence != i {
				t.Fatalf("publish %d: acked sequence %d", i, ack.Sequence)
			}
			return nil
		}, polltest.WithTimeout(clusterWait))
	}
}

// localStreamState is the state of stream in the store of s itself, not
// what the stream leader reports.
func localStreamState(s *Server, stream string) (server.StreamState, error) {
	info, err := s.srv.Jsz(&server.JSzOptions{Accounts: true, Streams: true})
	if err != nil {
		return server.StreamState{}, err
	}
	for _, acc := range info.AccountDetails {
		for _, sd := range acc.Streams {
			if sd.Name == stream {
				return sd.State, nil
			}
		}
	}
	return server.StreamState{}, fmt.Errorf("no stream %s on %s", stream, s.Name())
}

// stepDownTo asks the stream leader to hand leadership to the server named
// preferred.
func stepDownTo(ctx context.Context, nc *nats.Conn, stream, preferred string) error {
	req, err := json.Marshal(server.JSApiLeaderStepdownRequest{
		Placement: &server.Placement{Preferred: preferred},
	})
	if err != nil {
		return err
	}
	msg, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, req)
	if err != nil {
		return err
	}
	var resp server.JSApiStreamLeaderStepDownResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return err
	}
	if resp.Error != nil {
		return resp.Error
	}
	return nil
}

// nodeIndex returns the index of the node named name.
func nodeIndex(t *testing.T, c *Cluster, name string) int {
	t.Helper()
	i := slices.IndexFunc(c.Nodes(), func(s *Server) bool { return s.Name() == name })
	if i < 0 {
		t.Fatalf("no node named %q", name)
	}
	return i
}

func TestClusterR3SurvivesNodeLossAndCatchesUp(t *testing.T) {
	t.Parallel()
	const before, during = 20, 20
	c := startTestCluster(t, ClusterConfig{Nodes: 3, StoreDir: t.TempDir()})
	if got := len(c.ClientURLs()); got != 3 || strings.Count(c.ClientURL(), ",") != 2 {
		t.Fatalf("ClientURLs = %v, ClientURL = %q; want 3 URLs", c.ClientURLs(), c.ClientURL())
	}
	nc, err := c.Connect(nats.ReconnectWait(50 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st := createStream(t, js, "ORDERS", 3)
	publishRetrying(t, js, "orders.BTCUSDT", 1, before)

	// Stop the stream leader: the hardest node to lose.
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	stopped := nodeIndex(t, c, info.Cluster.Leader)
	name := c.Node(stopped).Name()
	if err := c.StopNode(t.Context(), stopped); err != nil {
		t.Fatalf("StopNode: %v", err)
	}

	// Writes and reads go on with two of three nodes (a read may meet the
	// election of a new meta leader: no responders until it is done).
	publishRetrying(t, js, "orders.BTCUSDT", before+1, before+during)
	polltest.Until(t, "reading the stream with two nodes", func() error { return readStream(t, js, "ORDERS", before+during) })

	if err := c.RestartNode(t.Context(), stopped); err != nil {
		t.Fatalf("RestartNode: %v", err)
	}
	restarted := c.Node(stopped)
	if restarted.Name() != name {
		t.Fatalf("restarted node is named %q, want %q", restarted.Name(), name)
	}

	// The restarted node's own store holds every message...
	polltest.Until(t, "restarted node's local store catches up", func() error {
		state, err := localStreamState(restarted, "ORDERS")
		if err != nil {
			return err
		}
		if state.Msgs != before+during || state.LastSeq != before+during {
			return fmt.Errorf("local store has %d msgs up to seq %d", state.Msgs, state.LastSeq)
		}
		return nil
	}, polltest.WithTimeout(clusterWait))
	// ...and, once it leads the stream, serves each of them itself.
	polltest.Until(t, "restarted node becomes stream leader", func() error {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.Cluster.Leader == name {
			return nil
		}
		if err := stepDownTo(ctx, nc, "ORDERS", name); err != nil {
			return err
		}
		return errors.New("leader was " + info.Cluster.Leader)
	}, polltest.WithTimeout(clusterWait))
	// Without AllowDirect, a message get is answered by the stream leader
	// from its own store.
	if info := st.CachedInfo(); info.Config.AllowDirect {
		t.Fatal("stream allows direct gets: any replica could answer")
	}
	for i := uint64(1); i <= before+during; i++ {
		msg, err := st.GetMsg(t.Context(), i)
		if err != nil {
			t.Fatalf("GetMsg %d from %s: %v", i, name, err)
		}
		if string(msg.Data) != string(payload(i)) {
			t.Fatalf("GetMsg %d from %s: %q, want %q", i, name, msg.Data, payload(i))
		}
	}
	info, err = st.Info(t.Context())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.Cluster.Leader != name {
		t.Fatalf("leadership moved to %s during the reads", info.Cluster.Leader)
	}
}

func TestClusterNodesHaveDistinctStoresAndNames(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := startTestCluster(t, ClusterConfig{Nodes: 2, StoreDir: dir, Name: "edge"})
	nodes := c.Nodes()
	if len(nodes) != 2 {
		t.Fatalf("Nodes() has %d nodes, want 2", len(nodes))
	}
	for i, n := range nodes {
		wantName := fmt.Sprintf("edge-%d", i)
		if n.Name() != wantName || n.StoreDir() != dir+"/"+wantName {
			t.Errorf("node %d: name %q, store %q; want %q in %s", i, n.Name(), n.StoreDir(), wantName, dir)
		}
		if n.ClientURL() != c.ClientURLs()[i] {
			t.Errorf("node %d: ClientURL %q, cluster lists %q", i, n.ClientURL(), c.ClientURLs()[i])
		}
		if !n.srv.JetStreamIsClustered() {
			t.Errorf("node %d: JetStream is not clustered", i)
		}
	}
}

func TestStartClusterRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		cfg     ClusterConfig
		wantErr string
	}{
		"one node":     {cfg: ClusterConfig{Nodes: 1, StoreDir: t.TempDir()}, wantErr: "at least 2 nodes"},
		"no store dir": {cfg: ClusterConfig{Nodes: 3}, wantErr: ErrNoStoreDir.Error()},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := StartCluster(t.Context(), tt.cfg)
			if err == nil {
				_ = c.Shutdown(t.Context())
				t.Fatal("StartCluster succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not say %q", err, tt.wantErr)
			}
		})
	}
}
