package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/tradex-mesh/tradex/internal/platform"
)

// serveConfig is everything `tradex serve` is told, parsed once here.
type serveConfig struct {
	// DataDir holds the embedded server's JetStream store (in DataDir/nats).
	DataDir string
	// HTTPAddr is the gateway's listen address: REST, WebSocket, Connect-Web, probes.
	HTTPAddr string
	// GRPCAddr is the internal Connect port: gRPC (h2c), gRPC-Web, Connect, health, reflection.
	GRPCAddr string
	// PprofAddr, when set, serves Go's runtime profiles there (loopback
	// only).
	PprofAddr string
	// NATSListen is the embedded server's client listen address, or "none"
	// for in-process connections only.
	NATSListen string
	// NATSURL, when set, is an external NATS cluster to use instead of the
	// embedded server (comma-separated URLs).
	NATSURL string
	// NATSCredentials is the file of the platform's NATS users and
	// passwords; empty: DataDir/nats-credentials.json for the embedded
	// server (created on first start), none for an external cluster.
	NATSCredentials string
	// Sync is the embedded server's fsync policy: "always" or "periodic".
	Sync string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is text or json.
	LogFormat string
	// ShutdownTimeout bounds the graceful stop after SIGINT or SIGTERM.
	ShutdownTimeout time.Duration
	// Kafka, when its brokers are set, runs the Kafka bridge in process.
	Kafka kafkaConfig
	// Replicas is the replica count of financial, config and dead-letter
	// streams; 0 picks 3 on a cluster of three or more servers, else 1.
	Replicas int
	// ServicesURL is the Connect URL where services find the services this
	// process does not run (another process's internal port).
	ServicesURL string
	// Services is "all" or a comma-separated list of the services to run.
	Services string
	// AllowedOrigins are the browser origins (comma-separated, "*" for
	// any) allowed to call REST and Connect across origins and to open /ws.
	AllowedOrigins string
	// TrustedProxies are the reverse proxies (comma-separated IPs or
	// CIDRs) whose X-Forwarded-For names the client.
	TrustedProxies string
	// Auth is how the gateway checks callers: "jwt" (the auth service's
	// access tokens and signed API keys) or "dev" (a bearer token is an
	// account id; for local experiments only).
	Auth string
	// AdminToken is the dev verifier's admin token; empty reads (or
	// creates) DataDir/admin-token.
	AdminToken string
	// InternalToken is the service credential every call on the internal
	// port carries; empty reads (or creates) DataDir/internal-token.
	InternalToken string
	// InternalInsecure lets the internal port take calls without it.
	InternalInsecure bool
	// AuthMasterKey is the file of the auth service's master key (64 hex
	// digits); empty: <data-dir>/auth-master-key, created on first start.
	AuthMasterKey string
	// RateLimit is each REST client's sustained requests per second (0: no
	// limit); RateBurst how many it may send at once.
	RateLimit float64
	RateBurst int
	// TLSCert and TLSKey are the gateway's certificate (chain) and key
	// files: it serves HTTPS and WSS with them.
	TLSCert, TLSKey string
	// TLSSelfSigned makes the gateway serve HTTPS and WSS with a
	// self-signed certificate kept in DataDir (development only).
	TLSSelfSigned bool
	// InternalTLSCert and InternalTLSKey make the internal port serve TLS.
	InternalTLSCert, InternalTLSKey string
	// InternalClientCA makes the internal port require client
	// certificates signed by it (mutual TLS); such a certificate is a
	// service credential in place of the token.
	InternalClientCA string
	// InternalCA is the CA this process trusts for internal ports' TLS
	// certificates; empty: the system's roots and its own
	// InternalTLSCert.
	InternalCA string
	// InternalClientCert and InternalClientKey are the client
	// certificate this process presents to internal ports.
	InternalClientCert, InternalClientKey string
	// NATSTLSCert and NATSTLSKey make the embedded server's client
	// listener require TLS.
	NATSTLSCert, NATSTLSKey string
	// NATSCA is the CA trusted for the external cluster's (NATSURL)
	// certificates; NATSClientCert and NATSClientKey the client
	// certificate presented to it.
	NATSCA, NATSClientCert, NATSClientKey string
	// NATSEncrypt encrypts the embedded server's store at rest with the
	// key in NATSStoreKey (empty: DataDir/nats-store-key, created on
	// first start); a key file given turns it on too.
	NATSEncrypt  bool
	NATSStoreKey string
	// NATSStoreOldKey is the file of the key the store was encrypted with
	// before (key rotation).
	NATSStoreOldKey string
	// NATSCipher is the store's cipher: "aes" or "chacha".
	NATSCipher string
	// OTLPEndpoint is the OTLP/HTTP collector the spans go to; empty
	// records none. TraceSample is the share of new traces recorded.
	OTLPEndpoint string
	TraceSample  float64
}

