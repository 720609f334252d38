package wsfeed_test

import (
	"encoding/json"
	"testing"

	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
)

// After an auth frame, orders and balances carry the principal's own
// account only: a snapshot first, then every change.
func TestPrivateChannels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	fund(t, e.p, "alice", "bob")
	clients := map[string]*client{}
	for _, acct := range []string{"alice", "bob"} {
		c := e.dial(t)
		c.send(`{"op":"auth","token":"` + acct + `","req_id":"a"}`)
		if f := c.expect("authenticated", "", "a"); f.Account != acct {
			t.Fatalf("auth ack %s", f)
		}
		c.send(`{"op":"subscribe","channels":[{"name":"orders"},{"name":"balances"}],"req_id":"p"}`)
		c.expect("subscribed", "", "p")
		for range 2 {
			f := c.next()
			var list []struct {
				AccountID string `json:"accountId"`
				Asset     string `json:"asset"`
				Available string `json:"available"`
			}
			if f.Type != "snapshot" || json.Unmarshal(f.Data, &list) != nil {
				t.Fatalf("%s: %s; want a snapshot", acct, f)
			}
			if f.Op == "balances" && (len(list) != 2 || list[0].Asset != "BTC" || list[0].AccountID != acct || list[1].Available != "1000000.00000000") {
				t.Errorf("%s balances snapshot %s", acct, f)
			}
			if f.Op == "orders" && len(list) != 0 {
				t.Errorf("%s orders snapshot %s", acct, f)
			}
		}
		clients[acct] = c
	}
	first := place(t, e.p, "alice", buy, "0.00100", "40000.00")
	place(t, e.p, "bob", buy, "0.00100", "40000.00")
	last := place(t, e.p, "alice", buy, "0.00200", "40000.00")

	type update struct {
		AccountID string `json:"accountId"`
		OrderID   string `json:"orderId"`
		Status    string `json:"status"`
		Asset     string `json:"asset"`
		Reason    string `json:"reason"`
	}
	c := clients["alice"]
	var orders []string
	holds := 0
	for len(orders) < 2 || holds < 2 {
		f := c.next()
		var u update
		if err := json.Unmarshal(f.Data, &u); err != nil || f.Type != "update" {
			t.Fatalf("alice got %s (%v)", f, err)
		}
		if u.AccountID != "alice" {
			t.Fatalf("alice got another account's %s", f)
		}
		switch f.Op {
		case "orders": // an order may change more than once (accepted by the engine)
			if len(orders) == 0 || orders[len(orders)-1] != u.OrderID {
				orders = append(orders, u.OrderID)
			}
		case "balances":
			if u.Asset != "USDT" || u.Reason != "hold" {
				t.Errorf("balance update %s", f)
			}
			holds++
		}
	}
	if orders[0] != first.GetOrderId() || orders[1] != last.GetOrderId() {
		t.Errorf("alice's order updates %v; want %s, %s", orders, first.GetOrderId(), last.GetOrderId())
	}
	// A new subscriber of the same account gets the working orders at once.
	c2 := e.dial(t)
	c2.send(`{"op":"auth","token":"alice"}`)
	c2.expect("authenticated", "", "")
	c2.send(`{"op":"subscribe","channels":[{"name":"orders"}]}`)
	c2.expect("subscribed", "", "")
	var working []struct {
		OrderID string `json:"orderId"`
		Status  string `json:"status"`
	}
	f := c2.next()
	if err := json.Unmarshal(f.Data, &working); err != nil || len(working) != 2 || working[0].Status != "new" {
		t.Errorf("alice's second connection: %s (%v); want both working orders", f, err)
	}
	// An admin has no trading account of its own.
	admin := e.dial(t)
	admin.send(`{"op":"auth","token":"admin-secret","req_id":"1"}`)
	admin.expect("authenticated", "", "1")
	admin.send(`{"op":"subscribe","channels":[{"name":"orders"}],"req_id":"2"}`)
	admin.expect("error", "permission_denied", "2")
}

// When the market data service goes away the hub reopens its stream with
// backoff, and subscribers get a fresh snapshot from which the deltas
// chain again.
func TestUpstreamReconnects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	fund(t, e.p, "maker")
	c := e.dial(t)
	c.send(`{"op":"subscribe","channels":[{"name":"book","symbols":["BTCUSDT"]}]}`)
	c.expect("subscribed", "", "")
	kept := &l2{}
	kept.apply(t, c.next())
	place(t, e.p, "maker", sell, "0.00100", "51000.00")
	kept.apply(t, c.next())

	e.p.KillMarketData()
	place(t, e.p, "maker", sell, "0.00100", "52000.00") // while it is down
	e.p.StartMarketData()
	f := c.next()
	if f.Op != "book" || f.Type != "snapshot" {
		t.Fatalf("after the restart %s; want a fresh snapshot", f)
	}
	kept.apply(t, f)
	place(t, e.p, "maker", sell, "0.00100", "53000.00")
	kept.apply(t, c.next())
	book, err := e.p.MarketData.GetBook(t.Context(), &marketdatav1.GetBookRequest{InstrumentId: "BTCUSDT"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kept.String(), fromSnapshot(book.GetBook()); got != want || kept.seq != book.GetBook().GetSeq() {
		t.Errorf("after the reconnect %s at %d; GetBook %s at %d", got, kept.seq, want, book.GetBook().GetSeq())
	}
}
