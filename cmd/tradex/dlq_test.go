package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/streams"
)

func TestParseDLQFlags(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	topic := []string{"--topic", streams.TopicEngineEvent}
	tests := []struct {
		name    string
		command string
		args    []string
		env     map[string]string
		check   func(t *testing.T, cfg dlqConfig)
		wantErr string
	}{
		{
			name: "defaults", command: "list", args: topic,
			check: func(t *testing.T, cfg dlqConfig) {
				if cfg.NATSURL != defaultDLQNATS || cfg.Topic != streams.TopicEngineEvent || cfg.Filter != (streams.DLQFilter{}) {
					t.Errorf("got %+v", cfg)
				}
			},
		},
		{
			name: "filters", command: "list",
			args: append([]string{"--key", "BTCUSDT", "--handler", "wallet-settlement", "--reason", "frozen", "--since", "1h", "--until", "2026-01-02T14:30:00Z", "--limit", "5", "--seq", "7"}, topic...),
			check: func(t *testing.T, cfg dlqConfig) {
				want := streams.DLQFilter{Key: "BTCUSDT", Handler: "wallet-settlement", ReasonContains: "frozen",
					Since: now.Add(-time.Hour), Until: time.Date(2026, 1, 2, 14, 30, 0, 0, time.UTC), Sequence: 7, Limit: 5}
				if !cfg.Filter.Since.Equal(want.Since) || !cfg.Filter.Until.Equal(want.Until) {
					t.Errorf("since %v until %v, want %v and %v", cfg.Filter.Since, cfg.Filter.Until, want.Since, want.Until)
				}
				cfg.Filter.Since, cfg.Filter.Until, want.Since, want.Until = time.Time{}, time.Time{}, time.Time{}, time.Time{}
				if cfg.Filter != want {
					t.Errorf("filter %+v, want %+v", cfg.Filter, want)
				}
			},
		},
		{
			name: "dlq topic name accepted", command: "list", args: []string{"--topic", "dlq." + streams.TopicEngineEvent},
		},
		{
			name: "environment", command: "stats", env: map[string]string{"TRADEX_NATS": "nats://a:4222,nats://b:4222"},
			check: func(t *testing.T, cfg dlqConfig) {
				if cfg.NATSURL != "nats://a:4222,nats://b:4222" {
					t.Errorf("NATSURL = %q, want the environment's", cfg.NATSURL)
				}
			},
		},
		{
			name: "flag wins over environment", command: "stats", args: []string{"--nats", "nats://flag:4222"},
			env: map[string]string{"TRADEX_NATS": "nats://env:4222"},
			check: func(t *testing.T, cfg dlqConfig) {
				if cfg.NATSURL != "nats://flag:4222" {
					t.Errorf("NATSURL = %q, want the flag's", cfg.NATSURL)
				}
			},
		},
		{
			name: "redrive options", command: "redrive", args: append([]string{"--rate", "2.5", "--dry-run", "--keep"}, topic...),
			check: func(t *testing.T, cfg dlqConfig) {
				if cfg.Rate != 2.5 || !cfg.DryRun || !cfg.Keep {
					t.Errorf("got %+v", cfg)
				}
			},
		},
		{name: "purge confirmed", command: "purge", args: append([]string{"--yes"}, topic...)},
		{name: "missing topic", command: "list", wantErr: "--topic: required"},
		{name: "unknown topic", command: "list", args: []string{"--topic", "nope.v1"}, wantErr: "--topic: unknown topic"},
		{name: "show without seq", command: "show", args: topic, wantErr: "--seq: required"},
		{name: "purge without yes", command: "purge", args: topic, wantErr: "--yes"},
		{name: "bad since", command: "list", args: append([]string{"--since", "yesterday"}, topic...), wantErr: "--since"},
		{name: "negative since", command: "list", args: append([]string{"--since", "-1h"}, topic...), wantErr: "--since"},
		{name: "until before since", command: "list", args: append([]string{"--since", "1h", "--until", "2h"}, topic...), wantErr: "--until"},
		{name: "bad key", command: "list", args: append([]string{"--key", "BTC.USDT"}, topic...), wantErr: "--key"},
		{name: "negative limit", command: "list", args: append([]string{"--limit", "-1"}, topic...), wantErr: "--limit"},
		{name: "negative rate", command: "redrive", args: append([]string{"--rate", "-1"}, topic...), wantErr: "--rate"},
		{name: "empty nats", command: "stats", args: []string{"--nats", ""}, wantErr: "--nats"},
		{name: "flag of another command", command: "purge", args: append([]string{"--json", "--yes"}, topic...), wantErr: errUsage.Error()},
		{name: "stray argument", command: "list", args: append([]string{"extra"}, topic...), wantErr: errUsage.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := parseDLQFlags(tt.command, tt.args, func(k string) string { return tt.env[k] }, io.Discard, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.check != nil {
				tt.check(t, cfg)
			}
		})
	}
}

