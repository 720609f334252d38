package schemaregistry_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/tradex-mesh/tradex/streams/schemaregistry"
)

func TestHeaderRoundTrip(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		id      int32
		indexes []int
		want    []byte
	}{
		{"first message is the single byte 0", 7, []int{0}, []byte{0, 0, 0, 0, 7, 0}},
		{"fourth top-level message", 0x01020304, []int{3}, []byte{0, 1, 2, 3, 4, 2, 6}},
		{"nested message", 1, []int{1, 0, 2}, []byte{0, 0, 0, 0, 1, 6, 2, 0, 4}},
		{"large index", 1, []int{70}, []byte{0, 0, 0, 0, 1, 2, 0x8c, 0x01}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := schemaregistry.AppendHeader([]byte{}, c.id, c.indexes)
			if !bytes.Equal(got, c.want) {
				t.Fatalf("AppendHeader = %x, want %x", got, c.want)
			}
			id, indexes, payload, err := schemaregistry.ParseHeader(append(got, 0x0a, 0x01, 'x'))
			if err != nil {
				t.Fatalf("ParseHeader: %v", err)
			}
			if id != c.id || !slices.Equal(indexes, c.indexes) || !bytes.Equal(payload, []byte{0x0a, 0x01, 'x'}) {
				t.Fatalf("ParseHeader = %d %v %x, want %d %v 0a0178", id, indexes, payload, c.id, c.indexes)
			}
		})
	}
}

func TestParseHeaderRefusesMalformedValues(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		value []byte
	}{
		{"empty", nil},
		{"shorter than a header", []byte{0, 0, 0, 0, 1}},
		{"wrong magic byte", []byte{1, 0, 0, 0, 1, 0}},
		{"negative count", []byte{0, 0, 0, 0, 1, 1}},
		{"count beyond the bound", []byte{0, 0, 0, 0, 1, 0xfe, 0x01}},
		{"truncated indexes", []byte{0, 0, 0, 0, 1, 4, 2}},
		{"negative index", []byte{0, 0, 0, 0, 1, 2, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if _, _, _, err := schemaregistry.ParseHeader(c.value); !errors.Is(err, schemaregistry.ErrNotWireFormat) {
				t.Fatalf("ParseHeader(%x) = %v, want ErrNotWireFormat", c.value, err)
			}
		})
	}
}
