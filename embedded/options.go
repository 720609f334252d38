package embedded

import (
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

// NoListener as [Options.Port] starts the server without any TCP listener:
// clients can only connect in process ([Server.Connect]).
const NoListener = -1

// DefaultHost is the interface the client and route listeners bind to when
// [Options.Host] or [ClusterOptions.Host] is empty.
const DefaultHost = "127.0.0.1"

// DefaultReadyTimeout bounds how long [Start] waits for a single node to be
// ready when [Options.ReadyTimeout] is zero.
const DefaultReadyTimeout = 10 * time.Second

// SyncPolicy says when JetStream fsyncs file storage.
type SyncPolicy int

const (
	// SyncAlways fsyncs every write before it is acknowledged (JetStream's
	// `sync_interval: always`). It is the zero value and the default:
	// JetStream's own default (an fsync every two minutes) loses
	// acknowledged writes on power loss (Jepsen, NATS 2.12.1, Dec 2025).
	SyncAlways SyncPolicy = iota

	// SyncPeriodic keeps JetStream's default background fsync interval (two
	// minutes in nats-server 2.15). Writes are much faster; a process crash
	// loses nothing (the data is in the OS page cache), but a power loss or
	// kernel crash may lose the writes acknowledged since the last fsync.
	SyncPeriodic
)

// String returns "always" or "periodic".
func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncPeriodic:
		return "periodic"
	default:
		return fmt.Sprintf("SyncPolicy(%d)", int(p))
	}
}

// Options configures one embedded node. The zero value is not usable:
// StoreDir is required.
type Options struct {
	// StoreDir is the directory for JetStream file storage (nats-server
	// keeps its data in a "jetstream" folder inside it). Required. It is
	// created if missing.
	StoreDir string

	// Host is the interface for the client listener. Empty means
	// [DefaultHost] (loopback).
	Host string

	// Port is the client port: 0 picks a free port, [NoListener] opens no
	// TCP listener at all (in-process connections only).
	Port int

	// ServerName names the node (it appears in logs, in cluster and stream
	// info). Empty means a generated name. Cluster nodes need stable names
	// across restarts: JetStream identifies peers by name.
	ServerName string

	// Sync says when writes are fsynced. The zero value is [SyncAlways].
	Sync SyncPolicy

	// Logger receives nats-server's log lines at matching levels (notice as
	// Info, debug as Debug, trace as [LevelTrace]); debug and trace lines
	// are only produced when the logger's handler enables those levels.
	// Nil discards them.
	Logger *slog.Logger

	// MaxMemory and MaxStore cap JetStream memory and file storage in
	// bytes. Zero means the nats-server defaults (a share of system memory
	// and of the free disk space).
	MaxMemory int64
	MaxStore  int64

	// Cluster, when set, makes this node a member of a JetStream cluster.
	// [StartCluster] fills it for each node. A cluster node needs a client
	// listener: Port must not be [NoListener].
	Cluster *ClusterOptions

	// ReadyTimeout bounds how long [Start] waits for the node to be ready.
	// Zero means [DefaultReadyTimeout].
	ReadyTimeout time.Duration

	// Users, when set, make the server require a user and password on
	// every client connection, TCP and in process alike: only these users
	// connect, each within its permissions. Empty: no authentication.
	Users []User

	// TLS, when set, makes the client listener require TLS with this
	// server configuration (with ClientCAs and
	// tls.RequireAndVerifyClientCert: client certificates too). In-process
	// connections need none.
	TLS *tls.Config

	// Encryption, when set, encrypts the store at rest. A store holding
	// encrypted streams does not start without it, nor (a single node)
	// with a key that cannot read them: [ErrStoreEncrypted].
	Encryption *Encryption
}

// User is a NATS user of the embedded server.
type User struct {
	// Name and Password are its credentials (nats.UserInfo).
	Name, Password string
	// Publish and Subscribe are the subjects it may publish and subscribe
	// to (NATS wildcards); nil allows everything, empty nothing.
	Publish, Subscribe []string
}

// ClusterOptions makes a node part of a cluster: it listens for routes from
// the other nodes and connects routes to them.
type ClusterOptions struct {
	// Name is the cluster name, the same on every node. Required.
	Name string

	// Host is the interface for the route listener. Empty means
	// [DefaultHost].
	Host string

	// Port is the route port; 0 picks a free port (only useful for a seed
	// node whose address the others learn after it started).
	Port int

	// Routes are the route URLs of the other nodes, such as
	// "nats://127.0.0.1:6222".
	Routes []string

	// TLS, when set, makes routes speak TLS with it, both ways: a node
	// presents its Certificates to the peers it dials and to those that
	// dial it, and verifies theirs (RootCAs as a client; ClientCAs with
	// tls.RequireAndVerifyClientCert as a server). Every node needs it.
	TLS *tls.Config
}