func TestRunDLQUsage(t *testing.T) {
	t.Parallel()
	noEnv := func(string) string { return "" }
	for _, tt := range []struct {
		args    []string
		wantErr error
		stdout  string
		stderr  string
	}{
		{args: []string{"dlq"}, wantErr: errUsage, stderr: "Usage: tradex dlq <command>"},
		{args: []string{"dlq", "nope"}, wantErr: errUsage, stderr: `unknown command "nope"`},
		{args: []string{"dlq", "help"}, stdout: "redrive"},
		{args: []string{"dlq", "list", "--help"}, wantErr: flag.ErrHelp, stderr: "-handler string"},
		{args: []string{"help"}, stdout: "tradex dlq <command>"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, noEnv, &stdout, &stderr)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stdout %q, stderr %q; want %q and %q in them", stdout.String(), stderr.String(), tt.stdout, tt.stderr)
			}
		})
	}
}

// dlqServer is an embedded server with a TCP listener, the default
// catalog's streams, and two dead letters of engine.event.v1 written by
// wallet-settlement: e1 (BTCUSDT) and e2 (ETHUSDT). Its handler succeeds
// once healthy is set.
type dlqServer struct {
	url     string
	js      jetstream.JetStream
	healthy *atomic.Bool
	handled chan string
}

