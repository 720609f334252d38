package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// cleanupTimeout bounds a server's shutdown in test cleanup.
const cleanupTimeout = 10 * time.Second

// startServer starts a server and shuts it down when the test ends.
func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	ctx := context.WithoutCancel(t.Context())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// connectJS connects in process and returns a JetStream handle; the
// connection is closed when the test ends.
func connectJS(t *testing.T, s *Server) jetstream.JetStream {
	t.Helper()
	nc, err := s.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return js
}

// createStream creates a stream named name capturing name.> .
func createStream(t *testing.T, js jetstream.JetStream, name string, replicas int) jetstream.Stream {
	t.Helper()
	st, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name:     name,
		Subjects: []string{strings.ToLower(name) + ".>"},
		Storage:  jetstream.FileStorage,
		Replicas: replicas,
	})
	if err != nil {
		t.Fatalf("CreateStream %s: %v", name, err)
	}
	return st
}

// payload is the content of the i-th test message.
func payload(i uint64) []byte { return fmt.Appendf(nil, "message %04d", i) }

// publishN publishes messages first..last (inclusive) to subject and checks
// each acknowledgement's sequence.
func publishN(t *testing.T, js jetstream.JetStream, subject string, first, last uint64) {
	t.Helper()
	for i := first; i <= last; i++ {
		ack, err := js.Publish(t.Context(), subject, payload(i))
		if err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
		if ack.Sequence != i {
			t.Fatalf("Publish %d: acked sequence %d", i, ack.Sequence)
		}
	}
}

// consumeAll reads the whole stream with an ordered consumer and checks
// that it holds exactly messages 1..n with their content, in order.
func consumeAll(t *testing.T, js jetstream.JetStream, stream string, n uint64) {
	t.Helper()
	if err := readStream(t, js, stream, n); err != nil {
		t.Fatal(err)
	}
}

// readStream reads the n messages of stream with an ordered consumer and
// checks each is payload(seq) in order.
func readStream(t *testing.T, js jetstream.JetStream, stream string, n uint64) error {
	t.Helper()
	cons, err := js.OrderedConsumer(t.Context(), stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("OrderedConsumer: %w", err)
	}
	batch, err := cons.Fetch(int(n), jetstream.FetchMaxWait(5*time.Second)) //nolint:gosec // n is a small test count
	if err != nil {
		return fmt.Errorf("Fetch: %w", err)
	}
	var i uint64
	for msg := range batch.Messages() {
		i++
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("Metadata: %w", err)
		}
		if md.Sequence.Stream != i || string(msg.Data()) != string(payload(i)) {
			t.Fatalf("message %d: got seq %d %q, want %q", i, md.Sequence.Stream, msg.Data(), payload(i))
		}
	}
	if err := batch.Error(); err != nil {
		return fmt.Errorf("Fetch: %w", err)
	}
	if i != n {
		return fmt.Errorf("got %d messages, want %d", i, n)
	}
	return nil
}

func TestPublishConsumeFileStream(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{StoreDir: t.TempDir()})
	js := connectJS(t, s)
	st := createStream(t, js, "ORDERS", 1)

	publishN(t, js, "orders.BTCUSDT", 1, 10)
	consumeAll(t, js, "ORDERS", 10)

	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.Config.Storage != jetstream.FileStorage || info.State.Msgs != 10 {
		t.Fatalf("stream: storage %v, %d msgs; want file storage, 10 msgs", info.Config.Storage, info.State.Msgs)
	}
	if _, err := os.Stat(filepath.Join(s.StoreDir(), "jetstream")); err != nil {
		t.Fatalf("no JetStream data in the store dir: %v", err)
	}
}

