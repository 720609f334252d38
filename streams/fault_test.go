package streams_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	"github.com/tradex-mesh/tradex/internal/polltest"
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

// pausableProxy forwards TCP connections to a server; while paused it
// forwards nothing from the server (what the server sends waits in the
// socket buffers), as on a stalled network path.
type pausableProxy struct {
	ln     net.Listener
	target string
	gate   sync.RWMutex // held for writing while paused
}

func newPausableProxy(t *testing.T, target string) *pausableProxy {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pausableProxy{ln: ln, target: target}
	t.Cleanup(func() { _ = ln.Close() })
	go p.serve(t)
	return p
}

func (p *pausableProxy) URL() string { return "nats://" + p.ln.Addr().String() }

func (p *pausableProxy) Pause()  { p.gate.Lock() }
func (p *pausableProxy) Resume() { p.gate.Unlock() }

func (p *pausableProxy) serve(t *testing.T) {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(context.WithoutCancel(t.Context()), "tcp", p.target)
		if err != nil {
			t.Errorf("proxy dial: %v", err)
			_ = client.Close()
			return
		}
		t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
		go func() { _, _ = io.Copy(server, client) }()
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := server.Read(buf)
				if n > 0 {
					p.gate.RLock()
					_, werr := client.Write(buf[:n])
					p.gate.RUnlock()
					if werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// A consumer that hears nothing from the broker for longer than two
// heartbeats (a stalled network path, a pull request lost while a
// replicated consumer had no leader) pulls again and keeps delivering; it
// once took nats.go's "no heartbeat received" for the end and stopped
// fetching for good.
func TestConsumerSurvivesMissedHeartbeats(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t, embeddedtest.WithTCP())
	catalog := faultCatalog(t)
	if err := streams.EnsureStreams(t.Context(), s.JetStream(), catalog); err != nil {
		t.Fatal(err)
	}
	proxy := newPausableProxy(t, strings.TrimPrefix(s.ClientURL(), "nats://"))
	nc, err := nats.Connect(proxy.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 16)
	c, err := streams.Consume(t.Context(), streams.NewClient(js, catalog), "fault.events.v1", streams.ConsumerConfig{Name: "stalled"},
		func(_ context.Context, m *streams.Message[*wrapperspb.StringValue]) error {
			got <- m.Payload.GetValue()
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.WithoutCancel(t.Context())) })
	pub := streams.NewPublisher(s.JetStream(), catalog)
	receive := func(want string) {
		t.Helper()
		if _, err := pub.Publish(t.Context(), "fault.events.v1", "k", wrapperspb.String(want)); err != nil {
			t.Fatal(err)
		}
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("got %q, want %q", v, want)
			}
		case <-c.Done():
			t.Fatalf("the consumer stopped before %q", want)
		case <-time.After(30 * time.Second):
			t.Fatalf("%q not delivered within 30 s", want)
		}
	}
	receive("before")
	proxy.Pause()
	// Wait until the client has missed its heartbeats: it pulls again.
	polltest.Until(t, "a new pull request after missed heartbeats", func() error {
		info, err := s.JetStream().Consumer(t.Context(), streams.StreamName("fault.events.v1"), "stalled")
		if err != nil {
			return err
		}
		if info.CachedInfo().NumWaiting < 2 {
			return errors.New("one pull request waiting")
		}
		return nil
	}, polltest.WithTimeout(30*time.Second))
	proxy.Resume()
	receive("after")
}
