package wallet

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// commitAll applies tx's entries to b as the store does after an ack.
func commitAll(t *testing.T, b *Book, tx *Tx) {
	t.Helper()
	next := map[string]uint64{}
	for i := range tx.Entries {
		e := &tx.Entries[i]
		if _, ok := next[e.Account]; !ok {
			next[e.Account], _ = b.AccountSeq(e.Account)
		}
		next[e.Account]++
		e.Sequence = next[e.Account]
		b.applied++
		e.StreamSeq = b.applied
		if err := b.Apply(*e); err != nil {
			t.Fatalf("apply %+v: %v", *e, err)
		}
	}
}

func run(t *testing.T, b *Book, f func(tx *Tx) error) error {
	t.Helper()
	tx := b.Begin(t0)
	if err := f(tx); err != nil {
		return err
	}
	commitAll(t, b, tx)
	return nil
}

func TestArithmetic(t *testing.T) {
	t.Parallel()
	type want struct {
		acct, asset     string
		available, held int64
	}
	cases := []struct {
		name  string
		steps []func(tx *Tx) error
		err   error // of the last step
		want  []want
	}{
		{
			name:  "deposit",
			steps: []func(tx *Tx) error{func(tx *Tx) error { return tx.Deposit("d1", "a", "USDT", 100, "") }},
			want:  []want{{"a", "USDT", 100, 0}},
		},
		{
			name: "withdraw all",
			steps: []func(tx *Tx) error{
				func(tx *Tx) error { return tx.Deposit("d1", "a", "USDT", 100, "") },
				func(tx *Tx) error { return tx.Withdraw("w1", "a", "USDT", 100, "") },
			},
			want: []want{{"a", "USDT", 0, 0}},
		},
		{
			name: "withdraw too much",
			steps: []func(tx *Tx) error{
				func(tx *Tx) error { return tx.Deposit("d1", "a", "USDT", 100, "") },
				func(tx *Tx) error { return tx.Withdraw("w1", "a", "USDT", 101, "") },
			},
			err:  ErrInsufficientFunds,
			want: []want{{"a", "USDT", 100, 0}},
		},
		{
			name: "hold then withdraw the held part fails",
			steps: []func(tx *Tx) error{
				func(tx *Tx) error { return tx.Deposit("d1", "a", "USDT", 100, "") },
				func(tx *Tx) error { return tx.Hold("h1", "a", "USDT", 60, HoldOrder) },
				func(tx *Tx) error { return tx.Withdraw("w1", "a", "USDT", 41, "") },
			},
			err:  ErrInsufficientFunds,
			want: []want{{"a", "USDT", 40, 60}},
		},
		{
			name: "partial then full release",
			steps: []func(tx *Tx) error{
				func(tx *Tx) error { return tx.Deposit("d1", "a", "USDT", 100, "") },
				func(tx *Tx) error { return tx.Hold("h1", "a", "USDT", 60, HoldOrder) },
				func(tx *Tx) error { _, err := tx.Release("a", "h1", 10, Entry{ReleaseID: "r1"}); return err },
				func(tx *Tx) error { _, err := tx.Release("a", "h1", -1, Entry{}); return err },
			},
			want: []want{{"a", "USDT", 100, 0}},
		},
		{
			name: "release more than remains",
			steps: []func(tx *Tx) error{
				func(tx *Tx) error { return tx.Deposit("d1", "a", "USDT", 100, "") },
				func(tx *Tx) error { return tx.Hold("h1", "a", "USDT", 60, HoldOrder) },
				func(tx *Tx) error { _, err := tx.Release("a", "h1", 61, Entry{}); return err },
			},
			err:  ErrInsufficientFunds,
			want: []want{{"a", "USDT", 40, 60}},
		},
		{
			name:  "release unknown hold",
			steps: []func(tx *Tx) error{func(tx *Tx) error { _, err := tx.Release("a", "nope", -1, Entry{}); return err }},
			err:   ErrHoldNotFound,
		},
		{
			name: "overflow",
			steps: []func(tx *Tx) error{
				func(tx *Tx) error { return tx.Deposit("d1", "a", "USDT", math.MaxInt64, "") },
				func(tx *Tx) error { return tx.Deposit("d2", "a", "USDT", 1, "") },
			},
			err:  ErrOverflow,
			want: []want{{"a", "USDT", math.MaxInt64, 0}},
		},
		{
			name:  "zero amount",
			steps: []func(tx *Tx) error{func(tx *Tx) error { return tx.Hold("h", "a", "USDT", 0, HoldOrder) }},
			err:   ErrInvalidArgument,
		},
		{
			name: "trade with leftover release",
			steps: []func(tx *Tx) error{
				func(tx *Tx) error { return tx.Deposit("d1", "buyer", "USDT", 1000, "") },
				func(tx *Tx) error { return tx.Deposit("d2", "seller", "BTC", 10, "") },
				func(tx *Tx) error { return tx.Hold("o1", "buyer", "USDT", 1000, HoldOrder) },
				func(tx *Tx) error { return tx.Hold("o2", "seller", "BTC", 10, HoldOrder) },
				func(tx *Tx) error {
					return tx.Settle(Trade{EventID: "e1", BaseAsset: "BTC", QuoteAsset: "USDT", Base: 4, Quote: 360,
						BuyAccount: "buyer", BuyOrder: "o1", SellAccount: "seller", SellOrder: "o2", BuyFilled: true})
				},
			},
			want: []want{
				{"buyer", "USDT", 640, 0}, {"buyer", "BTC", 4, 0},
				{"seller", "BTC", 0, 6}, {"seller", "USDT", 360, 0},
			},
		},
		{
			name: "self trade",
			steps: []func(tx *Tx) error{
				func(tx *Tx) error { return tx.Deposit("d1", "a", "USDT", 100, "") },
				func(tx *Tx) error { return tx.Deposit("d2", "a", "BTC", 1, "") },
				func(tx *Tx) error { return tx.Hold("o1", "a", "USDT", 100, HoldOrder) },
				func(tx *Tx) error { return tx.Hold("o2", "a", "BTC", 1, HoldOrder) },
				func(tx *Tx) error {
					return tx.Settle(Trade{EventID: "e1", BaseAsset: "BTC", QuoteAsset: "USDT", Base: 1, Quote: 100,
						BuyAccount: "a", BuyOrder: "o1", SellAccount: "a", SellOrder: "o2", BuyFilled: true, SellFilled: true})
				},
			},
			want: []want{{"a", "USDT", 100, 0}, {"a", "BTC", 1, 0}},
		},
		{
			name: "trade beyond the hold",
			steps: []func(tx *Tx) error{
				func(tx *Tx) error { return tx.Deposit("d1", "buyer", "USDT", 1000, "") },
				func(tx *Tx) error { return tx.Deposit("d2", "seller", "BTC", 10, "") },
				func(tx *Tx) error { return tx.Hold("o1", "buyer", "USDT", 100, HoldOrder) },
				func(tx *Tx) error { return tx.Hold("o2", "seller", "BTC", 10, HoldOrder) },
				func(tx *Tx) error {
					return tx.Settle(Trade{EventID: "e1", BaseAsset: "BTC", QuoteAsset: "USDT", Base: 2, Quote: 200,
						BuyAccount: "buyer", BuyOrder: "o1", SellAccount: "seller", SellOrder: "o2"})
				},
			},
			err:  ErrInsufficientFunds,
			want: []want{{"buyer", "USDT", 900, 100}, {"seller", "BTC", 0, 10}, {"buyer", "BTC", 0, 0}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := NewBook()
			var err error
			for _, s := range c.steps {
				if err = run(t, b, s); err != nil {
					break
				}
			}
			if (c.err == nil && err != nil) || (c.err != nil && !errors.Is(err, c.err)) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			for _, w := range c.want {
				got := b.Balance(w.acct, w.asset)
				if got.Available != w.available || got.Held != w.held {
					t.Errorf("%s %s = %d/%d, want %d/%d", w.acct, w.asset, got.Available, got.Held, w.available, w.held)
				}
			}
		})
	}
}

