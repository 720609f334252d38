package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// tlsFlags declares the TLS flags of the gateway, the internal port and
// NATS.
func tlsFlags(fs *flag.FlagSet, cfg *serveConfig) {
	fs.StringVar(&cfg.TLSCert, "tls-cert", cfg.TLSCert, "gateway certificate file (PEM, chain): serve HTTPS and WSS on --http-addr; needs --tls-key")
	fs.StringVar(&cfg.TLSKey, "tls-key", cfg.TLSKey, "gateway private key file (PEM) of --tls-cert")
	fs.BoolVar(&cfg.TLSSelfSigned, "tls-self-signed", cfg.TLSSelfSigned, "development: serve HTTPS and WSS with a self-signed certificate generated into <data-dir> (kept across restarts)")
	fs.StringVar(&cfg.InternalTLSCert, "internal-tls-cert", cfg.InternalTLSCert, "internal port certificate file (PEM): serve TLS (HTTP/2 through ALPN) instead of h2c; needs --internal-tls-key")
	fs.StringVar(&cfg.InternalTLSKey, "internal-tls-key", cfg.InternalTLSKey, "internal port private key file (PEM) of --internal-tls-cert")
	fs.StringVar(&cfg.InternalClientCA, "internal-client-ca", cfg.InternalClientCA, "CA file (PEM): the internal port requires client certificates it signed (mTLS); such a certificate is a service credential, no token needed")
	fs.StringVar(&cfg.InternalCA, "internal-ca", cfg.InternalCA, "CA file (PEM) this process trusts for internal ports (its own, --services-url); empty: the system's roots and --internal-tls-cert")
	fs.StringVar(&cfg.InternalClientCert, "internal-client-cert", cfg.InternalClientCert, "client certificate file (PEM) this process presents to internal ports; needs --internal-client-key")
	fs.StringVar(&cfg.InternalClientKey, "internal-client-key", cfg.InternalClientKey, "private key file (PEM) of --internal-client-cert")
	fs.StringVar(&cfg.NATSTLSCert, "nats-tls-cert", cfg.NATSTLSCert, "embedded NATS certificate file (PEM): its client listener requires TLS; needs --nats-tls-key")
	fs.StringVar(&cfg.NATSTLSKey, "nats-tls-key", cfg.NATSTLSKey, "embedded NATS private key file (PEM) of --nats-tls-cert")
	fs.StringVar(&cfg.NATSCA, "nats-ca", cfg.NATSCA, "CA file (PEM) trusted for the --nats cluster's certificates (connect over TLS)")
	fs.StringVar(&cfg.NATSClientCert, "nats-client-cert", cfg.NATSClientCert, "client certificate file (PEM) presented to the --nats cluster; needs --nats-client-key")
	fs.StringVar(&cfg.NATSClientKey, "nats-client-key", cfg.NATSClientKey, "private key file (PEM) of --nats-client-cert")
}

// validateTLS reports the first TLS setting that cannot work, naming the
// flags.
func (c serveConfig) validateTLS() error {
	pairs := [][4]string{
		{"--tls-cert", c.TLSCert, "--tls-key", c.TLSKey},
		{"--internal-tls-cert", c.InternalTLSCert, "--internal-tls-key", c.InternalTLSKey},
		{"--internal-client-cert", c.InternalClientCert, "--internal-client-key", c.InternalClientKey},
		{"--nats-tls-cert", c.NATSTLSCert, "--nats-tls-key", c.NATSTLSKey},
		{"--nats-client-cert", c.NATSClientCert, "--nats-client-key", c.NATSClientKey},
	}
	for _, p := range pairs {
		if (p[1] == "") != (p[3] == "") {
			return fmt.Errorf("%s and %s: give both or neither", p[0], p[2])
		}
	}
	for _, check := range []func() error{c.validateGatewayTLS, c.validateInternalTLS, c.validateNATSTLS} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (c serveConfig) validateGatewayTLS() error {
	if c.TLSSelfSigned && c.TLSCert != "" {
		return errors.New("--tls-self-signed: not with --tls-cert and --tls-key (choose one)")
	}
	if c.TLSSelfSigned && c.DataDir == "" {
		return errors.New("--tls-self-signed: needs --data-dir to keep the certificate in")
	}
	return nil
}

func (c serveConfig) validateInternalTLS() error {
	if c.InternalClientCA != "" && c.InternalTLSCert == "" {
		return errors.New("--internal-client-ca: needs --internal-tls-cert and --internal-tls-key (mutual TLS is TLS)")
	}
	if c.InternalClientCA != "" && c.InternalClientCert == "" {
		return errors.New("--internal-client-ca: this process calls its own internal port (the WebSocket feed): give it --internal-client-cert and --internal-client-key")
	}
	clientTLS := c.InternalCA != "" || c.InternalClientCert != ""
	if clientTLS && c.InternalTLSCert == "" && !strings.HasPrefix(c.ServicesURL, "https://") {
		return errors.New("--internal-ca, --internal-client-cert: no TLS to use them on (no --internal-tls-cert, and --services-url is not https://)")
	}
	return nil
}

func (c serveConfig) validateNATSTLS() error {
	if c.NATSTLSCert != "" && c.NATSURL != "" {
		return errors.New("--nats-tls-cert: configures the embedded server, which does not run with --nats (use --nats-ca for the cluster's TLS)")
	}
	if c.NATSTLSCert != "" && c.NATSListen == "none" {
		return errors.New("--nats-tls-cert: --nats-listen is none: no listener to protect (in-process connections need no TLS)")
	}
	if (c.NATSCA != "" || c.NATSClientCert != "") && c.NATSURL == "" {
		return errors.New("--nats-ca, --nats-client-cert: only for an external cluster (--nats); the embedded server's connections are in process")
	}
	return nil
}
