package embedded_test

import (
	"slices"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
)

func TestConnectionNames(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	for _, name := range []string{"tradex-b", "tradex-a"} {
		nc, err := s.Connect(nats.Name(name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
	}
	names, err := s.ConnectionNames()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, "tradex-a") || !slices.Contains(names, "tradex-b") || !slices.IsSorted(names) {
		t.Fatalf("connections %v, want tradex-a and tradex-b, sorted", names)
	}
}
