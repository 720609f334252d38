package platform_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tradex-mesh/tradex/internal/platform"
	"github.com/tradex-mesh/tradex/streams"
)

// An external nats-server configured with `tradex nats config` admits
// the platform, which runs on it with the same users and permissions as
// on the embedded server, and nobody else.
func TestThePlatformRunsOnAnExternalServerWithItsUsers(t *testing.T) {
	t.Parallel()
	creds := platform.NewCredentials()
	auth, err := creds.ServerConfig(streams.DefaultCatalog())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "server.conf")
	body := fmt.Sprintf("listen: \"127.0.0.1:-1\"\njetstream { store_dir: %q }\n%s", filepath.Join(dir, "js"), auth)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("the generated configuration does not load: %v\n%s", err, body)
	}
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	url := srv.ClientURL()

	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("an unauthenticated connection was admitted")
	}
	broker, err := platform.StartBroker(t.Context(), slog.New(slog.DiscardHandler), platform.BrokerConfig{URL: url, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	p, err := platform.New(testConfig(), platform.Deps{Dial: broker.Dial})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.WithoutCancel(t.Context())) })
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}

	wallet, err := platform.Dial(url, creds, "tradex-wallet")
	if err != nil {
		t.Fatal(err)
	}
	defer wallet.Close()
	mesh, err := streams.Connect(wallet, streams.DefaultCatalog())
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer pcancel()
	if _, err := mesh.Publisher(streams.WithPublishRetries(0)).Publish(pctx, streams.TopicEngineEvent, "BTCUSDT", forgedTrade()); err == nil {
		t.Fatal("the wallet's user published an engine event on the external server")
	}
}
