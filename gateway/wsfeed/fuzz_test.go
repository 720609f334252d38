package wsfeed

import (
	"testing"

	"connectrpc.com/connect"
)

// FuzzParseRequest: whatever a client sends as a frame, it is parsed or
// refused with an error frame's code (InvalidArgument, or NotFound for an
// unknown channel), never a panic.
func FuzzParseRequest(f *testing.F) {
	for _, seed := range []string{
		`{"op":"subscribe","channels":[{"name":"book","symbols":["BTCUSDT-PERP"]}]}`,
		`{"op":"unsubscribe","channels":[{"name":"trades","symbols":["BTCUSDT"]}],"req_id":7}`,
		`{"op":"auth","token":"alice","req_id":"a"}`, `{"op":"ping"}`, `{"op":"subscribe","channels":"book"}`,
		`{"req_id":"x"`, `[]`, `null`, `{"op":"candles","channels":[{"name":"candles.1m","symbols":[""]}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := parseRequest(data)
		if err == nil {
			return
		}
		if code := connect.CodeOf(err); code == connect.CodeUnknown || code == connect.CodeInternal {
			t.Fatalf("parseRequest(%q) = %v: want a client error code", data, err)
		}
	})
}