func TestApplyRejectsGapsAndBadSums(t *testing.T) {
	t.Parallel()
	b := NewBook()
	if err := b.Apply(Entry{Account: "a", Asset: "X", Available: 5, AvailableDelta: 5, Sequence: 2, StreamSeq: 1}); !errors.Is(err, ErrCorruptJournal) {
		t.Errorf("gap: %v", err)
	}
	if err := b.Apply(Entry{Account: "a", Asset: "X", Available: 6, AvailableDelta: 5, Sequence: 1, StreamSeq: 1}); !errors.Is(err, ErrCorruptJournal) {
		t.Errorf("bad sum: %v", err)
	}
	if err := b.Apply(Entry{Account: "a", Asset: "X", Available: 5, AvailableDelta: 5, Sequence: 1, StreamSeq: 3}); err != nil {
		t.Fatal(err)
	}
	// Already applied (at or before the account's last stream sequence): skipped.
	if err := b.Apply(Entry{Account: "a", Asset: "X", Available: 99, AvailableDelta: 99, Sequence: 7, StreamSeq: 3}); err != nil {
		t.Errorf("replayed entry: %v", err)
	}
}

// TestPropertyConservation runs random deposits, withdrawals, holds,
// trades and releases: no balance or hold goes negative, and each asset's
// total changes only by deposits and withdrawals.
func TestPropertyConservation(t *testing.T) {
	t.Parallel()
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 42)) //nolint:gosec // reproducible test input, not a secret
			b := NewBook()
			accts := []string{"a", "b", "c"}
			assets := []string{"BTC", "USDT"}
			external := map[string]int64{}
			type order struct{ acct, id, asset string }
			var orders []order
			for i := range 2000 {
				acct := accts[rng.IntN(len(accts))]
				asset := assets[rng.IntN(len(assets))]
				amt := rng.Int64N(1000) + 1
				var err error
				switch op := rng.IntN(6); op {
				case 0:
					err = run(t, b, func(tx *Tx) error { return tx.Deposit(fmt.Sprint("d", i), acct, asset, amt, "") })
					if err == nil {
						external[asset] += amt
					}
				case 1:
					err = run(t, b, func(tx *Tx) error { return tx.Withdraw(fmt.Sprint("w", i), acct, asset, amt, "") })
					if err == nil {
						external[asset] -= amt
					}
				case 2:
					id := fmt.Sprint("o", i)
					err = run(t, b, func(tx *Tx) error { return tx.Hold(id, acct, asset, amt, HoldOrder) })
					if err == nil {
						orders = append(orders, order{acct, id, asset})
					}
				case 3, 4:
					var buy, sell *order
					for _, j := range rng.Perm(len(orders)) {
						o := &orders[j]
						if o.asset == "USDT" && buy == nil {
							buy = o
						} else if o.asset == "BTC" && sell == nil {
							sell = o
						}
					}
					if buy == nil || sell == nil {
						continue
					}
					err = run(t, b, func(tx *Tx) error {
						return tx.Settle(Trade{EventID: fmt.Sprint("t", i), BaseAsset: "BTC", QuoteAsset: "USDT",
							Base: rng.Int64N(50) + 1, Quote: rng.Int64N(500) + 1,
							BuyAccount: buy.acct, BuyOrder: buy.id, SellAccount: sell.acct, SellOrder: sell.id,
							BuyFilled: rng.IntN(3) == 0, SellFilled: rng.IntN(3) == 0})
					})
				case 5:
					if len(orders) == 0 {
						continue
					}
					o := orders[rng.IntN(len(orders))]
					err = run(t, b, func(tx *Tx) error {
						_, err := tx.Release(o.acct, o.id, rng.Int64N(100)-50, Entry{ReleaseID: fmt.Sprint("r", i)})
						return err
					})
				}
				if err != nil && !errors.Is(err, ErrInsufficientFunds) {
					t.Fatalf("step %d: %v", i, err)
				}
				for _, bal := range b.Balances("") {
					if bal.Available < 0 || bal.Held < 0 {
						t.Fatalf("step %d: negative balance %+v", i, bal)
					}
				}
				held := map[string]int64{}
				for _, h := range b.holds {
					if h.Remaining < 0 {
						t.Fatalf("step %d: negative hold %+v", i, *h)
					}
					held[key(h.Account, h.Asset)] += h.Remaining
				}
				for _, bal := range b.Balances("") {
					if bal.Held != held[key(bal.Account, bal.Asset)] {
						t.Fatalf("step %d: %s %s held %d, holds remaining %d", i, bal.Account, bal.Asset, bal.Held, held[key(bal.Account, bal.Asset)])
					}
				}
				for _, asset := range assets {
					if got := b.Totals()[asset]; got != external[asset] {
						t.Fatalf("step %d: %s total %d, deposits-withdrawals %d", i, asset, got, external[asset])
					}
				}
			}
		})
	}
}
