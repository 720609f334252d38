package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/tradex-mesh/tradex/internal/rpcserver"
	"github.com/tradex-mesh/tradex/internal/tlsconfig"
)

// listenerTLS are the TLS configurations of serve's listeners and of its
// clients of internal ports; nil: plaintext.
type listenerTLS struct {
	// Gateway serves HTTPS and WSS on --http-addr.
	Gateway *tls.Config
	// Internal serves the internal port; InternalClient is how this
	// process calls internal ports (its own, --services-url).
	Internal, InternalClient *tls.Config
}

// loadListenerTLS loads the gateway's and the internal port's
// certificates, generating the self-signed one in dev mode.
func loadListenerTLS(ctx context.Context, logger *slog.Logger, cfg serveConfig) (listenerTLS, error) {
	var l listenerTLS
	var err error
	if l.Gateway, err = gatewayTLS(ctx, logger, cfg); err != nil {
		return l, err
	}
	if l.Internal, err = internalTLS(cfg); err != nil {
		return l, err
	}
	l.InternalClient, err = internalClientTLS(cfg, l.Internal)
	return l, err
}

// gatewayTLS is the gateway's server configuration: --tls-cert/--tls-key,
// or the self-signed certificate of --tls-self-signed, or none. The
// gateway speaks HTTP/1.1 only (WebSocket upgrades need it).
func gatewayTLS(ctx context.Context, logger *slog.Logger, cfg serveConfig) (*tls.Config, error) {
	var cert tls.Certificate
	switch {
	case cfg.TLSCert != "":
		c, err := tlsconfig.LoadKeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert, --tls-key: %w", err)
		}
		cert = c
	case cfg.TLSSelfSigned:
		host, _, _ := net.SplitHostPort(cfg.HTTPAddr) // validated
		c, generated, err := tlsconfig.EnsureSelfSigned(cfg.DataDir, tlsconfig.SelfSignedHosts(host), time.Now())
		if err != nil {
			return nil, fmt.Errorf("--tls-self-signed: %w", err)
		}
		logger.WarnContext(ctx, "gateway serves a self-signed certificate: for development only",
			"file", filepath.Join(cfg.DataDir, tlsconfig.SelfSignedCertFile), "generated", generated,
			"sha256", tlsconfig.Fingerprint(c.Leaf), "hosts", c.Leaf.DNSNames, "ips", c.Leaf.IPAddresses, "expires", c.Leaf.NotAfter)
		cert = c
	default:
		return nil, nil
	}
	t := tlsconfig.Server(cert, nil)
	t.NextProtos = []string{"http/1.1"}
	return t, nil
}

// internalTLS is the internal port's server configuration, mutual TLS
// with --internal-client-ca; nil without --internal-tls-cert.
func internalTLS(cfg serveConfig) (*tls.Config, error) {
	if cfg.InternalTLSCert == "" {
		return nil, nil
	}
	cert, err := tlsconfig.LoadKeyPair(cfg.InternalTLSCert, cfg.InternalTLSKey)
	if err != nil {
		return nil, fmt.Errorf("--internal-tls-cert, --internal-tls-key: %w", err)
	}
	var clientCAs *x509.CertPool
	if cfg.InternalClientCA != "" {
		if clientCAs, err = tlsconfig.LoadPool(cfg.InternalClientCA); err != nil {
			return nil, fmt.Errorf("--internal-client-ca: %w", err)
		}
	}
	return tlsconfig.Server(cert, clientCAs), nil
}

// internalClientTLS is how this process's clients of internal ports speak
// TLS: trusting --internal-ca (else the system's roots and this process's
// own internal certificate) and presenting --internal-client-cert. Nil
// when nothing asks for TLS.
func internalClientTLS(cfg serveConfig, server *tls.Config) (*tls.Config, error) {
	if server == nil && cfg.InternalCA == "" && cfg.InternalClientCert == "" {
		return nil, nil
	}
	roots, err := internalRoots(cfg, server)
	if err != nil {
		return nil, err
	}
	var cert *tls.Certificate
	if cfg.InternalClientCert != "" {
		c, err := tlsconfig.LoadKeyPair(cfg.InternalClientCert, cfg.InternalClientKey)
		if err != nil {
			return nil, fmt.Errorf("--internal-client-cert, --internal-client-key: %w", err)
		}
		cert = &c
	}
	return tlsconfig.Client(roots, cert), nil
}

// internalRoots are the CAs trusted for internal ports: --internal-ca,
// else the system's roots plus the process's own internal certificate.
func internalRoots(cfg serveConfig, server *tls.Config) (*x509.CertPool, error) {
	if cfg.InternalCA != "" {
		pool, err := tlsconfig.LoadPool(cfg.InternalCA)
		if err != nil {
			return nil, fmt.Errorf("--internal-ca: %w", err)
		}
		return pool, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system roots (a minimal container)
	}
	if server != nil && server.Certificates[0].Leaf != nil {
		pool.AddCert(server.Certificates[0].Leaf)
	}
	return pool, nil
}

// natsTLS is the embedded server's listener configuration
// (--nats-tls-cert) and the client configuration for the external cluster
// (--nats-ca, --nats-client-cert); nil when not asked for.
func natsTLS(cfg serveConfig) (server, client *tls.Config, err error) {
	if cfg.NATSTLSCert != "" {
		cert, err := tlsconfig.LoadKeyPair(cfg.NATSTLSCert, cfg.NATSTLSKey)
		if err != nil {
			return nil, nil, fmt.Errorf("--nats-tls-cert, --nats-tls-key: %w", err)
		}
		server = tlsconfig.Server(cert, nil)
	}
	client, err = natsClientTLS(cfg.NATSCA, cfg.NATSClientCert, cfg.NATSClientKey)
	return server, client, err
}

// natsClientTLS is a NATS client's TLS (--nats-ca, --nats-client-cert);
// nil when neither is given.
func natsClientTLS(ca, certFile, keyFile string) (*tls.Config, error) {
	if ca == "" && certFile == "" {
		return nil, nil
	}
	return clientTLS("--nats", ca, certFile, keyFile)
}

// clientTLS is a client's TLS configured by the flags <prefix>-ca,
// <prefix>-client-cert and <prefix>-client-key: trusting the CA file ca
// (empty: the system's roots), presenting certFile and keyFile when given.
func clientTLS(prefix, ca, certFile, keyFile string) (*tls.Config, error) {
	var roots *x509.CertPool // nil: the system's roots
	if ca != "" {
		var err error
		if roots, err = tlsconfig.LoadPool(ca); err != nil {
			return nil, fmt.Errorf("%s-ca: %w", prefix, err)
		}
	}
	var cert *tls.Certificate
	if certFile != "" {
		c, err := tlsconfig.LoadKeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("%s-client-cert, %s-client-key: %w", prefix, prefix, err)
		}
		cert = &c
	}
	return tlsconfig.Client(roots, cert), nil
}

// internalHTTPClient calls internal ports with the service token, over
// TLS with t when set (HTTP/2 through ALPN), else plaintext.
func internalHTTPClient(token string, t *tls.Config) *http.Client {
	var base http.RoundTripper
	if t != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone() //nolint:forcetypeassert // the standard library's own type
		tr.TLSClientConfig, tr.ForceAttemptHTTP2 = t, true
		base = tr
	}
	return &http.Client{Transport: rpcserver.TokenTransport{Token: token, Base: base}}
}
