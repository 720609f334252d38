package paging_test

import (
	"errors"
	"testing"

	"github.com/tradex-mesh/tradex/internal/paging"
)

func TestSize(t *testing.T) {
	t.Parallel()
	for req, want := range map[int32]int{-1: 50, 0: 50, 1: 1, 1000: 1000, 1001: 1000} {
		if got := paging.Size(req); got != want {
			t.Errorf("Size(%d) = %d, want %d", req, got, want)
		}
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	tok := paging.Token("orders", "o-42")
	if got, err := paging.Cursor("orders", tok); err != nil || got != "o-42" {
		t.Fatalf("Cursor = %q, %v", got, err)
	}
	if got, err := paging.Cursor("orders", ""); err != nil || got != "" {
		t.Fatalf("first page: %q, %v", got, err)
	}
	if paging.Token("orders", "") != "" {
		t.Fatal("an empty cursor has a token")
	}
	for _, bad := range []string{paging.Token("balances", "o-42"), "%%%", "b3JkZXJzOg"} {
		if _, err := paging.Cursor("orders", bad); !errors.Is(err, paging.ErrBadToken) {
			t.Errorf("Cursor(%q) = %v, want ErrBadToken", bad, err)
		}
	}
	off := paging.OffsetToken("balances", 100)
	if n, err := paging.Offset("balances", off, 1000); err != nil || n != 100 {
		t.Fatalf("Offset = %d, %v", n, err)
	}
	for _, bad := range []string{paging.OffsetToken("balances", -5), paging.OffsetToken("balances", 2000),
		paging.Token("balances", "9223372036854775808")} {
		if _, err := paging.Offset("balances", bad, 1000); !errors.Is(err, paging.ErrBadToken) {
			t.Errorf("Offset(%q) = %v, want ErrBadToken", bad, err)
		}
	}
}

// page is a PageRequest of the contracts.
type page struct {
	size  int32
	token string
}

func (p page) GetPageSize() int32   { return p.size }
func (p page) GetPageToken() string { return p.token }

func TestRead(t *testing.T) {
	t.Parallel()
	size, cursor, err := paging.Read(page{0, paging.Token("orders", "o-9")}, "orders")
	if err != nil || size != paging.DefaultSize || cursor != "o-9" {
		t.Fatalf("Read = %d, %q, %v", size, cursor, err)
	}
	if _, _, err := paging.Read(page{-1, ""}, "orders"); !errors.Is(err, paging.ErrBadSize) || paging.Field(err) != "page.page_size" {
		t.Fatalf("negative size: %v (field %s)", err, paging.Field(err))
	}
	if _, _, err := paging.Read(page{10, "junk"}, "orders"); !errors.Is(err, paging.ErrBadToken) || paging.Field(err) != "page.page_token" {
		t.Fatalf("bad token: %v (field %s)", err, paging.Field(err))
	}
	size, offset, err := paging.ReadOffset(page{2000, paging.OffsetToken("balances", 40)}, "balances", 100)
	if err != nil || size != paging.MaxSize || offset != 40 {
		t.Fatalf("ReadOffset = %d, %d, %v", size, offset, err)
	}
	if _, _, err := paging.ReadOffset(page{-5, ""}, "balances", 100); !errors.Is(err, paging.ErrBadSize) {
		t.Fatalf("ReadOffset negative size: %v", err)
	}
}
