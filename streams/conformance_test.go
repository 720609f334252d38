package streams_test

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	"github.com/tradex-mesh/tradex/streams/streamstest"
)

// connect opens a connection with open and closes it at the end of the test.
func connect(t *testing.T, open func(...nats.Option) (*nats.Conn, error)) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := open()
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func TestConformanceSingleNode(t *testing.T) {
	t.Parallel()
	streamstest.Run(t, func(t *testing.T) streamstest.Env {
		s := embeddedtest.New(t)
		return streamstest.Env{
			JetStream: s.JetStream(),
			Connect:   func(t *testing.T) (*nats.Conn, jetstream.JetStream) { return connect(t, s.Connect) },
			Replicas:  1,
		}
	})
}

func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	streamstest.Run(t, func(t *testing.T) streamstest.Env {
		c := embeddedtest.NewCluster(t, 3)
		return streamstest.Env{
			JetStream: c.JetStream(),
			Connect:   func(t *testing.T) (*nats.Conn, jetstream.JetStream) { return connect(t, c.Connect) },
			Replicas:  3,
			Patience:  3, // R3 consumers and elections on two loaded cores
		}
	})
}
