package schemaregistry

import (
	"encoding/binary"
	"fmt"
)

// magicByte starts every record value in the Confluent wire format.
const magicByte = 0

// maxMessageIndexes bounds the message-index array a header may declare, so
// that a corrupt count cannot make the parser allocate without limit.
const maxMessageIndexes = 64

// AppendHeader appends the Confluent protobuf wire-format header to dst:
// the magic byte 0, id as 4 big-endian bytes, then the message-index array
// (the path of the message from the file's top level down through nested
// messages) as a zig-zag varint count and zig-zag varint indexes, with [0]
// written as the single byte 0 (as is an empty indexes).
func AppendHeader(dst []byte, id int32, indexes []int) []byte {
	dst = append(dst, magicByte)
	dst = binary.BigEndian.AppendUint32(dst, uint32(id)) //nolint:gosec // the id's bits, as Confluent writes them
	if len(indexes) == 1 && indexes[0] == 0 {
		return append(dst, 0)
	}
	dst = binary.AppendVarint(dst, int64(len(indexes)))
	for _, i := range indexes {
		dst = binary.AppendVarint(dst, int64(i))
	}
	return dst
}

// ParseHeader splits a Confluent protobuf wire-format value into its schema
// id, message indexes and payload. A value too short, without the magic
// byte or with a malformed index array is an error wrapping
// ErrNotWireFormat.
func ParseHeader(value []byte) (id int32, indexes []int, payload []byte, err error) {
	if len(value) < 6 {
		return 0, nil, nil, fmt.Errorf("%w: %d bytes, want at least 6", ErrNotWireFormat, len(value))
	}
	if value[0] != magicByte {
		return 0, nil, nil, fmt.Errorf("%w: magic byte %d, want 0", ErrNotWireFormat, value[0])
	}
	id = int32(binary.BigEndian.Uint32(value[1:5])) //nolint:gosec // the id's bits, as Confluent writes them
	rest := value[5:]
	count, n := binary.Varint(rest)
	if n <= 0 || count < 0 || count > maxMessageIndexes {
		return 0, nil, nil, fmt.Errorf("%w: bad message-index count", ErrNotWireFormat)
	}
	rest = rest[n:]
	if count == 0 {
		return id, []int{0}, rest, nil
	}
	indexes = make([]int, count)
	for k := range indexes {
		i, n := binary.Varint(rest)
		if n <= 0 || i < 0 {
			return 0, nil, nil, fmt.Errorf("%w: bad message index %d", ErrNotWireFormat, k)
		}
		indexes[k], rest = int(i), rest[n:]
	}
	return id, indexes, rest, nil
}