// defaultServeConfig is what `tradex serve` does with no flags.
func defaultServeConfig() serveConfig {
	return serveConfig{
		DataDir:         "data",
		HTTPAddr:        ":8080",
		GRPCAddr:        "127.0.0.1:8081",
		NATSListen:      "127.0.0.1:4222",
		Sync:            "always",
		NATSCipher:      "aes",
		TraceSample:     1,
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 15 * time.Second,
		Kafka:           defaultKafkaConfig(),
		Services:        "all",
		ServicesURL:     "http://127.0.0.1:8081",
		RateLimit:       100,
		RateBurst:       200,
		Auth:            "jwt",
	}
}

// envPrefix prefixes the environment variable of every flag.
const envPrefix = "TRADEX_"

// parseServeFlags reads flags, falling back to TRADEX_* variables, and
// validates the result.
func parseServeFlags(args []string, getenv func(string) string, stderr io.Writer) (serveConfig, error) {
	cfg := defaultServeConfig()
	cfg.Kafka.SASLPassword = getenv(saslPasswordEnv)
	fs := flag.NewFlagSet("tradex serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "folder for the embedded server's data (JetStream store)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "gateway listen address: REST, /ws, Connect-Web, /healthz, /readyz")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", cfg.GRPCAddr, "internal Connect listen address: gRPC over h2c, gRPC-Web, Connect, health, reflection")
	fs.StringVar(&cfg.PprofAddr, "pprof-addr", cfg.PprofAddr, "serve Go runtime profiles (/debug/pprof/) on this loopback address; empty: off")
	fs.StringVar(&cfg.NATSListen, "nats-listen", cfg.NATSListen, `embedded NATS client listen address, or "none" for in-process connections only`)
	fs.StringVar(&cfg.NATSURL, "nats", cfg.NATSURL, "external NATS URLs (comma-separated); when set, no embedded server is started")
	fs.StringVar(&cfg.NATSCredentials, "nats-credentials", cfg.NATSCredentials, "file of the platform's NATS users and passwords; empty: <data-dir>/"+natsCredentialsFile+" for the embedded server (created on first start, 0600), no authentication for --nats")
	fs.BoolVar(&cfg.NATSEncrypt, "nats-encrypt", cfg.NATSEncrypt, "encrypt the embedded server's store at rest (streams, consumers, key-value buckets) with the key in --nats-store-key")
	fs.StringVar(&cfg.NATSStoreKey, "nats-store-key", cfg.NATSStoreKey, "file of the embedded store's key (64 hex digits); turns on --nats-encrypt; empty: <data-dir>/"+natsStoreKeyFile+", created on first start (0600). Keep it apart from the data: losing it loses the store")
	fs.StringVar(&cfg.NATSStoreOldKey, "nats-store-old-key", cfg.NATSStoreOldKey, "file of the key the store was encrypted with before; its streams are re-encrypted with --nats-store-key (key rotation)")
	fs.StringVar(&cfg.NATSCipher, "nats-cipher", cfg.NATSCipher, `cipher of the encrypted store: "aes" (AES-256-GCM) or "chacha" (ChaCha20-Poly1305)`)
	fs.StringVar(&cfg.OTLPEndpoint, "otlp-endpoint", cfg.OTLPEndpoint, "OpenTelemetry collector (OTLP over HTTP, e.g. http://127.0.0.1:4318) receiving a span per API request, Connect call, publish and handled message; empty: no spans")
	fs.Float64Var(&cfg.TraceSample, "trace-sample", cfg.TraceSample, "share of traces recorded, 0 to 1, decided by trace id (a caller's traceparent cannot force it)")
	fs.StringVar(&cfg.Sync, "sync", cfg.Sync, `embedded JetStream fsync: "always" (every write, no acknowledged loss on power failure) or "periodic" (faster, may lose the last writes on power failure)`)
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log level: debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log format: text or json")
	fs.StringVar(&cfg.Services, "services", cfg.Services, `services to run: "all" or a comma-separated list (e.g. "metadata"), so services scale out as separate processes`)
	fs.StringVar(&cfg.ServicesURL, "services-url", cfg.ServicesURL, "Connect URL (an internal port) of the services that --services leaves out, e.g. metadata and wallet for an order-only process")
	fs.IntVar(&cfg.Replicas, "replicas", cfg.Replicas, "replicas of financial, config and dead-letter streams; 0: 3 on a cluster of 3 or more servers, else 1")
	fs.StringVar(&cfg.AllowedOrigins, "allowed-origins", cfg.AllowedOrigins, `browser origins allowed across origins (CORS) and on /ws, comma-separated, "*" for any; empty: same origin only`)
	fs.StringVar(&cfg.TrustedProxies, "trusted-proxies", cfg.TrustedProxies, "reverse proxies (comma-separated IPs or CIDRs) whose X-Forwarded-For names the client for rate limits and logs")
	fs.StringVar(&cfg.Auth, "auth", cfg.Auth, `how the gateway checks callers: "jwt" (access tokens and signed API keys from the auth service) or "dev" (a bearer token is an account id: anyone may act for anyone; local experiments only)`)
	fs.StringVar(&cfg.AdminToken, "admin-token", cfg.AdminToken, "admin bearer token of the dev verifier; empty: read or create <data-dir>/admin-token")
	fs.StringVar(&cfg.InternalToken, "internal-token", cfg.InternalToken, "service credential of the internal port (Authorization: Bearer), the same for every process of the platform; empty: read or create <data-dir>/internal-token")
	fs.BoolVar(&cfg.InternalInsecure, "internal-insecure", cfg.InternalInsecure, "let the internal port take calls without the service credential (a trusted network only)")
	fs.StringVar(&cfg.AuthMasterKey, "auth-master-key", cfg.AuthMasterKey, "file of the auth service's master key (64 hex digits), which encrypts API-key secrets and token signing keys; empty: <data-dir>/"+authMasterKeyFile+", created on first start (0600); every auth process needs the same one")
	fs.Float64Var(&cfg.RateLimit, "rate-limit", cfg.RateLimit, "REST requests per second per client (0: no limit)")
	fs.IntVar(&cfg.RateBurst, "rate-burst", cfg.RateBurst, "REST requests a client may send at once")
	tlsFlags(fs, &cfg)
	kafkaFlags(fs, &cfg.Kafka)
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long a graceful stop may take")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tradex serve [flags]\n\nEvery flag can also be set as %s<FLAG> (e.g. %sDATA_DIR).\n\nFlags:\n", envPrefix, envPrefix)
		fs.PrintDefaults()
	}

	if err := parseWithEnv(fs, args, getenv); err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