func TestRestartKeepsEveryMessage(t *testing.T) {
	t.Parallel()
	const n = 200
	dir := t.TempDir()
	opts := Options{StoreDir: dir, ServerName: "restart"}

	first := startServer(t, opts)
	js := connectJS(t, first)
	createStream(t, js, "ORDERS", 1)
	publishN(t, js, "orders.BTCUSDT", 1, n)
	if err := first.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	second := startServer(t, opts)
	js = connectJS(t, second)
	consumeAll(t, js, "ORDERS", n)
	// The restarted stream continues where it stopped.
	ack, err := js.Publish(t.Context(), "orders.BTCUSDT", payload(n+1))
	if err != nil || ack.Sequence != n+1 {
		t.Fatalf("Publish after restart: seq %v, err %v; want seq %d", ack, err, n+1)
	}
}

func TestNoListenerConnectsInProcess(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{StoreDir: t.TempDir(), Port: NoListener})
	if s.ClientURL() != "" {
		t.Fatalf("ClientURL = %q, want empty without a listener", s.ClientURL())
	}
	if addr := s.srv.Addr(); addr != nil {
		t.Fatalf("server listens on %v, want no listener", addr)
	}

	// Both ways to connect in process work: Connect and InProcessOption.
	nc, err := nats.Connect("", s.InProcessOption())
	if err != nil {
		t.Fatalf("nats.Connect with InProcessOption: %v", err)
	}
	defer nc.Close()
	js := connectJS(t, s)
	createStream(t, js, "EVENTS", 1)
	sub, err := nc.SubscribeSync("events.>")
	if err != nil {
		t.Fatalf("SubscribeSync: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	publishN(t, js, "events.a", 1, 3)
	for i := uint64(1); i <= 3; i++ {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil || string(msg.Data) != string(payload(i)) {
			t.Fatalf("message %d: %v, %v", i, msg, err)
		}
	}
}

func TestTCPListener(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{StoreDir: t.TempDir()})
	if !strings.HasPrefix(s.ClientURL(), "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %q, want nats://127.0.0.1:<port>", s.ClientURL())
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("nats.Connect %s: %v", s.ClientURL(), err)
	}
	defer nc.Close()
	if got := nc.ConnectedServerName(); got != s.Name() {
		t.Fatalf("connected to %q, want %q", got, s.Name())
	}
}

func TestStartFailsOnPortInUse(t *testing.T) {
	t.Parallel()
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	s, err := Start(t.Context(), Options{StoreDir: t.TempDir(), Port: port})
	if err == nil {
		_ = s.Shutdown(t.Context())
		t.Fatal("Start succeeded on a port in use")
	}
	if !errors.Is(err, ErrAddrInUse) {
		t.Errorf("error %v is not ErrAddrInUse", err)
	}
	addr := l.Addr().String()
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "in use") {
		t.Errorf("error %q does not name %s as in use", err, addr)
	}
}

func TestStartFailsOnUnusableStoreDir(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		dir     string
		wantErr error
	}{
		"store dir is a file":       {dir: file, wantErr: ErrStoreDir},
		"parent of store is a file": {dir: filepath.Join(file, "store"), wantErr: ErrStoreDir},
		"no store dir":              {dir: "", wantErr: ErrNoStoreDir},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := Start(t.Context(), Options{StoreDir: tt.dir, Port: NoListener})
			if err == nil {
				_ = s.Shutdown(t.Context())
				t.Fatal("Start succeeded")
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v is not %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.dir) {
				t.Errorf("error %q does not name %q", err, tt.dir)
			}
		})
	}
}

func TestSyncPolicy(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		sync         SyncPolicy
		wantAlways   bool
		wantInterval time.Duration
	}{
		"zero value is always": {sync: Options{}.Sync, wantAlways: true},
		"periodic":             {sync: SyncPeriodic, wantAlways: false, wantInterval: 2 * time.Minute},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, Options{StoreDir: t.TempDir(), Port: NoListener, Sync: tt.sync})
			cfg := s.srv.JetStreamConfig()
			if cfg == nil {
				t.Fatal("JetStream not enabled")
			}
			if cfg.SyncAlways != tt.wantAlways {
				t.Errorf("JetStream SyncAlways = %v, want %v", cfg.SyncAlways, tt.wantAlways)
			}
			if !tt.wantAlways && cfg.SyncInterval != tt.wantInterval {
				t.Errorf("JetStream SyncInterval = %v, want %v", cfg.SyncInterval, tt.wantInterval)
			}
			if s.Sync() != tt.sync {
				t.Errorf("Sync() = %v, want %v", s.Sync(), tt.sync)
			}
		})
	}
}

func TestStartRespectsCancelledContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s, err := Start(ctx, Options{StoreDir: t.TempDir(), Port: NoListener})
	if err == nil {
		_ = s.Shutdown(t.Context())
		t.Fatal("Start succeeded with a cancelled context")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v is not context.Canceled", err)
	}
}

func TestStartTimesOutWhenClusterHasNoQuorum(t *testing.T) {
	t.Parallel()
	ports, err := freePorts(t.Context(), DefaultHost, 1)
	if err != nil {
		t.Fatal(err)
	}
	// One node of a cluster whose peer never starts: no meta leader.
	_, err = Start(t.Context(), Options{
		StoreDir:     t.TempDir(),
		ServerName:   "lonely",
		ReadyTimeout: 300 * time.Millisecond,
		Cluster: &ClusterOptions{
			Name:   "c",
			Routes: []string{"nats://" + hostPort(DefaultHost, ports[0])},
		},
	})
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("error %v is not ErrNotReady", err)
	}
	if !strings.Contains(err.Error(), "meta") {
		t.Errorf("error %q does not say what was missing", err)
	}
}

func TestClusterNodeNeedsListener(t *testing.T) {
	t.Parallel()
	_, err := Start(t.Context(), Options{
		StoreDir: t.TempDir(),
		Port:     NoListener,
		Cluster:  &ClusterOptions{Name: "c"},
	})
	if !errors.Is(err, ErrClusterNoListener) {
		t.Fatalf("error %v is not ErrClusterNoListener", err)
	}
}

func TestShutdownIsIdempotent(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{StoreDir: t.TempDir(), Port: NoListener})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := s.Shutdown(t.Context()); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
	wg.Wait()
	if s.srv.Running() {
		t.Fatal("server still running after Shutdown")
	}
	if _, err := s.Connect(); err == nil {
		t.Fatal("Connect succeeded after Shutdown")
	}
}

func TestLoggerBridgesLevels(t *testing.T) {
	t.Parallel()
	h := newRecordingHandler(slog.LevelDebug)
	startServer(t, Options{StoreDir: t.TempDir(), Port: NoListener, ServerName: "logged", Logger: slog.New(h)})

	var ready, debug bool
	for _, r := range h.all() {
		if r.line == "Server is ready" && r.level == slog.LevelInfo && r.server == "logged" {
			ready = true
		}
		if r.level == slog.LevelDebug {
			debug = true
		}
		if r.level < slog.LevelDebug {
			t.Errorf("got a %v line though the handler only enables debug: %q", r.level, r.line)
		}
	}
	if !ready {
		t.Error(`no Info line "Server is ready" with server=logged`)
	}
	if !debug {
		t.Error("no Debug line though the handler enables debug")
	}
}

// record is one log line seen by recordingHandler.
type record struct {
	level        slog.Level
	line, server string
}

// recordingHandler keeps every record at or above level.
type recordingHandler struct {
	level slog.Level
	attrs []slog.Attr

	mu      *sync.Mutex
	records *[]record
}

func newRecordingHandler(level slog.Level) *recordingHandler {
	return &recordingHandler{level: level, mu: &sync.Mutex{}, records: &[]record{}}
}

func (h *recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	var rec record
	rec.level = r.Level
	visit := func(a slog.Attr) bool {
		switch a.Key {
		case "line":
			rec.line = a.Value.String()
		case "server":
			rec.server = a.Value.String()
		}
		return true
	}
	for _, a := range h.attrs {
		visit(a)
	}
	r.Attrs(visit)
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.records = append(*h.records, rec)
	return nil
}

func (h *recordingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &c
}

func (h *recordingHandler) WithGroup(string) slog.Handler { return h }

func (h *recordingHandler) all() []record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]record(nil), *h.records...)
}
