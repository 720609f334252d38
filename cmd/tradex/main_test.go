package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/internal/platform"
)

// buildBinary compiles cmd/tradex into a temp folder.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tradex")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a running tradex binary and the log lines it wrote.
type process struct {
	cmd     *exec.Cmd
	started map[string]any // the "tradex started" log record
	lines   chan map[string]any
	exited  chan error
}

// startBinary runs `tradex serve` with JSON logs and waits for "tradex started".
func startBinary(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, append([]string{"serve", "--log-format", "json"}, args...)...)
	cmd.Env = append(os.Environ(), "TRADEX_HTTP_ADDR=127.0.0.1:0", "TRADEX_GRPC_ADDR=127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &process{cmd: cmd, lines: make(chan map[string]any, 1024), exited: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				rec = map[string]any{"raw": sc.Text()} // e.g. the final "tradex: <error>" line
			}
			p.lines <- rec
		}
		close(p.lines)
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // no-op once it exited
	p.started = p.waitFor(t, "tradex started", 30*time.Second)
	return p
}

// waitFor reads log records until one has msg, failing after timeout.
func (p *process) waitFor(t *testing.T, msg string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case rec, ok := <-p.lines:
			if !ok {
				t.Fatalf("tradex exited before logging %q; it logged:\n%s", msg, strings.Join(seen, "\n"))
			}
			if rec["msg"] == msg {
				return rec
			}
			line, _ := json.Marshal(rec)
			seen = append(seen, string(line))
		case <-deadline:
			t.Fatalf("tradex did not log %q within %s; it logged:\n%s", msg, timeout, strings.Join(seen, "\n"))
		}
	}
}

// interrupt sends SIGINT, as Ctrl-C does, and waits for a clean exit.
func (p *process) interrupt(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("SIGINT: %v", err)
	}
	p.waitFor(t, "tradex stopped", 20*time.Second)
	for range p.lines {
		// drain what is left so the reader can finish
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("tradex exited with %v after SIGINT, want status 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("tradex did not exit within 20s of SIGINT")
	}
}

func TestBinaryServesAndStopsOnSIGINT(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	dataDir := t.TempDir()

	p := startBinary(t, bin, "--data-dir", dataDir, "--nats-listen", "127.0.0.1:0")
	for _, key := range []string{"http", "grpc", "nats", "data_dir"} {
		if s, _ := p.started[key].(string); s == "" {
			t.Errorf("start-up log lacks %q: %v", key, p.started)
		}
	}
	if !strings.HasPrefix(p.started["data_dir"].(string), dataDir) {
		t.Errorf("data_dir = %v, want inside %s", p.started["data_dir"], dataDir)
	}

	if status, body := getJSON(t, "http://"+p.started["http"].(string)+"/healthz"); status != http.StatusOK || body["status"] != "ok" {
		t.Fatalf("/healthz = %d %v, want 200 ok", status, body)
	}

	// The client port admits only the platform's users, whose passwords
	// are in the data folder, readable by its owner only.
	natsURL := p.started["nats"].(string)
	if nc, err := nats.Connect(natsURL); !errors.Is(err, nats.ErrAuthorization) {
		if err == nil {
			nc.Close()
		}
		t.Fatalf("connect without credentials: %v, want an authorization violation", err)
	}
	credsFile := filepath.Join(dataDir, natsCredentialsFile)
	if fi, err := os.Stat(credsFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file %s: %v, %v; want mode 0600", credsFile, fi, err)
	}

	// Write through the embedded server's client port, then restart the
	// binary on the same data folder: the message must still be there.
	const subject = "restart.check"
	publish(t, natsURL, credsFile, subject, "kept across restarts")
	p.interrupt(t)

	p = startBinary(t, bin, "--data-dir", dataDir, "--nats-listen", "127.0.0.1:0")
	if got := lastMessage(t, p.started["nats"].(string), credsFile, subject); got != "kept across restarts" {
		t.Errorf("after restart the stream holds %q, want the message written before", got)
	}
	p.interrupt(t)
}

// publish creates a file stream for subject and stores one acknowledged message.
func publish(t *testing.T, url, credsFile, subject, data string) {
	t.Helper()
	js := jetStreamAt(t, url, credsFile)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "RESTART", Subjects: []string{subject}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	if _, err := js.Publish(t.Context(), subject, []byte(data)); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// lastMessage reads the last message on subject from the RESTART stream.
func lastMessage(t *testing.T, url, credsFile, subject string) string {
	t.Helper()
	stream, err := jetStreamAt(t, url, credsFile).Stream(t.Context(), "RESTART")
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatal("the RESTART stream is gone after restart")
	}
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(t.Context(), subject)
	if err != nil {
		t.Fatalf("get last message: %v", err)
	}
	return string(msg.Data)
}

// jetStreamAt connects to url over TCP as the platform's admin (from
// credsFile) for the rest of the test.
func jetStreamAt(t *testing.T, url, credsFile string) jetstream.JetStream {
	t.Helper()
	creds, err := platform.LoadCredentials(credsFile)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := platform.Dial(url, creds, platform.UserAdmin)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
