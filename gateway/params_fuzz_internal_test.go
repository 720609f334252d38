package gateway

import (
	"testing"

	"connectrpc.com/connect"
)

// FuzzParameters: whatever a path parameter or a Content-Type holds, it is
// accepted or refused with InvalidArgument, never a panic; an accepted path
// parameter is an identifier.
func FuzzParameters(f *testing.F) {
	for _, seed := range []string{"BTCUSDT", "USDT%00", "BTC%ZZ", "a.b-c_d", "%2F..%2F", "", "application/json; charset=UTF-8", "application/jsonx", "text/plain; charset"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := pathParameter(s); err == nil {
			if v == "" || len(v) > maxPathParameter {
				t.Fatalf("pathParameter(%q) accepted %q", s, v)
			}
			for _, r := range v {
				if notIdentifier(r) {
					t.Fatalf("pathParameter(%q) accepted %q", s, v)
				}
			}
		}
		if err := checkContentType(s); err != nil && connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("checkContentType(%q) = %v, want InvalidArgument", s, err)
		}
	})
}
