package embeddedtest

import (
	"log/slog"
	"testing"

	"github.com/tradex-mesh/tradex/embedded"
)

// Option changes how [New] or [NewCluster] start their servers.
type Option func(*config)

// config collects the options of one New or NewCluster call.
type config struct {
	storeDir string
	tcp      bool
	sync     embedded.SyncPolicy
	logger   *slog.Logger
	users    []embedded.User
}

func newConfig(t testing.TB, opts []Option) config {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.storeDir == "" {
		c.storeDir = t.TempDir()
	}
	return c
}

// WithTCP gives the single node of [New] a client listener on a free
// loopback port; its connection then goes over TCP to
// [embedded.Server.ClientURL]. Cluster nodes always listen on TCP.
func WithTCP() Option { return func(c *config) { c.tcp = true } }

// WithSync sets the fsync policy (default [embedded.SyncAlways]).
func WithSync(p embedded.SyncPolicy) Option { return func(c *config) { c.sync = p } }

// WithStoreDir stores in dir instead of a fresh t.TempDir(), for a test
// that restarts a server on the data of a previous one.
func WithStoreDir(dir string) Option { return func(c *config) { c.storeDir = dir } }

// WithLogger sends nats-server's log lines to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithTestLog writes nats-server's log lines at level and above to the
// test's output (shown for failed tests, or always with go test -v).
func WithTestLog(t testing.TB, level slog.Level) Option {
	return WithLogger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level})))
}

// WithUsers makes the single node of [New] require authentication (see
// [embedded.Options.Users]); the test's own connection logs in as an extra
// user, "embeddedtest", allowed everything.
func WithUsers(users ...embedded.User) Option { return func(c *config) { c.users = users } }
