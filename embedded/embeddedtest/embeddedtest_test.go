package embeddedtest_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
)

// roundTrip creates a stream with the given replicas, publishes one
// message and reads it back by sequence.
func roundTrip(t *testing.T, js jetstream.JetStream, replicas int) {
	t.Helper()
	st, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name:     "EVENTS",
		Subjects: []string{"events.>"},
		Storage:  jetstream.FileStorage,
		Replicas: replicas,
	})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	embeddedtest.WaitStreamLeader(t, js, "EVENTS", 10*time.Second)
	if _, err := js.Publish(t.Context(), "events.a", []byte("hello")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	msg, err := st.GetMsg(t.Context(), 1)
	if err != nil || string(msg.Data) != "hello" {
		t.Fatalf("GetMsg: %v, %v; want hello", msg, err)
	}
}

func TestNewIsInProcessWithJetStream(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	if s.ClientURL() != "" {
		t.Errorf("ClientURL = %q, want no TCP listener by default", s.ClientURL())
	}
	if s.StoreDir() == "" || s.Sync() != embedded.SyncAlways {
		t.Errorf("StoreDir %q, Sync %v; want a temp dir and SyncAlways", s.StoreDir(), s.Sync())
	}
	roundTrip(t, s.JetStream(), 1)
}

func TestNewCleansUp(t *testing.T) {
	t.Parallel()
	var s *embeddedtest.Server
	t.Run("uses a server", func(t *testing.T) {
		s = embeddedtest.New(t)
		roundTrip(t, s.JetStream(), 1)
	})
	if !s.Conn().IsClosed() {
		t.Error("connection still open after the test")
	}
	if nc, err := s.Connect(); err == nil {
		nc.Close()
		t.Error("server still accepts connections after the test")
	}
}

func TestWithTCP(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t, embeddedtest.WithTCP())
	if s.ClientURL() == "" {
		t.Fatal("no ClientURL with WithTCP")
	}
	if got := s.Conn().ConnectedUrl(); got != s.ClientURL() {
		t.Errorf("connected to %q, want TCP to %q", got, s.ClientURL())
	}
	roundTrip(t, s.JetStream(), 1)
}

func TestWithStoreDirAndSync(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	t.Run("first server", func(t *testing.T) {
		s := embeddedtest.New(t, embeddedtest.WithStoreDir(dir), embeddedtest.WithSync(embedded.SyncPeriodic))
		if s.StoreDir() != dir || s.Sync() != embedded.SyncPeriodic {
			t.Fatalf("StoreDir %q, Sync %v; want %q, SyncPeriodic", s.StoreDir(), s.Sync(), dir)
		}
		roundTrip(t, s.JetStream(), 1)
	})
	t.Run("second server on the same store", func(t *testing.T) {
		s := embeddedtest.New(t, embeddedtest.WithStoreDir(dir), embeddedtest.WithTestLog(t, slog.LevelWarn))
		st, err := s.JetStream().Stream(t.Context(), "EVENTS")
		if err != nil {
			t.Fatalf("Stream: %v", err)
		}
		msg, err := st.GetLastMsgForSubject(t.Context(), "events.a")
		if err != nil || string(msg.Data) != "hello" {
			t.Fatalf("message from the first server: %v, %v", msg, err)
		}
	})
}

func TestNewCluster(t *testing.T) {
	t.Parallel()
	c := embeddedtest.NewCluster(t, 3)
	if n := len(c.Nodes()); n != 3 {
		t.Fatalf("%d nodes, want 3", n)
	}
	roundTrip(t, c.JetStream(), 3)
}
