package streams_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// watchTimeout bounds every wait in the watch tests.
const watchTimeout = 10 * time.Second

func watchBucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	s := embeddedtest.New(t)
	kv, err := s.JetStream().CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "watch_test"})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func watchPut(t *testing.T, kv jetstream.KeyValue, key, tickSize string) uint64 {
	t.Helper()
	data, err := proto.Marshal(&metadatav1.Instrument{Symbol: strings.TrimPrefix(key, "instruments."), TickSize: tickSize})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Put(t.Context(), key, data)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// watchRun runs WatchKV in the background and hands over its updates.
type watchRun struct {
	updates chan streams.Update[*metadatav1.Instrument]
	done    chan error
	cancel  context.CancelFunc
}

func watchStart(t *testing.T, kv jetstream.KeyValue, keys string) *watchRun {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	w := &watchRun{updates: make(chan streams.Update[*metadatav1.Instrument], 100), done: make(chan error, 1), cancel: cancel}
	go func() {
		w.done <- streams.WatchKV(ctx, kv, keys, func(_ context.Context, u streams.Update[*metadatav1.Instrument]) error {
			w.updates <- u
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-w.done; !errors.Is(err, context.Canceled) {
			t.Errorf("WatchKV ended with %v, want context.Canceled", err)
		}
	})
	return w
}

// watchDescribe renders an update as "key tick [current]", "key deleted" or "snapshot end".
func watchDescribe(u streams.Update[*metadatav1.Instrument]) string {
	switch {
	case u.SnapshotEnd:
		return "snapshot end"
	case u.Deleted:
		return fmt.Sprintf("%s deleted%s", u.Key, map[bool]string{true: " current"}[u.Current])
	default:
		return fmt.Sprintf("%s %s%s", u.Key, u.Value.GetTickSize(), map[bool]string{true: " current"}[u.Current])
	}
}

// expect reads the next len(want) updates and compares them with want.
func (w *watchRun) expect(t *testing.T, want ...string) []streams.Update[*metadatav1.Instrument] {
	t.Helper()
	var got []streams.Update[*metadatav1.Instrument]
	deadline := time.After(watchTimeout)
	for range want {
		select {
		case u := <-w.updates:
			got = append(got, u)
		case err := <-w.done:
			t.Fatalf("watch ended with %v after %d updates, want %d", err, len(got), len(want))
		case <-deadline:
			t.Fatalf("timed out after %d updates, want %v", len(got), want)
		}
	}
	var described []string
	for _, u := range got {
		described = append(described, watchDescribe(u))
	}
	if !slices.Equal(described, want) {
		t.Errorf("updates\n%q\nwant\n%q", described, want)
	}
	return got
}

func TestWatchKVSnapshotThenChanges(t *testing.T) {
	t.Parallel()
	kv := watchBucket(t)
	watchPut(t, kv, "instruments.BTCUSDT", "0.1")
	watchPut(t, kv, "instruments.ETHUSDT", "0.01")
	watchPut(t, kv, "instruments.BTCUSDT", "0.5") // only the latest value is current
	watchPut(t, kv, "instruments.SOLUSDT", "0.001")
	if err := kv.Delete(t.Context(), "instruments.SOLUSDT"); err != nil { // deleted: not in the snapshot
		t.Fatal(err)
	}

	w := watchStart(t, kv, "instruments.*")
	got := w.expect(t, "instruments.ETHUSDT 0.01 current", "instruments.BTCUSDT 0.5 current", "snapshot end")
	if got[1].Value.GetSymbol() != "BTCUSDT" || got[1].Revision != 3 {
		t.Errorf("snapshot value %v at revision %d, want BTCUSDT at 3", got[1].Value, got[1].Revision)
	}

	rev := watchPut(t, kv, "instruments.XRPUSDT", "0.0001")
	watchPut(t, kv, "instruments.BTCUSDT", "1")
	if err := kv.Delete(t.Context(), "instruments.ETHUSDT"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(t.Context(), "instruments.XRPUSDT"); err != nil {
		t.Fatal(err)
	}
	got = w.expect(t, "instruments.XRPUSDT 0.0001", "instruments.BTCUSDT 1", "instruments.ETHUSDT deleted", "instruments.XRPUSDT deleted")
	if got[0].Revision != rev {
		t.Errorf("live update revision %d, want %d", got[0].Revision, rev)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Revision <= got[i-1].Revision {
			t.Errorf("revisions out of order: %d after %d", got[i].Revision, got[i-1].Revision)
		}
	}
}

func TestWatchKVEmptyBucketEndsSnapshotAtOnce(t *testing.T) {
	t.Parallel()
	kv := watchBucket(t)
	w := watchStart(t, kv, jetstream.AllKeys)
	w.expect(t, "snapshot end")
	watchPut(t, kv, "instruments.BTCUSDT", "0.1")
	w.expect(t, "instruments.BTCUSDT 0.1")
}

func TestWatchKVFiltersByPattern(t *testing.T) {
	t.Parallel()
	kv := watchBucket(t)
	watchPut(t, kv, "instruments.BTCUSDT", "0.1")
	watchPut(t, kv, "config.fees", "0.2")
	watchPut(t, kv, "instruments.perp.BTCUSDT-PERP", "0.5") // two tokens: not matched by "*"
	w := watchStart(t, kv, "instruments.*")
	w.expect(t, "instruments.BTCUSDT 0.1 current", "snapshot end")
	watchPut(t, kv, "config.fees", "0.3")
	watchPut(t, kv, "instruments.ETHUSDT", "0.01")
	w.expect(t, "instruments.ETHUSDT 0.01")
}

func TestWatchKVCancelReturnsContextError(t *testing.T) {
	t.Parallel()
	kv := watchBucket(t)
	w := watchStart(t, kv, jetstream.AllKeys)
	w.expect(t, "snapshot end")
	w.cancel()
	select {
	case err := <-w.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("WatchKV after cancel returned %v, want context.Canceled", err)
		}
		w.done <- err // for the cleanup
	case <-time.After(watchTimeout):
		t.Fatal("WatchKV did not return after its context was cancelled")
	}
}

func TestWatchKVUndecodableValueNamesKey(t *testing.T) {
	t.Parallel()
	kv := watchBucket(t)
	if _, err := kv.Put(t.Context(), "instruments.BAD", []byte{0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	err := streams.WatchKV(t.Context(), kv, jetstream.AllKeys, func(context.Context, streams.Update[*metadatav1.Instrument]) error {
		t.Error("fn called with an undecodable value")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "instruments.BAD") {
		t.Errorf("err = %v, want an error naming instruments.BAD", err)
	}
}

func TestWatchKVReturnsCallbackError(t *testing.T) {
	t.Parallel()
	kv := watchBucket(t)
	watchPut(t, kv, "instruments.BTCUSDT", "0.1")
	sendFailed := errors.New("client gone")
	calls := 0
	err := streams.WatchKV(t.Context(), kv, jetstream.AllKeys, func(context.Context, streams.Update[*metadatav1.Instrument]) error {
		calls++
		return sendFailed
	})
	if !errors.Is(err, sendFailed) || calls != 1 {
		t.Errorf("err = %v after %d calls, want the callback's error after 1", err, calls)
	}
}