// resolved returns a copy of o with defaults filled in, or an error when o
// cannot work.
func (o Options) resolved() (Options, error) {
	if o.StoreDir == "" {
		return o, ErrNoStoreDir
	}
	if o.Port < NoListener || o.Port > 65535 {
		return o, fmt.Errorf("invalid port %d", o.Port)
	}
	if o.Sync != SyncAlways && o.Sync != SyncPeriodic {
		return o, fmt.Errorf("invalid sync policy %s", o.Sync)
	}
	if o.Host == "" {
		o.Host = DefaultHost
	}
	if o.ServerName == "" {
		o.ServerName = "embedded-" + strings.ToLower(rand.Text()[:10])
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	if o.Encryption != nil {
		e := *o.Encryption
		if err := e.check(); err != nil {
			return o, err
		}
		o.Encryption = &e
	}
	if o.Cluster != nil {
		if o.Port == NoListener {
			// nats-server 2.15 starts routing only after the client accept
			// loop, which NoListener never runs: the node would never become
			// ready nor finish shutting down.
			return o, ErrClusterNoListener
		}
		c, err := o.Cluster.resolved()
		if err != nil {
			return o, err
		}
		o.Cluster = &c
	}
	return o, nil
}

func (c ClusterOptions) resolved() (ClusterOptions, error) {
	if c.Name == "" {
		return c, fmt.Errorf("cluster name is required")
	}
	if c.Port < 0 || c.Port > 65535 {
		return c, fmt.Errorf("invalid cluster port %d", c.Port)
	}
	if c.Host == "" {
		c.Host = DefaultHost
	}
	c.Routes = append([]string(nil), c.Routes...)
	return c, nil
}

// serverOptions translates resolved options into nats-server's.
func (o Options) serverOptions() (*server.Options, error) {
	so := &server.Options{
		ServerName:         o.ServerName,
		Host:               o.Host,
		Port:               serverPort(o.Port),
		DontListen:         o.Port == NoListener,
		NoSigs:             true,
		JetStream:          true,
		StoreDir:           o.StoreDir,
		JetStreamMaxMemory: o.MaxMemory,
		JetStreamMaxStore:  o.MaxStore,
		SyncAlways:         o.Sync == SyncAlways,
	}
	if o.Port == NoListener {
		so.Port = 0
	}
	if o.Encryption != nil {
		o.Encryption.apply(so)
	}
	if o.TLS != nil {
		so.TLS, so.TLSConfig, so.TLSTimeout = true, o.TLS.Clone(), tlsTimeout
		so.TLSVerify = o.TLS.ClientAuth == tls.RequireAndVerifyClientCert
	}
	for _, u := range o.Users {
		// The server keeps a hash, not the password. Cost: the minimum, as
		// the passwords here are random (128 bits), not chosen by people.
		hash, err := bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.MinCost)
		if err != nil {
			return nil, fmt.Errorf("user %s: %w", u.Name, err)
		}
		so.Users = append(so.Users, &server.User{Username: u.Name, Password: string(hash),
			Permissions: &server.Permissions{Publish: allow(u.Publish), Subscribe: allow(u.Subscribe)}})
	}
	if o.Cluster == nil {
		return so, nil
	}
	so.Cluster = server.ClusterOpts{
		Name: o.Cluster.Name,
		Host: o.Cluster.Host,
		Port: serverPort(o.Cluster.Port),
	}
	if o.Cluster.TLS != nil {
		so.Cluster.TLSConfig, so.Cluster.TLSTimeout = o.Cluster.TLS.Clone(), tlsTimeout
	}
	for _, r := range o.Cluster.Routes {
		u, err := url.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("route url %q: %w", r, err)
		}
		if u.Host == "" {
			return nil, fmt.Errorf("route url %q has no host", r)
		}
		so.Routes = append(so.Routes, u)
	}
	return so, nil
}

// tlsTimeout bounds a TLS handshake in seconds (nats-server's default, 2 s,
// is short for a loaded machine).
const tlsTimeout = 5

// allow is a subject permission allowing subjects (nil: everything).
func allow(subjects []string) *server.SubjectPermission {
	switch {
	case subjects == nil:
		return nil
	case len(subjects) == 0:
		return &server.SubjectPermission{Deny: []string{">"}}
	default:
		return &server.SubjectPermission{Allow: append([]string{}, subjects...)}
	}
}

// serverPort maps "0 = pick a free port" to nats-server's RANDOM_PORT (its
// 0 means the default port 4222).
func serverPort(p int) int {
	if p == 0 {
		return server.RANDOM_PORT
	}
	return p
}

// hostPort joins a host and a port into an address.
func hostPort(host string, port int) string {
	return net.JoinHostPort(host, fmt.Sprint(port))
}
