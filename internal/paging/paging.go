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

// Errors of a page request; Field names the request field each is about.
var (
	// ErrBadToken is a page token that is not one of this list's.
	ErrBadToken = errors.New("not a token of this list")
	// ErrBadSize is a negative page size.
	ErrBadSize = errors.New("must not be negative")
)

// Page is a list request's paging (tradex.common.v1.PageRequest; nil is
// the first page at the default size).
type Page interface {
	GetPageSize() int32
	GetPageToken() string
}

// Read reads a page request of list: the page size (Size) and the cursor
// its token resumes after ("" for the first page). A negative size fails
// with ErrBadSize, a token of another list with ErrBadToken.
func Read(p Page, list string) (size int, cursor string, err error) {
	if p.GetPageSize() < 0 {
		return 0, "", ErrBadSize
	}
	cursor, err = Cursor(list, p.GetPageToken())
	if err != nil {
		return 0, "", err
	}
	return Size(p.GetPageSize()), cursor, nil
}

// ReadOffset is Read for a list paged by offset (OffsetToken), offsets at
// most limit.
func ReadOffset(p Page, list string, limit int) (size, offset int, err error) {
	if p.GetPageSize() < 0 {
		return 0, 0, ErrBadSize
	}
	offset, err = Offset(list, p.GetPageToken(), limit)
	if err != nil {
		return 0, 0, err
	}
	return Size(p.GetPageSize()), offset, nil
}

// Field is the request field a Read error is about: "page.page_size" or
// "page.page_token".
func Field(err error) string {
	if errors.Is(err, ErrBadSize) {
		return "page.page_size"
	}
	return "page.page_token"
}

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
