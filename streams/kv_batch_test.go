package streams_test

import (
	"errors"
	"testing"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	"github.com/tradex-mesh/tradex/streams"
)

// TestKVBatch writes several keys all or nothing: creates, updates at the
// expected revision, and a batch with one stale revision that stores none
// of its writes; a second client binds to the bucket as it is and batches
// too.
func TestKVBatch(t *testing.T) {
	t.Parallel()
	js := embeddedtest.New(t).JetStream()
	open := func() *streams.KV {
		t.Helper()
		kv, err := streams.NewClient(js, streams.DefaultCatalog()).KV(t.Context(), streams.StoreOrders)
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
	kv := open()
	value := func(key string) (string, uint64) {
		t.Helper()
		e, err := kv.Get(t.Context(), key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		return string(e.Value), e.Revision
	}
	revs, err := kv.Batch(t.Context(), []streams.KVWrite{{Key: "a", Value: []byte("a1")}, {Key: "b", Value: []byte("b1")}})
	if err != nil {
		t.Fatal(err)
	}
	if v, rev := value("b"); v != "b1" || rev != revs[1] || revs[1] != revs[0]+1 {
		t.Errorf("b = %s at %d, batch revisions %v", v, rev, revs)
	}
	// A create of a key that exists, and an update at an old revision, are refused.
	for _, stale := range []streams.KVWrite{{Key: "b", Value: []byte("b2")}, {Key: "a", Value: []byte("a2"), Revision: revs[0] - 1}} {
		_, err = kv.Batch(t.Context(), []streams.KVWrite{{Key: "c", Value: []byte("c1")}, stale})
		if !errors.Is(err, streams.ErrRevisionMismatch) {
			t.Errorf("batch with %s at %d: err = %v, want ErrRevisionMismatch", stale.Key, stale.Revision, err)
		}
		if _, err := kv.Get(t.Context(), "c"); !errors.Is(err, streams.ErrNotFound) {
			t.Errorf("c after a refused batch: err = %v, want ErrNotFound", err)
		}
	}
	kv = open()
	next, err := kv.Batch(t.Context(), []streams.KVWrite{{Key: "a", Value: []byte("a2"), Revision: revs[0]}, {Key: "c", Value: []byte("c1")}})
	if err != nil {
		t.Fatal(err)
	}
	if v, rev := value("a"); v != "a2" || rev != next[0] {
		t.Errorf("a = %s at %d, want a2 at %d", v, rev, next[0])
	}

	// Write: the same checks, not atomic: what precedes a refused write is stored.
	revs, err = kv.Write(t.Context(), []streams.KVWrite{{Key: "a", Value: []byte("a3"), Revision: next[0]}, {Key: "d", Value: []byte("d1")}})
	if err != nil {
		t.Fatal(err)
	}
	if v, rev := value("d"); v != "d1" || rev != revs[1] {
		t.Errorf("d = %s at %d, want d1 at %d", v, rev, revs[1])
	}
	_, err = kv.Write(t.Context(), []streams.KVWrite{{Key: "e", Value: []byte("e1")}, {Key: "a", Value: []byte("a4"), Revision: next[0]}})
	if !errors.Is(err, streams.ErrRevisionMismatch) {
		t.Errorf("write at a stale revision: err = %v, want ErrRevisionMismatch", err)
	}
	if v, _ := value("a"); v != "a3" {
		t.Errorf("a = %s after a refused write, want a3", v)
	}
	if v, _ := value("e"); v != "e1" {
		t.Errorf("e = %s: the write before the refused one is stored (not atomic)", v)
	}

	// After a delete, Entry gives the marker's revision, which a new value
	// must expect.
	if err := kv.Delete(t.Context(), "e", 0); err != nil {
		t.Fatal(err)
	}
	marker, err := kv.Entry(t.Context(), "e")
	if err != nil || !marker.Deleted || marker.Revision == 0 {
		t.Fatalf("Entry of a deleted key: %+v, %v", marker, err)
	}
	if _, err := kv.Write(t.Context(), []streams.KVWrite{{Key: "e", Value: []byte("e2")}}); !errors.Is(err, streams.ErrRevisionMismatch) {
		t.Errorf("a new value expecting none over a delete marker: err = %v, want ErrRevisionMismatch", err)
	}
	if _, err := kv.Write(t.Context(), []streams.KVWrite{{Key: "e", Value: []byte("e2"), Revision: marker.Revision}}); err != nil {
		t.Errorf("a new value expecting the marker: %v", err)
	}
	if _, err := kv.Entry(t.Context(), "never"); !errors.Is(err, streams.ErrNotFound) {
		t.Errorf("Entry of a key never written: err = %v, want ErrNotFound", err)
	}
}
