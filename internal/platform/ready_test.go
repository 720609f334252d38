package platform_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/health"
	"github.com/tradex-mesh/tradex/internal/platform"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
)

// start runs a platform of cfg on a fresh embedded server until the test
// ends.
func start(t *testing.T, cfg platform.Config) (*platform.Platform, *embeddedtest.Server) {
	t.Helper()
	s := embeddedtest.New(t)
	p, err := platform.New(cfg, platform.Deps{Dial: func(name string) (*nats.Conn, error) { return s.Connect(nats.Name(name)) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(context.WithoutCancel(t.Context())); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return p, s
}

// Every service, the instrument cache and the platform itself have a
// connection of their own, named in the server's connection list; a
// killed service's connection is gone, a restarted one has a new one.
func TestEachServiceHasItsOwnConnection(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	connections := func() []string {
		names, err := p.Server().ConnectionNames()
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	for _, name := range append(platform.Names(), "instruments", "platform") {
		if !slices.Contains(connections(), "tradex-"+name) {
			t.Errorf("no connection tradex-%s in %v", name, connections())
		}
	}
	p.KillWallet()
	polltest.True(t, "the wallet's connection gone", func() bool { return !slices.Contains(connections(), "tradex-wallet") })
	p.StartWallet()
	if !slices.Contains(connections(), "tradex-wallet") {
		t.Errorf("restarted wallet has no connection: %v", connections())
	}
}

// A service whose durable consumer falls further behind than MaxLag is
// Behind, and the status says by how much: here the wallet runs alone and
// cannot reach the metadata service to settle trades.
func TestAConsumerFarBehindIsNotReady(t *testing.T) {
	t.Parallel()
	cfg := platform.Default()
	cfg.Services, cfg.RemoteURL, cfg.MaxLag = []string{platform.Wallet}, "http://127.0.0.1:1", 2
	p, s := start(t, cfg)
	polltest.Until(t, "wallet ready before any trade", func() error {
		st, err := p.Status(t.Context(), platform.Wallet)
		if err == nil && !st.OK() {
			err = fmt.Errorf("status %+v", st)
		}
		return err
	})
	pub := streams.NewPublisher(s.JetStream(), streams.DefaultCatalog(), streams.WithSource("test/engine"))
	for seq := uint64(1); seq <= 3; seq++ {
		ev := &enginev1.EngineEvent{EventId: fmt.Sprintf("BTCUSDT:%d:0", seq), InstrumentId: "BTCUSDT", Sequence: seq,
			EngineTime: timestamppb.Now(), Event: &enginev1.EngineEvent_Trade{Trade: &enginev1.Trade{
				TradeId: fmt.Sprint(seq), Price: "50000.00", Quantity: "0.00100", TakerOrderId: "t", TakerAccountId: "alice",
				MakerOrderId: "m", MakerAccountId: "bob"}}}
		if _, err := pub.Publish(t.Context(), streams.TopicEngineEvent, "BTCUSDT", ev); err != nil {
			t.Fatal(err)
		}
	}
	polltest.Until(t, "wallet behind", func() error {
		st, err := p.Status(t.Context(), platform.Wallet)
		if err != nil {
			return err
		}
		want := "consumer wallet-settlement of engine.event.v1 is 3 messages behind (limit 2)"
		if st.State != health.Behind || !strings.Contains(st.Detail, want) {
			return fmt.Errorf("status %+v, want behind: %s", st, want)
		}
		return nil
	})
}
