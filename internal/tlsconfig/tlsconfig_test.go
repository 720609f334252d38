package tlsconfig_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tradex-mesh/tradex/internal/tlsconfig"
	"github.com/tradex-mesh/tradex/internal/tlsconfig/tlstest"
)

// handshake runs a TLS handshake between server and client configurations
// over loopback TCP and returns the client's error, else the server's.
func handshake(t *testing.T, server, client *tls.Config) error {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		s := tls.Server(c, server)
		err = s.HandshakeContext(t.Context())
		_ = s.Close()
		srvErr <- err
	}()
	d := tls.Dialer{Config: client}
	c, err := d.DialContext(t.Context(), "tcp", ln.Addr().String())
	if err == nil {
		// TLS 1.3: the client finishes before the server checked its
		// certificate; the server's verdict arrives on the first read.
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err = c.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
			err = nil
		}
		_ = c.Close()
	}
	if sErr := <-srvErr; err == nil {
		err = sErr
	}
	return err
}

func TestServerAndClient(t *testing.T) {
	t.Parallel()
	ca, other := tlstest.NewCA(t, "ca"), tlstest.NewCA(t, "other")
	server := ca.Server(t).Cert
	client, stranger := ca.Client(t, "svc").Cert, other.Client(t, "svc").Cert
	tests := []struct {
		name   string
		server *tls.Config
		client *tls.Config
		ok     bool
	}{
		{"tls trusted", tlsconfig.Server(server, nil), tlsconfig.Client(ca.Pool(), nil), true},
		{"tls untrusted server", tlsconfig.Server(server, nil), tlsconfig.Client(other.Pool(), nil), false},
		{"mtls client cert from the CA", tlsconfig.Server(server, ca.Pool()), tlsconfig.Client(ca.Pool(), &client), true},
		{"mtls no client cert", tlsconfig.Server(server, ca.Pool()), tlsconfig.Client(ca.Pool(), nil), false},
		{"mtls client cert from another CA", tlsconfig.Server(server, ca.Pool()), tlsconfig.Client(ca.Pool(), &stranger), false},
		{"tls 1.1 client", tlsconfig.Server(server, nil), &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11}, false}, //nolint:gosec // the point
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.client.ServerName = "localhost"
			err := handshake(t, tt.server, tt.client)
			if (err == nil) != tt.ok {
				t.Fatalf("handshake: %v, want success %v", err, tt.ok)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tlsconfig.LoadPool(notPEM); !errors.Is(err, tlsconfig.ErrNoCertificates) {
		t.Errorf("LoadPool(not PEM) = %v, want ErrNoCertificates", err)
	}
	if _, err := tlsconfig.LoadPool(filepath.Join(dir, "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadPool(missing) = %v, want ErrNotExist", err)
	}
	if _, err := tlsconfig.LoadKeyPair(notPEM, notPEM); err == nil {
		t.Error("LoadKeyPair(not PEM) succeeded")
	}
	ca := tlstest.NewCA(t, "ca")
	certFile, keyFile := ca.Server(t).Write(t, dir, "server")
	if _, err := tlsconfig.LoadKeyPair(certFile, keyFile); err != nil {
		t.Errorf("LoadKeyPair: %v", err)
	}
	if pool, err := tlsconfig.LoadPool(ca.WriteCA(t, dir, "ca.pem")); err != nil || !pool.Equal(ca.Pool()) {
		t.Errorf("LoadPool(ca) = %v, %v", pool, err)
	}
}

func TestSelfSignedHosts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host string
		want []string
	}{
		{"", []string{"localhost", "127.0.0.1", "::1"}},
		{"0.0.0.0", []string{"localhost", "127.0.0.1", "::1"}},
		{"::", []string{"localhost", "127.0.0.1", "::1"}},
		{"127.0.0.1", []string{"localhost", "127.0.0.1", "::1"}},
		{"10.1.2.3", []string{"localhost", "127.0.0.1", "::1", "10.1.2.3"}},
		{"tradex.test", []string{"localhost", "127.0.0.1", "::1", "tradex.test"}},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			t.Parallel()
			if got := tlsconfig.SelfSignedHosts(tt.host); !slices.Equal(got, tt.want) {
				t.Errorf("SelfSignedHosts(%q) = %v, want %v", tt.host, got, tt.want)
			}
		})
	}
}

// A self-signed certificate is kept (the key readable by its owner only),
// reused while it covers the hosts, and a client that trusts it connects
// by every name.
func TestEnsureSelfSigned(t *testing.T) {
	t.Parallel()
	dir, now := filepath.Join(t.TempDir(), "data"), time.Now()
	hosts := tlsconfig.SelfSignedHosts("10.1.2.3")
	cert, generated, err := tlsconfig.EnsureSelfSigned(dir, hosts, now)
	if err != nil || !generated {
		t.Fatalf("EnsureSelfSigned: generated %v, %v", generated, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, tlsconfig.SelfSignedKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	if k := cert.Leaf.PublicKey; cert.Leaf.PublicKeyAlgorithm != x509.ECDSA || k == nil {
		t.Errorf("key algorithm %v, want ECDSA", cert.Leaf.PublicKeyAlgorithm)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	for _, h := range hosts {
		client := tlsconfig.Client(pool, nil)
		client.ServerName = h
		if err := handshake(t, tlsconfig.Server(cert, nil), client); err != nil {
			t.Errorf("handshake as %s: %v", h, err)
		}
	}

	again, generated, err := tlsconfig.EnsureSelfSigned(dir, hosts, now)
	if err != nil || generated || tlsconfig.Fingerprint(again.Leaf) != tlsconfig.Fingerprint(cert.Leaf) {
		t.Errorf("second start: generated %v, %v; want the stored certificate", generated, err)
	}
	moved, generated, err := tlsconfig.EnsureSelfSigned(dir, tlsconfig.SelfSignedHosts("tradex.test"), now)
	if err != nil || !generated || moved.Leaf.VerifyHostname("tradex.test") != nil {
		t.Errorf("a new listen host: generated %v, %v; want a new certificate for it", generated, err)
	}
	_, generated, err = tlsconfig.EnsureSelfSigned(dir, tlsconfig.SelfSignedHosts("tradex.test"), now.Add(tlsconfig.SelfSignedValidity))
	if err != nil || !generated {
		t.Errorf("near expiry: generated %v, %v; want a new certificate", generated, err)
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	fp := tlsconfig.Fingerprint(tlstest.NewCA(t, "ca").Cert)
	if len(fp) != 32*3-1 || fp[2] != ':' {
		t.Errorf("Fingerprint = %q, want 32 colon-separated hex bytes", fp)
	}
}
