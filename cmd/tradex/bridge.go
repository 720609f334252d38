package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/tradex-mesh/tradex/internal/platform"
	"github.com/tradex-mesh/tradex/streams"
)

// bridgeConfig is everything `tradex bridge` is told.
type bridgeConfig struct {
	// NATSURL, NATSCredentials and the TLS files say how to reach NATS; the
	// bridge logs in as tradex-kafka-bridge.
	NATSURL, NATSCredentials              string
	NATSCA, NATSClientCert, NATSClientKey string
	Kafka                                 kafkaConfig
	// HTTPAddr serves /metrics (and the schema registry) behind HTTP Basic
	// authentication with HTTPUser and the password in HTTPPasswordFile;
	// empty: no listener.
	HTTPAddr, HTTPUser, HTTPPasswordFile string
	LogLevel, LogFormat                  string
}

const bridgeUsage = `Usage: tradex bridge --kafka-brokers HOST:PORT --kafka-routes TOPIC=DIRECTION[,...] [flags]

Carries catalog topics between the platform's NATS JetStream and Kafka:
export (JetStream to Kafka), import (Kafka to JetStream) or both, keys,
headers and per-key order kept, nothing lost or doubled (docs/kafka-bridge.md).
Run as many replicas as you like with the same --kafka-name.

Every flag can also be set as TRADEX_<FLAG> (e.g. TRADEX_KAFKA_BROKERS).

Flags:
`

// runBridge runs `tradex bridge` until ctx ends.
func runBridge(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseBridgeFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := cfg.Kafka.check(); err != nil {
		return err
	}
	creds, err := dlqCredentials(cfg.NATSCredentials)
	if err != nil {
		return err
	}
	dialOpts := []platform.DialOption{platform.Reconnecting()}
	if t, err := natsClientTLS(cfg.NATSCA, cfg.NATSClientCert, cfg.NATSClientKey); err != nil {
		return err
	} else if t != nil {
		dialOpts = append(dialOpts, platform.WithTLS(t))
	}
	nc, err := platform.Dial(cfg.NATSURL, creds, platform.UserKafkaBridge, dialOpts...)
	if err != nil {
		return fmt.Errorf("--nats: %w", err)
	}
	defer nc.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	fail := func(err error) error { // stops what started, then says why
		cancel()
		return errors.Join(err, g.Wait())
	}
	if cfg.HTTPAddr != "" {
		password, err := passwordFile(cfg.HTTPPasswordFile, "--http-password-file")
		if err != nil {
			return err
		}
		addr, err := serveHTTP(gctx, g, "--http-addr", cfg.HTTPAddr, bridgeHTTPHandler(cfg.HTTPUser, password, reg))
		if err != nil {
			return fail(err)
		}
		logger.InfoContext(ctx, "kafka bridge: serving /metrics", "addr", addr)
	}
	client, err := streams.Connect(nc, streams.DefaultCatalog())
	if err != nil {
		return fail(err)
	}
	if err := runKafkaBridge(gctx, g, logger, cfg.Kafka, client, reg); err != nil {
		return fail(err)
	}
	if err := g.Wait(); err != nil {
		return err
	}
	logger.InfoContext(ctx, "kafka bridge: stopped")
	return nil
}

// parseBridgeFlags reads the flags, falling back to TRADEX_* variables.
func parseBridgeFlags(args []string, getenv func(string) string, stderr io.Writer) (bridgeConfig, error) {
	cfg := bridgeConfig{NATSURL: defaultDLQNATS, NATSCredentials: defaultDLQCredentials, Kafka: defaultKafkaConfig(),
		HTTPUser: "tradex", LogLevel: "info", LogFormat: "text"}
	cfg.Kafka.SASLPassword = getenv(saslPasswordEnv)
	fs := flag.NewFlagSet("tradex bridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.NATSURL, "nats", cfg.NATSURL, "NATS URLs (comma-separated): a running tradex serve's listener or the cluster it uses")
	fs.StringVar(&cfg.NATSCredentials, "nats-credentials", cfg.NATSCredentials, "the platform's NATS credentials file (tradex serve writes <data-dir>/"+natsCredentialsFile+"); the bridge logs in as "+platform.UserKafkaBridge+"; empty: no authentication")
	fs.StringVar(&cfg.NATSCA, "nats-ca", cfg.NATSCA, "CA file (PEM) trusted for the NATS server's TLS certificate")
	fs.StringVar(&cfg.NATSClientCert, "nats-client-cert", cfg.NATSClientCert, "client certificate file (PEM) for a NATS server that verifies them; needs --nats-client-key")
	fs.StringVar(&cfg.NATSClientKey, "nats-client-key", cfg.NATSClientKey, "private key file (PEM) of --nats-client-cert")
	kafkaFlags(fs, &cfg.Kafka)
	fs.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "serve /metrics (Prometheus) on this address behind HTTP Basic authentication; empty: off")
	fs.StringVar(&cfg.HTTPUser, "http-user", cfg.HTTPUser, "HTTP Basic user of --http-addr")
	fs.StringVar(&cfg.HTTPPasswordFile, "http-password-file", cfg.HTTPPasswordFile, "file holding the HTTP Basic password of --http-addr (created with a random one, 0600, when missing)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log level: debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log format: text or json")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), bridgeUsage)
		fs.PrintDefaults()
	}
	if err := parseWithEnv(fs, args, getenv); err != nil {
		return cfg, err
	}
	switch {
	case !cfg.Kafka.enabled():
		return cfg, errors.New("--kafka-brokers: name at least one Kafka broker")
	case cfg.HTTPAddr != "" && cfg.HTTPPasswordFile == "":
		return cfg, errors.New("--http-password-file: --http-addr needs a password file (it is created when missing)")
	case cfg.HTTPAddr != "":
		if err := checkAddr(cfg.HTTPAddr); err != nil {
			return cfg, fmt.Errorf("--http-addr: %w", err)
		}
	}
	return cfg, nil
}

// parseWithEnv sets every flag of fs from TRADEX_<FLAG> when that is set,
// then parses args over them.
func parseWithEnv(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		if v := getenv(name); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	return nil
}

// bridgeHTTPHandler serves /metrics behind HTTP Basic authentication and
// /healthz to anyone (it says only that the process runs).
func bridgeHTTPHandler(user, password string, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", basicAuth(user, password, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	return mux
}

// serveHTTP serves h on addr in g, with the bounds of every listener
// here, until ctx ends; it returns the address it listens on.
func serveHTTP(ctx context.Context, g *errgroup.Group, flagName, addr string, h http.Handler) (string, error) {
	ln, err := listen(ctx, flagName, addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s: %w", flagName, err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return ln.Addr().String(), nil
}

// passwordFile reads the password kept in path, creating it with a
// random one (readable by its owner only) when it is missing.
func passwordFile(path, flagName string) (string, error) {
	return tokenFile("", filepath.Dir(path), filepath.Base(path), flagName)
}

// basicAuth lets through requests with user and password (compared in
// constant time); others get 401 with a challenge.
func basicAuth(user, password string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		okUser := subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1
		okPass := subtle.ConstantTimeCompare([]byte(p), []byte(password)) == 1
		if !ok || !okUser || !okPass {
			w.Header().Set("WWW-Authenticate", `Basic realm="tradex", charset="UTF-8"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
