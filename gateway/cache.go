package gateway

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// HTTP caching of REST answers (RFC 9111). A public GET (market data,
// instruments) answers with "Cache-Control: no-cache" and a strong ETag
// of its body: a client or a shared cache may keep it but asks again each
// time, and an unchanged answer costs a 304 without a body. Every other
// answer (an account's data, any write) says "Cache-Control: no-store":
// nothing on the way may keep it.

// etag is the strong entity tag of a body: its 64-bit FNV-1a hash, the
// same in every gateway process.
func etag(body []byte) string {
	h := fnv.New64a()
	_, _ = h.Write(body) // a hash never fails to write
	return `"` + strconv.FormatUint(h.Sum64(), 36) + `"`
}

// etagMatches reports whether an If-None-Match header names tag: "*", or a
// list of tags compared weakly (a W/ prefix is ignored, RFC 9110 13.1.2).
func etagMatches(header, tag string) bool {
	if header == "" {
		return false
	}
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == tag {
			return true
		}
	}
	return false
}
