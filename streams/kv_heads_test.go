package streams_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	"github.com/tradex-mesh/tradex/streams"
)

func TestKVHeadsKeepsDeletedKeys(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	kv, err := streams.NewClient(s.JetStream(), streams.DefaultCatalog()).KV(t.Context(), streams.StoreConfig)
	if err != nil {
		t.Fatal(err)
	}
	heads, err := kv.Heads(t.Context(), ">")
	if err != nil || len(heads) != 0 {
		t.Fatalf("Heads of an empty bucket = %v, %v", heads, err)
	}
	for _, key := range []string{"a", "b", "c"} {
		if _, err := kv.Put(t.Context(), key, []byte(key+"1")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.Put(t.Context(), "a", []byte("a2")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(t.Context(), "b", 0); err != nil {
		t.Fatal(err)
	}
	heads, err = kv.Heads(t.Context(), ">")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range heads {
		got = append(got, fmt.Sprintf("%s=%s@%d deleted=%t", e.Key, e.Value, e.Revision, e.Deleted))
	}
	if want := "c=c1@3 deleted=false,a=a2@4 deleted=false,b=@5 deleted=true"; strings.Join(got, ",") != want {
		t.Fatalf("Heads = %s, want %s", strings.Join(got, ","), want)
	}
	latest, err := kv.Latest(t.Context(), ">")
	if err != nil || len(latest) != 2 {
		t.Fatalf("Latest = %v, %v: want the two live keys", latest, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := kv.Heads(ctx, ">"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Heads with an ended context = %v, want context.Canceled", err)
	}
}
