package book_test

import (
	"fmt"

	"github.com/tradex-mesh/tradex/services/matching/book"
)

// A resting sell, then a buy that crosses it: the buy trades at the maker's price and
// its rest joins the bids. Each event carries the L2 levels it changed.
func Example() {
	b := book.New()
	var events []book.Event
	for _, cmd := range []book.Command{
		{Kind: book.Submit, OrderID: "s1", Account: "alice", Side: book.Sell, Type: book.Limit, TimeInForce: book.GTC, Price: 5000050, Quantity: 3},
		{Kind: book.Submit, OrderID: "b1", Account: "bob", Side: book.Buy, Type: book.Limit, TimeInForce: book.GTC, Price: 5000100, Quantity: 5},
	} {
		events = b.Apply(cmd, events[:0])
		for i := range events {
			e := &events[i]
			switch e.Kind {
			case book.EventTrade:
				fmt.Printf("trade %d@%d %s<-%s taker left %d\n", e.Quantity, e.Price, e.OrderID, e.MakerOrderID, e.Remaining)
			default:
				fmt.Printf("%s %s %s %d@%d\n", e.Kind, e.OrderID, e.Side, e.Quantity, e.Price)
			}
			for _, ch := range e.BookChanges() {
				fmt.Printf("  level %s %d now %d\n", ch.Side, ch.Price, ch.Quantity)
			}
		}
	}
	bid, _ := b.BestBid()
	fmt.Printf("best bid %d x %d\n", bid.Price, bid.Quantity)
	// Output:
	// accepted s1 sell 3@5000050
	//   level sell 5000050 now 3
	// accepted b1 buy 5@5000100
	// trade 3@5000050 b1<-s1 taker left 2
	//   level sell 5000050 now 0
	//   level buy 5000100 now 2
	// best bid 5000100 x 2
}

// Cancelling an order that is not resting is an event, not an error.
func ExampleBook_Apply_cancel() {
	b := book.New()
	events := b.Apply(book.Command{Kind: book.Cancel, OrderID: "nope", Account: "alice"}, nil)
	fmt.Println(events[0].Kind, events[0].RejectReason)
	// Output: cancel-rejected order-not-found
}

// A snapshot restores into a book that behaves exactly like the original.
func ExampleRestore() {
	b := book.New()
	b.Apply(book.Command{Kind: book.Submit, OrderID: "b1", Account: "bob", Side: book.Buy, Type: book.Limit, Price: 99, Quantity: 4}, nil)
	data, err := b.Snapshot().MarshalBinary()
	if err != nil {
		fmt.Println(err)
		return
	}
	var s book.Snapshot
	if err := s.UnmarshalBinary(data); err != nil {
		fmt.Println(err)
		return
	}
	restored, err := book.Restore(s)
	if err != nil {
		fmt.Println(err)
		return
	}
	o, _ := restored.Order("b1")
	fmt.Println(o.ID, o.Side, o.Price, o.Remaining, restored.Check())
	// Output: b1 buy 99 4 <nil>
}
