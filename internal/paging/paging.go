// Package paging is the one paging scheme of every List RPC: a page size
// clamped to sane bounds and an opaque page token that names the list it
// belongs to, so a token of one list is refused by another.
package paging

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Page sizes: what an absent size means and the most one page holds.
const (
	DefaultSize = 50
	MaxSize     = 1000
)

// ErrBadToken is a page token that is not one of this list's.
var ErrBadToken = errors.New("not a token of this list")

// Size is the page size to serve for a requested one: DefaultSize for
// zero or less, at most MaxSize.
func Size(requested int32) int {
	switch {
	case requested <= 0:
		return DefaultSize
	case requested > MaxSize:
		return MaxSize
	default:
		return int(requested)
	}
}

// Token is the page token that resumes list after cursor ("" when
// cursor is: there is no next page).
func Token(list, cursor string) string {
	if cursor == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(list + ":" + cursor))
}

// Cursor reads a token of list back ("" for the first page), or fails with
// ErrBadToken.
func Cursor(list, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", ErrBadToken
	}
	cursor, ok := strings.CutPrefix(string(raw), list+":")
	if !ok || cursor == "" {
		return "", ErrBadToken
	}
	return cursor, nil
}

// OffsetToken is the page token of list that resumes at offset.
func OffsetToken(list string, offset int) string { return Token(list, strconv.Itoa(offset)) }

// Offset reads an OffsetToken back (0 for the first page), or fails with
// ErrBadToken: offsets are positive and at most max.
func Offset(list, token string, limit int) (int, error) {
	cursor, err := Cursor(list, token)
	if err != nil || cursor == "" {
		return 0, err
	}
	n, err := strconv.Atoi(cursor)
	if err != nil || n < 1 || n > limit {
		return 0, fmt.Errorf("%w: offset out of range", ErrBadToken)
	}
	return n, nil
}
