package streams_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
)

// TestGroupCommit queues callers behind a held write and checks that they
// are stored as one batch (consecutive sequences, each caller's records
// together and in order), that a caller refused as a conflict in a shared
// batch gets its own refusal while the others are stored, and that a
// caller whose context ended before its write is not written.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	js := embeddedtest.New(t).JetStream()
	catalog := streams.DefaultCatalog()
	if err := streams.EnsureStreams(t.Context(), js, catalog); err != nil {
		t.Fatal(err)
	}
	client := streams.NewClient(js, catalog)
	g := client.Publisher().GroupCommit(streams.TopicBalanceChanged, 10*time.Second)
	record := func(acct string, n int, opts ...streams.PublishOption) streams.Record {
		return streams.Record{Topic: streams.TopicBalanceChanged, Key: acct,
			Msg: &walletv1.BalanceChanged{EventId: fmt.Sprint(acct, "-", n), AccountId: acct}, Opts: opts}
	}

	// run commits every caller's records while the group is held, waits
	// until all are queued behind the first, then lets the writes go.
	run := func(callers [][]streams.Record) ([]uint64, []error) {
		t.Helper()
		release := make(chan struct{})
		streams.HoldGroupCommit(g, release)
		firsts, errs := make([]uint64, len(callers)), make([]error, len(callers))
		var wg sync.WaitGroup
		for i, records := range callers {
			wg.Go(func() { firsts[i], errs[i] = g.Commit(t.Context(), records) })
		}
		polltest.True(t, "callers queued", func() bool { return streams.Queued(g) == len(callers) })
		close(release)
		wg.Wait()
		return firsts, errs
	}
	// batches collects the atomic batches of the records checked.
	batches := map[string]bool{}
	check := func(first uint64, records []streams.Record) {
		t.Helper()
		for i, r := range records {
			m, err := client.Get(t.Context(), streams.TopicBalanceChanged, first+uint64(i))
			if err != nil {
				t.Fatal(err)
			}
			batches[m.Header.Get("Nats-Batch-Id")] = true
			var got walletv1.BalanceChanged
			if err := proto.Unmarshal(m.Data, &got); err != nil {
				t.Fatal(err)
			}
			if want := r.Msg.(*walletv1.BalanceChanged).GetEventId(); got.GetEventId() != want {
				t.Errorf("at %d: %s, want %s", first+uint64(i), got.GetEventId(), want)
			}
		}
	}

	callers := [][]streams.Record{
		{record("a", 1)}, {record("b", 1), record("b", 2), record("b", 3)}, {record("c", 1)},
	}
	firsts, errs := run(callers)
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		check(firsts[i], callers[i])
	}
	if len(batches) != 1 || batches[""] {
		t.Errorf("the callers' records were stored in batches %v, want one", slices.Collect(maps.Keys(batches)))
	}

	// c's last entry is at firsts[2]; expecting an older one is a conflict.
	callers = [][]streams.Record{
		{record("a", 2)}, {record("c", 2, streams.WithExpectedLastSubjectSequence(firsts[2]-1))}, {record("d", 1)},
	}
	firsts, errs = run(callers)
	if !errors.Is(errs[1], streams.ErrConcurrency) {
		t.Errorf("stale caller: err = %v, want ErrConcurrency", errs[1])
	}
	for _, i := range []int{0, 2} {
		if errs[i] != nil {
			t.Fatalf("caller %d beside a conflict: %v", i, errs[i])
		}
		check(firsts[i], callers[i])
	}

	// A caller that gave up while queued is not written.
	release := make(chan struct{})
	streams.HoldGroupCommit(g, release)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := g.Commit(ctx, []streams.Record{record("e", 1)})
		done <- err
	}()
	polltest.True(t, "caller queued", func() bool { return streams.Queued(g) == 1 })
	cancel()
	close(release)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: err = %v, want context.Canceled", err)
	}
	if _, err := client.Last(t.Context(), streams.TopicBalanceChanged, "e"); !errors.Is(err, streams.ErrNotFound) {
		t.Errorf("cancelled caller's record: err = %v, want ErrNotFound", err)
	}
}
