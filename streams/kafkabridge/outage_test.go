package kafkabridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
)

// freePort is a loopback port nobody listens on now, so a restarted
// server can come back at the address its clients know.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port //nolint:forcetypeassert // a TCP listener's address
}

// checkBothWays waits until both directions caught up and checks that
// every message crossed exactly once: events exported, commands imported.
func (f *fixture) checkBothWays(t *testing.T, events, commands int) {
	t.Helper()
	polltest.Until(t, "both directions caught up", func() error {
		if n := f.kafkaCount(t, exportTopic); n < int64(events) {
			return fmt.Errorf("%d exported", n)
		}
		if n := len(f.streamMessages(t, importTopic)); n < commands {
			return fmt.Errorf("%d imported", n)
		}
		return errors.Join(f.exportCaughtUp(t.Context(), DefaultName), f.importCaughtUp(t.Context(), DefaultName))
	}, polltest.WithTimeout(60*time.Second))
	exported := map[string]int{}
	for _, r := range f.kafkaRecords(t, exportTopic) {
		var ev enginev1.EngineEvent
		if err := proto.Unmarshal(r.Value, &ev); err != nil {
			t.Fatal(err)
		}
		exported[ev.GetEventId()]++
	}
	imported := map[string]int{}
	for _, m := range f.streamMessages(t, importTopic) {
		var cmd enginev1.OrderCommand
		if err := proto.Unmarshal(m.Data, &cmd); err != nil {
			t.Fatal(err)
		}
		imported[cmd.GetCommandId()]++
	}
	checkOnce(t, "exported to Kafka", exported, events)
	checkOnce(t, "imported to JetStream", imported, commands)
}

// Kafka stops while messages wait on both sides and comes back at the
// same address with its data: the bridge, never restarted, carries on and
// nothing is lost or doubled.
func TestKafkaOutageIsRiddenOut(t *testing.T) {
	t.Parallel()
	dir, port := t.TempDir(), freePort(t)
	kafka := func() *kfake.Cluster { return newKafka(t, kfake.Ports(port), kfake.DataDir(dir)) }
	f := newFixtureOn(t, embeddedtest.New(t).JetStream(), kafka(), nil)
	keys := []string{"BTCUSDT", "ETHUSDT"}
	f.run(t, f.config(Route{exportTopic, Export}, Route{importTopic, Import}))
	f.publishEvents(t.Context(), t, keys, 10)
	f.produceCommands(t, keys, 0, 10)
	f.checkBothWays(t, 20, 20)

	f.kafka.Close()
	// While Kafka is down, events wait in JetStream.
	f.publishEvents(t.Context(), t, []string{"SOLUSDT"}, 20)
	f.kafka = kafka()
	f.produceCommands(t, []string{"SOLUSDT"}, 0, 20)
	f.checkBothWays(t, 40, 40)
}

// The NATS server stops while records wait in Kafka and comes back with
// its store: the bridge reconnects and carries on.
func TestNATSOutageIsRiddenOut(t *testing.T) {
	t.Parallel()
	dir, port := t.TempDir(), freePort(t)
	start := func() *embedded.Server {
		srv, err := embedded.Start(t.Context(), embedded.Options{StoreDir: dir, Port: port})
		if err != nil {
			t.Fatalf("start NATS: %v", err)
		}
		t.Cleanup(func() { _ = srv.Shutdown(context.WithoutCancel(t.Context())) })
		return srv
	}
	srv := start()
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixtureOn(t, js, newKafka(t), nil)
	keys := []string{"BTCUSDT", "ETHUSDT"}
	f.run(t, f.config(Route{exportTopic, Export}, Route{importTopic, Import}))
	f.publishEvents(t.Context(), t, keys, 10)
	f.produceCommands(t, keys, 0, 10)
	f.checkBothWays(t, 20, 20)

	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	// While NATS is down, records wait in Kafka.
	f.produceCommands(t, []string{"SOLUSDT"}, 0, 20)
	start()
	polltest.Until(t, "reconnected", func() error {
		if !nc.IsConnected() {
			return errors.New(nc.Status().String())
		}
		return nil
	})
	f.publishEvents(t.Context(), t, []string{"SOLUSDT"}, 20)
	f.checkBothWays(t, 40, 40)
}
