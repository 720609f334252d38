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