func newDLQServer(t *testing.T) dlqServer {
	t.Helper()
	s := embeddedtest.New(t, embeddedtest.WithTCP())
	js := s.JetStream()
	cat := streams.DefaultCatalog()
	if err := streams.EnsureStreams(t.Context(), js, cat); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	pub := streams.NewPublisher(js, cat)
	for id, key := range map[string]string{"e1": "BTCUSDT", "e2": "ETHUSDT"} {
		if _, err := pub.Publish(t.Context(), streams.TopicEngineEvent, key, &enginev1.EngineEvent{EventId: id, InstrumentId: key}, streams.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	srv := dlqServer{url: s.ClientURL(), js: js, healthy: &atomic.Bool{}, handled: make(chan string, 16)}
	c, err := streams.Consume(t.Context(), streams.NewClient(js, cat), streams.TopicEngineEvent, streams.ConsumerConfig{
		Name: "wallet-settlement", MaxDeliver: 2, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond,
	}, func(_ context.Context, m *streams.Message[*enginev1.EngineEvent]) error {
		if !srv.healthy.Load() {
			return errors.New("account frozen")
		}
		srv.handled <- m.Header.Get(streams.HeaderCEID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	srv.waitDLQ(t, 2)
	return srv
}

// waitDLQ waits until the DLQ of engine.event.v1 holds n dead letters.
func (s dlqServer) waitDLQ(t *testing.T, n uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := s.js.Stream(t.Context(), streams.StreamName(streams.DLQTopic(streams.TopicEngineEvent)))
		if err == nil && st.CachedInfo().State.Msgs == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("DLQ does not hold %d dead letters: %v", n, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// dlq runs `tradex dlq <args> --nats <url>` and returns its output.
func (s dlqServer) dlq(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), append(append([]string{"dlq"}, args...), "--nats", s.url), func(string) string { return "" }, &stdout, &stderr)
	if stderr.Len() > 0 {
		t.Logf("stderr: %s", stderr.String())
	}
	return stdout.String(), err
}

// mustDLQ is dlq failing the test on error.
func (s dlqServer) mustDLQ(t *testing.T, args ...string) string {
	t.Helper()
	out, err := s.dlq(t, args...)
	if err != nil {
		t.Fatalf("tradex dlq %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestDLQCommandInspects(t *testing.T) {
	t.Parallel()
	s := newDLQServer(t)
	topic := streams.TopicEngineEvent

	out := s.mustDLQ(t, "list", "--topic", topic)
	wantLines(t, out, "SEQ", "DEAD-LETTERED", "BTCUSDT", "ETHUSDT", "wallet-settlement", "account frozen", "2 dead letters in dlq.engine.event.v1")

	out = s.mustDLQ(t, "list", "--topic", topic, "--key", "ETHUSDT", "--json")
	var listed []dlqMessageJSON
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	if len(listed) != 1 || listed[0].Key != "ETHUSDT" || listed[0].Handler != "wallet-settlement" || listed[0].Deliveries != 2 ||
		listed[0].PayloadType != "tradex.engine.v1.EngineEvent" {
		t.Fatalf("list --key ETHUSDT --json = %+v", listed)
	}
	var payload map[string]any
	if err := json.Unmarshal(listed[0].Payload, &payload); err != nil || payload["eventId"] != "e2" || payload["instrumentId"] != "ETHUSDT" {
		t.Errorf("list --json payload %s (%v), want the event as JSON", listed[0].Payload, err)
	}
	seq := strconv.FormatUint(listed[0].Seq, 10)

	out = s.mustDLQ(t, "list", "--topic", topic, "--handler", "nobody")
	wantLines(t, out, "no dead letters in dlq.engine.event.v1 match")

	out = s.mustDLQ(t, "show", "--topic", topic, "--seq", seq)
	wantLines(t, out, "dead letter", seq+" of dlq.engine.event.v1", "engine.event.v1.ETHUSDT", "account frozen",
		"ce-id: e2", "X-Dlq-Handler: wallet-settlement", "payload (tradex.engine.v1.EngineEvent):", `"eventId": "e2"`, `"instrumentId": "ETHUSDT"`)

	out = s.mustDLQ(t, "show", "--topic", topic, "--seq", seq, "--json")
	var shown dlqMessageJSON
	if err := json.Unmarshal([]byte(out), &shown); err != nil || shown.Seq != listed[0].Seq || nats.Header(shown.Headers).Get(streams.HeaderCEID) != "e2" {
		t.Errorf("show --json = %+v, %v", shown, err)
	}

	if _, err := s.dlq(t, "show", "--topic", topic, "--seq", "999"); !errors.Is(err, streams.ErrNoDeadLetter) {
		t.Errorf("show --seq 999: %v, want ErrNoDeadLetter", err)
	}

	out = s.mustDLQ(t, "stats")
	wantLines(t, out, "TOPIC", "DEAD LETTERS", "engine.order.v1", "md.book.v1")
	if !strings.Contains(strings.Join(strings.Fields(out), " "), "engine.event.v1 2 ") {
		t.Errorf("stats does not count 2 dead letters of engine.event.v1:\n%s", out)
	}
}

func TestDLQCommandRedrivesAndPurges(t *testing.T) {
	t.Parallel()
	s := newDLQServer(t)
	topic := streams.TopicEngineEvent

	out := s.mustDLQ(t, "redrive", "--topic", topic, "--dry-run")
	wantLines(t, out, "BTCUSDT", "ETHUSDT", "dry run: 2 dead letters would be redriven; nothing changed")
	s.waitDLQ(t, 2)

	if _, err := s.dlq(t, "purge", "--topic", topic); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("purge without --yes: %v, want a refusal naming --yes", err)
	}
	s.waitDLQ(t, 2)

	s.healthy.Store(true)
	out = s.mustDLQ(t, "redrive", "--topic", topic, "--key", "BTCUSDT", "--rate", "50", "--keep")
	wantLines(t, out, "1 dead letter redriven to engine.event.v1 and kept in dlq.engine.event.v1")
	select {
	case id := <-s.handled:
		if id != "e1" {
			t.Errorf("redriven ce-id %q, want e1", id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the redriven message was not handled")
	}
	s.waitDLQ(t, 2)

	out = s.mustDLQ(t, "purge", "--topic", topic, "--key", "ETHUSDT", "--yes")
	wantLines(t, out, "1 dead letter purged from dlq.engine.event.v1")
	s.waitDLQ(t, 1)

	out = s.mustDLQ(t, "redrive", "--topic", topic)
	wantLines(t, out, "1 dead letter redriven to engine.event.v1 and deleted from dlq.engine.event.v1")
	s.waitDLQ(t, 0)
	wantLines(t, s.mustDLQ(t, "list", "--topic", topic), "no dead letters")
}

func TestDLQCommandUnreachable(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"dlq", "stats", "--nats", "nats://127.0.0.1:1"}, func(string) string { return "" }, &stdout, &stderr)
	if err == nil || !strings.HasPrefix(err.Error(), "--nats: connect to nats://127.0.0.1:1") {
		t.Errorf("err = %v, want a connect error naming --nats", err)
	}
}
