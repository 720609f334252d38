// Package tlsconfig builds the TLS configurations of the platform's
// listeners and clients: the gateway (HTTPS, WSS), the internal Connect
// port (TLS, mTLS) and NATS. It loads certificate and key files, builds
// server and client configurations (TLS 1.2 at least), loads CA pools for
// mutual TLS, and generates a self-signed certificate for development.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// MinVersion is the oldest TLS version any configuration here accepts.
const MinVersion = tls.VersionTLS12

// ErrNoCertificates is returned for a CA file without a PEM certificate.
var ErrNoCertificates = errors.New("no PEM certificate found")

// LoadKeyPair reads a PEM certificate (chain) and its private key.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load key pair %s, %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// LoadPool reads the PEM certificates of file into a new pool: the CAs a
// client trusts for a server, or a server for its clients.
func LoadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file) //nolint:gosec // the operator's own file
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("load CA %s: %w", file, ErrNoCertificates)
	}
	return pool, nil
}

// Server is a server configuration presenting cert. With clientCAs, the
// server requires a client certificate and verifies it against them
// (mutual TLS); nil: it asks for none.
func Server(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	cfg := &tls.Config{MinVersion: MinVersion, Certificates: []tls.Certificate{cert}}
	if clientCAs != nil {
		cfg.ClientCAs = clientCAs
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}

// Client is a client configuration trusting rootCAs (nil: the system's
// roots) and presenting cert when not nil (for mutual TLS).
func Client(rootCAs *x509.CertPool, cert *tls.Certificate) *tls.Config {
	cfg := &tls.Config{MinVersion: MinVersion, RootCAs: rootCAs}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

// Peer is the configuration of a link whose ends are both servers and
// clients, as NATS cluster routes are: it presents cert either way and
// verifies the other end's certificate against cas either way.
func Peer(cert tls.Certificate, cas *x509.CertPool) *tls.Config {
	cfg := Server(cert, cas)
	cfg.RootCAs = cas
	return cfg
}
