package schemaregistry_test

import (
	"fmt"

	"github.com/tradex-mesh/tradex/streams/schemaregistry"
)

// A record value of the fourth message of a file, with schema id 42: the
// magic byte, the id, then the message indexes [3] as count 1 and index 3
// (zig-zag varints 2 and 6), then the payload.
func ExampleAppendHeader() {
	value := append(schemaregistry.AppendHeader(nil, 42, []int{3}), 0x0a, 0x01, 'x')
	fmt.Printf("% x\n", value)
	id, indexes, payload, err := schemaregistry.ParseHeader(value)
	fmt.Println(id, indexes, string(payload[2:]), err)
	// Output:
	// 00 00 00 00 2a 02 06 0a 01 78
	// 42 [3] x <nil>
}
