package gateway_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tradex-mesh/tradex/gateway"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1/marketdatav1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/internal/rpcserver"
	"github.com/tradex-mesh/tradex/streams"
)

// probes serves /readyz over the platform's readiness checks and gRPC
// health over the platform, as `tradex serve` does; it returns the
// gateway's base URL and a gRPC health client of the internal port.
func probes(t *testing.T, p *platformtest.Platform) (string, *grpchealth.Client) {
	t.Helper()
	ready := map[string]gateway.Check{}
	for name, check := range p.Core().ReadyChecks() {
		ready[name] = check
	}
	gw, err := gateway.New(gateway.Default(), gateway.Deps{Ready: ready})
	if err != nil {
		t.Fatal(err)
	}
	rpc := rpcserver.New(nil, p.Core(), rpcserver.Options{}, p.ConnectServices()...)
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = rpc.Serve(ln) }() // Shutdown below ends it
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Second)
		defer cancel()
		_ = rpc.Shutdown(ctx)
	})
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: protocols}}
	return serve(t, gw), grpchealth.NewClient(h2c, "http://"+ln.Addr().String(), connect.WithGRPC())
}

// readyz is a poll condition: /readyz answers status, and its check of
// every service in checks holds the given text ("ok" for a ready one).
func readyz(t *testing.T, base string, status int, checks map[string]string) func() error {
	return func() error {
		r := call(t, "GET", base+"/readyz", "", nil)
		if r.status != status {
			return fmt.Errorf("/readyz %d %s, want %d", r.status, r.raw, status)
		}
		for name, want := range checks {
			if got := r.str("checks." + name); !strings.Contains(got, want) {
				return fmt.Errorf("/readyz check %s = %q, want %q (%s)", name, got, want, r.raw)
			}
		}
		return nil
	}
}

// grpcHealth is a poll condition: gRPC health of service is want.
func grpcHealth(t *testing.T, c *grpchealth.Client, service string, want grpchealth.Status) func() error {
	return func() error {
		res, err := c.Check(t.Context(), &grpchealth.CheckRequest{Service: service})
		if err != nil {
			return err
		}
		if res.Status != want {
			return fmt.Errorf("health of %q = %v, want %v", service, res.Status, want)
		}
		return nil
	}
}

// Market data stopped in the middle of its rebuild makes /readyz 503,
// naming it, and its gRPC health NOT_SERVING while the others serve;
// started again, it rebuilds, and both probes say ready once it caught up.
func TestReadinessFollowsAServiceThroughARebuild(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	base, health := probes(t, p)
	all := map[string]string{"nats": "ok", "metadata": "ok", "wallet": "ok", "order": "ok", "matching": "ok", "marketdata": "ok"}
	polltest.Until(t, "every service ready", readyz(t, base, http.StatusOK, all))
	polltest.Until(t, "server serving", grpcHealth(t, health, "", grpchealth.StatusServing))

	p.KillMarketData()
	polltest.Until(t, "market data not ready",
		readyz(t, base, http.StatusServiceUnavailable, map[string]string{"marketdata": "starting: not running", "wallet": "ok"}))
	polltest.Until(t, "market data NOT_SERVING", grpcHealth(t, health, marketdatav1connect.MarketDataServiceName, grpchealth.StatusNotServing))
	polltest.Until(t, "wallet still SERVING", grpcHealth(t, health, walletv1connect.WalletServiceName, grpchealth.StatusServing))
	polltest.Until(t, "server NOT_SERVING", grpcHealth(t, health, "", grpchealth.StatusNotServing))

	if err := p.Core().StartService(t.Context(), "marketdata"); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "market data caught up", readyz(t, base, http.StatusOK, all))
	polltest.Until(t, "market data SERVING", grpcHealth(t, health, marketdatav1connect.MarketDataServiceName, grpchealth.StatusServing))
}

// A poison event on engine.event.v1 (a gap in ETHUSDT's engine sequence)
// goes to dlq.engine.event.v1 with the reason, and market data stays
// ready, serving every instrument.
func TestAPoisonEventLeavesMarketDataServing(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	base, health := probes(t, p)
	pub := streams.NewPublisher(p.JetStream(), streams.DefaultCatalog(), streams.WithSource("test/forger"))
	ev := &enginev1.EngineEvent{
		EventId: "ETHUSDT:7:0", InstrumentId: "ETHUSDT", Sequence: 7, EngineTime: timestamppb.Now(),
		BookChanges: []*enginev1.BookLevelChange{{Side: commonv1.Side_SIDE_BUY, Price: "3000.00", Quantity: "1.0000"}},
		Event:       &enginev1.EngineEvent_Accepted{Accepted: &enginev1.OrderAccepted{OrderId: "forged"}},
	}
	if _, err := pub.Publish(t.Context(), streams.TopicEngineEvent, "ETHUSDT", ev); err != nil {
		t.Fatal(err)
	}
	dlq := streams.NewDLQ(p.JetStream(), streams.DefaultCatalog())
	polltest.Until(t, "the poison event dead-lettered", func() error {
		letters, err := dlq.List(t.Context(), streams.TopicEngineEvent, streams.DLQFilter{Handler: "marketdata-feed"})
		if err == nil && (len(letters) != 1 || !strings.Contains(letters[0].Reason, "gap in the engine sequence")) {
			err = fmt.Errorf("dead letters %+v", letters)
		}
		return err
	})
	polltest.Until(t, "market data ready", readyz(t, base, http.StatusOK, map[string]string{"marketdata": "ok"}))
	polltest.Until(t, "market data SERVING", grpcHealth(t, health, marketdatav1connect.MarketDataServiceName, grpchealth.StatusServing))
	for _, sym := range []string{"BTCUSDT", "ETHUSDT"} {
		if _, err := p.MarketData.GetBook(t.Context(), &marketdatav1.GetBookRequest{InstrumentId: sym}); err != nil {
			t.Errorf("GetBook %s after the poison event: %v", sym, err)
		}
	}
}
