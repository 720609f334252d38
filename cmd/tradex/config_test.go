package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseServeFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, cfg serveConfig)
		wantErr string
	}{
		{
			name: "defaults",
			check: func(t *testing.T, cfg serveConfig) {
				if cfg != defaultServeConfig() {
					t.Errorf("got %+v, want the defaults %+v", cfg, defaultServeConfig())
				}
			},
		},
		{
			name: "flags",
			args: []string{"--data-dir", "/srv/tradex", "--http-addr", "127.0.0.1:9080", "--sync", "periodic", "--shutdown-timeout", "3s"},
			check: func(t *testing.T, cfg serveConfig) {
				if cfg.DataDir != "/srv/tradex" || cfg.HTTPAddr != "127.0.0.1:9080" || cfg.Sync != "periodic" || cfg.ShutdownTimeout != 3*time.Second {
					t.Errorf("flags not applied: %+v", cfg)
				}
			},
		},
		{
			name: "environment fills in",
			env:  map[string]string{"TRADEX_DATA_DIR": "/env/data", "TRADEX_NATS": "nats://a:4222,nats://b:4222"},
			check: func(t *testing.T, cfg serveConfig) {
				if cfg.DataDir != "/env/data" || cfg.NATSURL != "nats://a:4222,nats://b:4222" {
					t.Errorf("environment not applied: %+v", cfg)
				}
			},
		},
		{
			name: "flag wins over environment",
			args: []string{"--data-dir", "/flag/data"},
			env:  map[string]string{"TRADEX_DATA_DIR": "/env/data"},
			check: func(t *testing.T, cfg serveConfig) {
				if cfg.DataDir != "/flag/data" {
					t.Errorf("DataDir = %q, want the flag's /flag/data", cfg.DataDir)
				}
			},
		},
		{name: "bad sync", args: []string{"--sync", "sometimes"}, wantErr: "--sync"},
		{name: "bad trusted proxy", args: []string{"--trusted-proxies", "10.0.0.0/8,proxy.local"}, wantErr: "--trusted-proxies"},
		{name: "short admin token", args: []string{"--admin-token", "abc"}, wantErr: "--admin-token"},
		{name: "negative rate limit", args: []string{"--rate-limit", "-1"}, wantErr: "--rate-limit"},
		{name: "no burst", args: []string{"--rate-burst", "0"}, wantErr: "--rate-burst"},
		{
			name: "gateway flags",
			args: []string{"--trusted-proxies", "10.0.0.0/8, 192.168.1.1", "--allowed-origins", "https://a.example,*", "--rate-limit", "0"},
			check: func(t *testing.T, cfg serveConfig) {
				if got := splitList(cfg.TrustedProxies); len(got) != 2 || got[1] != "192.168.1.1" {
					t.Errorf("trusted proxies %q", got)
				}
				if got := splitList(cfg.AllowedOrigins); len(got) != 2 || got[0] != "https://a.example" {
					t.Errorf("origins %q", got)
				}
				if cfg.RateLimit != 0 {
					t.Errorf("rate limit %v", cfg.RateLimit)
				}
			},
		},
		{name: "bad http addr", args: []string{"--http-addr", "8080"}, wantErr: "--http-addr"},
		{name: "bad grpc port", args: []string{"--grpc-addr", ":99999"}, wantErr: "--grpc-addr"},
		{name: "pprof on a public address", args: []string{"--pprof-addr", ":6060"}, wantErr: "--pprof-addr"},
		{name: "pprof on another host", args: []string{"--pprof-addr", "10.0.0.1:6060"}, wantErr: "--pprof-addr"},
		{name: "pprof on loopback", args: []string{"--pprof-addr", "127.0.0.1:6060"}},
		{name: "bad nats listen", args: []string{"--nats-listen", "localhost"}, wantErr: "--nats-listen"},
		{name: "nats listen none", args: []string{"--nats-listen", "none"}},
		{name: "empty data dir", args: []string{"--data-dir", ""}, wantErr: "--data-dir"},
		{name: "empty data dir with external nats", args: []string{"--data-dir", "", "--nats", "nats://x:4222"}},
		{name: "bad environment value", env: map[string]string{"TRADEX_SHUTDOWN_TIMEOUT": "soon"}, wantErr: "TRADEX_SHUTDOWN_TIMEOUT"},
		{name: "non-positive shutdown timeout", args: []string{"--shutdown-timeout", "0s"}, wantErr: "--shutdown-timeout"},
		{name: "one service", args: []string{"--services", "metadata"}, check: func(t *testing.T, cfg serveConfig) {
			if cfg.Services != "metadata" {
				t.Errorf("Services = %q", cfg.Services)
			}
		}},
		{name: "unknown service", args: []string{"--services", "metadata,bogus"}, wantErr: `unknown service "bogus"`},
		{name: "short internal token", args: []string{"--internal-token", "short"}, wantErr: "--internal-token: must be at least 16"},
		{name: "store encryption", args: []string{"--nats-encrypt", "--nats-cipher", "chacha"}, check: func(t *testing.T, cfg serveConfig) {
			if !cfg.encryptsStore() || cfg.NATSCipher != "chacha" {
				t.Errorf("encryption %v, cipher %q; want on, chacha", cfg.encryptsStore(), cfg.NATSCipher)
			}
		}},
		{name: "a store key file turns encryption on", args: []string{"--nats-store-key", "/keys/store"}, check: func(t *testing.T, cfg serveConfig) {
			if !cfg.encryptsStore() {
				t.Error("encryption off with --nats-store-key")
			}
		}},
		{name: "bad cipher", args: []string{"--nats-encrypt", "--nats-cipher", "des"}, wantErr: "--nats-cipher"},
		{name: "encryption with external nats", args: []string{"--nats", "nats://x:4222", "--nats-encrypt"}, wantErr: "--nats-encrypt"},
		{name: "old key without encryption", args: []string{"--nats-store-old-key", "/keys/old"}, wantErr: "--nats-store-old-key"},
		{name: "trace sample over 1", args: []string{"--trace-sample", "1.5"}, wantErr: "--trace-sample"},
		{name: "tracing", args: []string{"--otlp-endpoint", "http://127.0.0.1:4318", "--trace-sample", "0.1"}, check: func(t *testing.T, cfg serveConfig) {
			if cfg.OTLPEndpoint != "http://127.0.0.1:4318" || cfg.TraceSample != 0.1 {
				t.Errorf("endpoint %q, sample %v", cfg.OTLPEndpoint, cfg.TraceSample)
			}
		}},
		{name: "unknown flag", args: []string{"--bogus"}, wantErr: "usage"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			getenv := func(k string) string { return tt.env[k] }
			cfg, err := parseServeFlags(tt.args, getenv, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if tt.check != nil {
				tt.check(t, cfg)
			}
		})
	}
}

func TestRunCommands(t *testing.T) {
	t.Parallel()
	noenv := func(string) string { return "" }

	var out strings.Builder
	if err := run(t.Context(), []string{"version"}, noenv, &out, io.Discard); err != nil {
		t.Fatalf("version: %v", err)
	}
	if !strings.Contains(out.String(), "tradex ") || !strings.Contains(out.String(), "nats-server 2.15") {
		t.Errorf("version output lacks the tradex and nats-server versions:\n%s", out.String())
	}

	out.Reset()
	if err := run(t.Context(), []string{"help"}, noenv, &out, io.Discard); err != nil || !strings.Contains(out.String(), "tradex [serve]") {
		t.Errorf("help: err=%v output=%q", err, out.String())
	}

	var stderr strings.Builder
	err := run(t.Context(), []string{"frobnicate"}, noenv, io.Discard, &stderr)
	if !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: err=%v stderr=%q", err, stderr.String())
	}

	err = run(t.Context(), []string{"serve", "--log-level", "loud"}, noenv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "log level") {
		t.Errorf("bad log level: err=%v, want one naming the log level", err)
	}
}
