package streams_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// TestPublishAtomicDuplicateMsgIDIsConflict: an atomic batch carrying a
// message id already stored is refused whole, with an error wrapping
// ErrConcurrency, on a single node and on a replicated stream.
func TestPublishAtomicDuplicateMsgIDIsConflict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		js       func(t *testing.T) jetstream.JetStream
		replicas int
	}{
		{"single node", func(t *testing.T) jetstream.JetStream { return embeddedtest.New(t).JetStream() }, 1},
		{"3-node cluster", func(t *testing.T) jetstream.JetStream { return embeddedtest.NewCluster(t, 3).JetStream() }, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			js := tc.js(t)
			catalog := streams.DefaultCatalog()
			if err := streams.EnsureStreams(t.Context(), js, catalog, streams.WithReplicas(tc.replicas)); err != nil {
				t.Fatal(err)
			}
			client := streams.NewClient(js, catalog)
			pub := client.Publisher()
			record := func(key, id string) streams.Record {
				return streams.Record{Topic: streams.TopicBalanceChanged, Key: key,
					Msg: &walletv1.BalanceChanged{EventId: id, AccountId: key}, Opts: []streams.PublishOption{streams.WithMsgID(id)}}
			}
			last := func() uint64 {
				t.Helper()
				seq, err := client.LastSequence(t.Context(), streams.TopicBalanceChanged)
				if err != nil {
					t.Fatal(err)
				}
				return seq
			}

			if _, err := pub.Publish(t.Context(), streams.TopicBalanceChanged, "bob", &walletv1.BalanceChanged{EventId: "b1"},
				streams.WithMsgID("b1")); err != nil {
				t.Fatal(err)
			}
			before := last()
			_, _, err := pub.PublishAtomic(t.Context(), []streams.Record{record("alice", "a1"), record("bob", "b1")})
			if !errors.Is(err, streams.ErrConcurrency) {
				t.Fatalf("batch with a stored message id: err = %v, want ErrConcurrency", err)
			}
			if got := last(); got != before {
				t.Fatalf("a refused batch stored something: last sequence %d, want %d", got, before)
			}

			batch := []streams.Record{record("alice", "a2"), record("carol", "c1")}
			first, end, err := pub.PublishAtomic(t.Context(), batch)
			if err != nil || first != before+1 || end != before+2 {
				t.Fatalf("fresh batch: %d..%d, %v; want %d..%d", first, end, err, before+1, before+2)
			}
			if _, _, err := pub.PublishAtomic(t.Context(), batch); !errors.Is(err, streams.ErrConcurrency) {
				t.Fatalf("retried batch: err = %v, want ErrConcurrency", err)
			}
			if got := last(); got != end {
				t.Fatalf("a retried batch stored again: last sequence %d, want %d", got, end)
			}
		})
	}
}
