package embeddedtest

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// WaitStreamLeader waits until stream has an elected leader, failing the
// test after timeout. A replicated stream can be created before its leader
// is elected; publishing in that gap gets "no response from stream".
func WaitStreamLeader(t testing.TB, js jetstream.JetStream, stream string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		info, err := js.Stream(t.Context(), stream)
		switch {
		case err != nil:
			last = err
		case info.CachedInfo().Cluster == nil || info.CachedInfo().Cluster.Leader != "":
			return
		default:
			last = errors.New("no leader elected")
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("stream %s: %v", stream, t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("stream %s has no leader after %s: %v", stream, timeout, last)
}