// envName is the environment variable of a flag: TRADEX_<FLAG>.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// validate reports the first setting that cannot work, naming the flag.
func (c serveConfig) validate() error {
	if c.NATSURL == "" && c.DataDir == "" {
		return errors.New("--data-dir: must not be empty when the embedded server runs")
	}
	if err := checkAddr(c.HTTPAddr); err != nil {
		return fmt.Errorf("--http-addr: %w", err)
	}
	if err := c.Kafka.check(); err != nil {
		return err
	}
	if err := checkAddr(c.GRPCAddr); err != nil {
		return fmt.Errorf("--grpc-addr: %w", err)
	}
	if err := checkPprofAddr(c.PprofAddr); err != nil {
		return fmt.Errorf("--pprof-addr: %w", err)
	}
	if c.NATSListen != "none" {
		if err := checkAddr(c.NATSListen); err != nil {
			return fmt.Errorf("--nats-listen: %w", err)
		}
	}
	if c.TraceSample < 0 || c.TraceSample > 1 {
		return fmt.Errorf("--trace-sample: %v: want 0 to 1", c.TraceSample)
	}
	if err := c.validateStoreEncryption(); err != nil {
		return err
	}
	if c.Sync != "always" && c.Sync != "periodic" {
		return fmt.Errorf("--sync: %q is neither always nor periodic", c.Sync)
	}
	if c.Auth != "jwt" && c.Auth != "dev" {
		return fmt.Errorf("--auth: %q is neither jwt nor dev", c.Auth)
	}
	if _, err := platform.ParseServices(c.Services); err != nil {
		return fmt.Errorf("--services: %w", err)
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("--replicas: %d: want 0 (auto) to 5", c.Replicas)
	}
	for _, p := range splitList(c.TrustedProxies) {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			return fmt.Errorf("--trusted-proxies: %q is neither an IP address nor a CIDR", p)
		}
	}
	if c.RateLimit < 0 {
		return errors.New("--rate-limit: must not be negative")
	}
	if c.RateLimit > 0 && c.RateBurst < 1 {
		return errors.New("--rate-burst: must be at least 1 when --rate-limit is on")
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return errors.New("--admin-token: must be at least 16 characters")
	}
	if c.InternalToken != "" && len(c.InternalToken) < 16 {
		return errors.New("--internal-token: must be at least 16 characters")
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("--shutdown-timeout: must be positive")
	}
	return c.validateTLS()
}

// checkAddr accepts host:port with a numeric port (0 picks a free one).
func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for o := range strings.SplitSeq(v, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}
