package wire

import (
	"errors"
	"testing"

	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
)

// FuzzUnmarshal: whatever a REST body holds, decoding it either succeeds
// or fails with a FieldError (a 400 naming the problem), never a panic.
// The seeds run with every go test; testdata/fuzz keeps the corpus.
func FuzzUnmarshal(f *testing.F) {
	for _, seed := range []string{
		`{"instrumentId":"BTCUSDT","side":"buy","type":"limit","quantity":10.5,"price":50000.0}`,
		`{"instrumentId":"BTCUSDT","instrument_id":"ETHUSDT"}`,
		`{"quantity":1e400}`, `{"quantity":"-0"}`, `{"side":7}`, `{"page":{"pageSize":-1}}`,
		`[]`, `null`, `"x"`, `{"a":`, "{\"instrumentId\":\"\xff\"}", `{"timeInForce":"ioc","postOnly":true}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Unmarshal(data, &orderv1.PlaceOrderRequest{})
		var fe *FieldError
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("Unmarshal(%q) = %v, want a FieldError", data, err)
		}
	})
}
