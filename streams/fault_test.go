package streams_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	"github.com/tradex-mesh/tradex/streams"
)

// faultCatalog has one financial topic carrying strings.
func faultCatalog(t *testing.T) *streams.Catalog {
	t.Helper()
	c, err := streams.NewCatalog(streams.Topic{Name: "fault.events.v1", Payload: &wrapperspb.StringValue{}, Profile: streams.Financial})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPublishReportsUnavailableBroker(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	catalog := faultCatalog(t)
	if err := streams.EnsureStreams(t.Context(), s.JetStream(), catalog); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	pub := streams.NewPublisher(s.JetStream(), catalog, streams.WithPublishRetries(1))
	_, err := pub.Publish(t.Context(), "fault.events.v1", "k", wrapperspb.String("lost?"))
	if !errors.Is(err, streams.ErrUnavailable) {
		t.Fatalf("publish with the broker gone: err = %v, want ErrUnavailable", err)
	}
}

// A replicated stream keeps taking writes while its leader's node is down,
// and every acknowledged write is stored exactly once.
func TestPublishSurvivesLeaderLoss(t *testing.T) {
	t.Parallel()
	c := embeddedtest.NewCluster(t, 3)
	catalog := faultCatalog(t)
	js := c.JetStream()
	if err := streams.EnsureStreams(t.Context(), js, catalog, streams.WithReplicas(3)); err != nil {
		t.Fatal(err)
	}
	pub := streams.NewPublisher(js, catalog)
	const n = 60
	publish := func(i int) {
		t.Helper()
		id := fmt.Sprintf("evt-%d", i)
		if _, err := pub.Publish(t.Context(), "fault.events.v1", "k", wrapperspb.String(id), streams.WithMsgID(id)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	for i := range n / 2 {
		publish(i)
	}
	st, err := js.Stream(t.Context(), streams.StreamName("fault.events.v1"))
	if err != nil {
		t.Fatal(err)
	}
	leader := st.CachedInfo().Cluster.Leader
	stopped := -1
	for i, node := range c.Nodes() {
		if node.Name() == leader {
			stopped = i
		}
	}
	if stopped < 0 {
		t.Fatalf("leader %q is not a node of the cluster", leader)
	}
	if err := c.StopNode(t.Context(), stopped); err != nil {
		t.Fatal(err)
	}
	for i := n / 2; i < n; i++ {
		publish(i)
	}
	if err := c.RestartNode(t.Context(), stopped); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := st.Info(t.Context())
		if err == nil && info.State.Msgs == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream state %+v (err %v) 20s after restart, want %d messages", info, err, n)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	seen := map[string]bool{}
	for seq := uint64(1); seq <= n; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		var v wrapperspb.StringValue
		if err := proto.Unmarshal(m.Data, &v); err != nil {
			t.Fatal(err)
		}
		seen[v.GetValue()] = true
	}
	for i := range n {
		if id := fmt.Sprintf("evt-%d", i); !seen[id] {
			t.Errorf("acknowledged %s is not in the stream", id)
		}
	}
}
