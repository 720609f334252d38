package streamstest

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tradex-mesh/tradex/streams"
)

// testRange reads runs of one key with Client.Range: in order, only that
// key, from the given sequence, at most the limit, and nothing past the end.
func testRange(t *testing.T, s *suite) {
	var seqs []uint64
	for _, v := range []string{"a", "b", "c", "d"} {
		seqs = append(seqs, s.publish(t, "k1", v))
		s.publish(t, "k2", "other-"+v)
	}
	client := streams.NewClient(s.env.JetStream, s.catalog)
	values := func(from uint64, limit int) []string {
		t.Helper()
		got, err := client.Range(t.Context(), s.topic, "k1", from, limit)
		if err != nil {
			t.Fatalf("Range from %d: %v", from, err)
		}
		var out []string
		for _, m := range got {
			var v wrapperspb.StringValue
			if err := proto.Unmarshal(m.Data, &v); err != nil {
				t.Fatal(err)
			}
			if m.Key != "k1" {
				t.Errorf("message %d has key %q", m.Sequence, m.Key)
			}
			out = append(out, v.GetValue())
		}
		return out
	}
	for _, c := range []struct {
		from  uint64
		limit int
		want  []string
	}{
		{0, 10, []string{"a", "b", "c", "d"}},
		{seqs[1], 2, []string{"b", "c"}},
		{seqs[1] + 1, 10, []string{"c", "d"}},
		{seqs[3] + 1, 10, nil},
	} {
		if got := values(c.from, c.limit); !slices.Equal(got, c.want) {
			t.Errorf("Range(from %d, limit %d) = %v, want %v", c.from, c.limit, got, c.want)
		}
	}
}
