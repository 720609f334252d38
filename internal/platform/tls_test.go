package platform_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"testing"
	"time"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/internal/platform"
	"github.com/tradex-mesh/tradex/internal/tlsconfig"
	"github.com/tradex-mesh/tradex/internal/tlsconfig/tlstest"
)

// The broker reaches an external server that requires mutual TLS with
// BrokerConfig.ClientTLS, and not without its CA or its client
// certificate.
func TestBrokerDialsExternalServerOverTLS(t *testing.T) {
	t.Parallel()
	ca, other := tlstest.NewCA(t, "nats"), tlstest.NewCA(t, "other")
	srv, err := embedded.Start(t.Context(), embedded.Options{StoreDir: t.TempDir(), Port: 0,
		TLS: tlsconfig.Server(ca.Server(t).Cert, ca.Pool())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	client := ca.Client(t, "tradex").Cert
	tests := []struct {
		name string
		tls  *tls.Config
		ok   bool
	}{
		{"CA and client certificate", tlsconfig.Client(ca.Pool(), &client), true},
		{"no TLS settings", nil, false},
		{"CA without client certificate", tlsconfig.Client(ca.Pool(), nil), false},
		{"another CA", tlsconfig.Client(other.Pool(), &client), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := platform.StartBroker(t.Context(), slog.New(slog.DiscardHandler), platform.BrokerConfig{URL: srv.ClientURL(), ClientTLS: tt.tls})
			if (err == nil) != tt.ok {
				t.Fatalf("StartBroker: %v, want success %v", err, tt.ok)
			}
			if err != nil {
				return
			}
			nc, err := b.Dial(platform.UserPlatform)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer nc.Close()
			if _, err := nc.TLSConnectionState(); err != nil {
				t.Errorf("connected without TLS: %v", err)
			}
		})
	}
}
