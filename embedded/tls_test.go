package embedded

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tradex-mesh/tradex/internal/tlsconfig"
	"github.com/tradex-mesh/tradex/internal/tlsconfig/tlstest"
)

// plaintextGreeting dials addr without TLS and returns the server's INFO
// line and what it answers to a plaintext CONNECT and PING.
func plaintextGreeting(t *testing.T, addr string) (info, answer string) {
	t.Helper()
	var d net.Dialer
	conn, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	info, _ = r.ReadString('\n')
	if _, err := conn.Write([]byte("CONNECT {\"verbose\":false}\r\nPING\r\n")); err != nil {
		return info, err.Error()
	}
	answer, err = r.ReadString('\n')
	if err != nil {
		return info, answer + err.Error()
	}
	return info, answer
}

// With TLS, the client listener admits TLS clients that trust its CA (and,
// for mutual TLS, present a certificate from the client CA), refuses
// plaintext, and in-process connections need no TLS.
func TestClientTLS(t *testing.T) {
	t.Parallel()
	ca, other := tlstest.NewCA(t, "nats"), tlstest.NewCA(t, "other")
	serverCert, clientCert := ca.Server(t).Cert, ca.Client(t, "svc").Cert
	tests := []struct {
		name      string
		server    *tls.Config
		client    []nats.Option
		connected bool
	}{
		{"tls trusted", tlsconfig.Server(serverCert, nil), []nats.Option{nats.Secure(tlsconfig.Client(ca.Pool(), nil))}, true},
		{"tls no CA", tlsconfig.Server(serverCert, nil), nil, false},
		{"tls other CA", tlsconfig.Server(serverCert, nil), []nats.Option{nats.Secure(tlsconfig.Client(other.Pool(), nil))}, false},
		{"mtls client certificate", tlsconfig.Server(serverCert, ca.Pool()), []nats.Option{nats.Secure(tlsconfig.Client(ca.Pool(), &clientCert))}, true},
		{"mtls no client certificate", tlsconfig.Server(serverCert, ca.Pool()), []nats.Option{nats.Secure(tlsconfig.Client(ca.Pool(), nil))}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, err := Start(t.Context(), Options{StoreDir: t.TempDir(), Port: 0, TLS: tt.server})
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
			nc, err := nats.Connect(srv.ClientURL(), append(tt.client, nats.Timeout(5*time.Second))...)
			if err == nil {
				defer nc.Close()
				if _, err := nc.TLSConnectionState(); err != nil {
					t.Errorf("connected without TLS: %v", err)
				}
			}
			if (err == nil) != tt.connected {
				t.Fatalf("connect: %v, want connected %v", err, tt.connected)
			}
			info, answer := plaintextGreeting(t, strings.TrimPrefix(srv.ClientURL(), "nats://"))
			if !strings.Contains(info, `"tls_required":true`) || strings.HasPrefix(answer, "PONG") {
				t.Errorf("plaintext client: INFO %q, answer %q; want TLS required and no PONG", info, answer)
			}
			in, err := srv.Connect()
			if err != nil {
				t.Fatalf("in-process connection: %v", err)
			}
			in.Close()
		})
	}
}

// routeHandshake dials a route port over TLS with cfg and reports the
// handshake's outcome (the server's verdict on a client certificate
// included: it arrives with the first read).
func routeHandshake(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	d := tls.Dialer{Config: cfg}
	conn, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = bufio.NewReader(conn).ReadString('\n') // the route's INFO
	return err
}

// With route TLS, the nodes form a cluster over mutual-TLS routes: a route
// port completes a handshake with a certificate from the cluster's CA,
// refuses one without; client listeners take TLS too.
func TestClusterTLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "cluster")
	peer := ca.Peer(t, "127.0.0.1").Cert
	c, err := StartCluster(t.Context(), ClusterConfig{
		Nodes:    2,
		StoreDir: t.TempDir(),
		TLS:      tlsconfig.Server(ca.Server(t).Cert, nil),
		RouteTLS: tlsconfig.Peer(peer, ca.Pool()),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
		defer cancel()
		if err := c.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	for _, o := range c.opts {
		addr := hostPort(o.Cluster.Host, o.Cluster.Port)
		if err := routeHandshake(t, addr, tlsconfig.Client(ca.Pool(), &peer)); err != nil {
			t.Errorf("TLS route handshake with %s: %v", o.ServerName, err)
		}
		if err := routeHandshake(t, addr, tlsconfig.Client(ca.Pool(), nil)); err == nil {
			t.Errorf("a route to %s without a certificate got through", o.ServerName)
		}
	}
	nc, err := c.Connect(nats.Secure(tlsconfig.Client(ca.Pool(), nil)))
	if err != nil {
		t.Fatalf("TLS client to the cluster: %v", err)
	}
	defer nc.Close()
	if _, err := nc.TLSConnectionState(); err != nil {
		t.Errorf("cluster client connected without TLS: %v", err)
	}
}
