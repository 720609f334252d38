package book

import "strconv"

// EventKind says what an Event reports. Each kind is one case of EngineEvent's oneof.
type EventKind uint8

// Event kinds.
const (
	// EventAccepted: the order passed the book's checks and is working (OrderAccepted).
	EventAccepted EventKind = 1
	// EventRejected: the order was refused and nothing traded (OrderRejected).
	EventRejected EventKind = 2
	// EventTrade: the incoming order traded with a resting one (Trade).
	EventTrade EventKind = 3
	// EventCancelled: an order, or its remainder, was cancelled (OrderCancelled).
	EventCancelled EventKind = 4
	// EventExpired: a fill-or-kill order could not fill whole (OrderExpired).
	EventExpired EventKind = 5
	// EventCancelRejected: a cancel command changed nothing (CancelRejected).
	EventCancelRejected EventKind = 6
)

// String returns the kind's name in lower case ("accepted", "trade", ...).
func (k EventKind) String() string {
	switch k {
	case EventAccepted:
		return "accepted"
	case EventRejected:
		return "rejected"
	case EventTrade:
		return "trade"
	case EventCancelled:
		return "cancelled"
	case EventExpired:
		return "expired"
	case EventCancelRejected:
		return "cancel-rejected"
	}
	return "event(" + strconv.Itoa(int(k)) + ")"
}

// RejectReason says why an order or a cancel was refused. The values are those of
// tradex.common.v1.RejectReason; the book uses only the four below.
type RejectReason uint8

// Reject reasons.
const (
	// RejectInvalidOrder: a field is missing or out of range (see Event.Message).
	RejectInvalidOrder RejectReason = 1
	// RejectDuplicateOrder: an order with the same id is resting on the book.
	RejectDuplicateOrder RejectReason = 2
	// RejectPostOnlyWouldTake: a post-only order would have traded on arrival.
	RejectPostOnlyWouldTake RejectReason = 3
	// RejectOrderNotFound: a cancel named an order that is not resting (unknown, filled,
	// cancelled, expired) or that belongs to another account.
	RejectOrderNotFound RejectReason = 6
)

// String returns the reason in lower case with dashes ("post-only-would-take", ...).
func (r RejectReason) String() string {
	switch r {
	case RejectInvalidOrder:
		return "invalid-order"
	case RejectDuplicateOrder:
		return "duplicate-order"
	case RejectPostOnlyWouldTake:
		return "post-only-would-take"
	case RejectOrderNotFound:
		return "order-not-found"
	}
	return "reject(" + strconv.Itoa(int(r)) + ")"
}

// CancelReason says why an order, or its remainder, was cancelled. The values are those
// of tradex.common.v1.CancelReason.
type CancelReason uint8

// Cancel reasons.
const (
	// CancelUserRequested: the account owner asked for it.
	CancelUserRequested CancelReason = 1
	// CancelAdmin: an operator or an automated control asked for it.
	CancelAdmin CancelReason = 2
	// CancelSelfTrade: self-trade prevention; the order would have traded with an order
	// of the same account.
	CancelSelfTrade CancelReason = 3
	// CancelIOCRemainder: the part of an immediate-or-cancel limit order that could not
	// trade at once.
	CancelIOCRemainder CancelReason = 4
	// CancelMarketNoLiquidity: the part of a market order that found no opposite
	// liquidity (within its protection bound, if it has one).
	CancelMarketNoLiquidity CancelReason = 5
)

// String returns the reason in lower case with dashes ("self-trade", ...).
func (r CancelReason) String() string {
	switch r {
	case CancelUserRequested:
		return "user"
	case CancelAdmin:
		return "admin"
	case CancelSelfTrade:
		return "self-trade"
	case CancelIOCRemainder:
		return "ioc-remainder"
	case CancelMarketNoLiquidity:
		return "no-liquidity"
	}
	return "cancel(" + strconv.Itoa(int(r)) + ")"
}

// ExpireReason says why an order expired. The values are those of
// tradex.common.v1.ExpireReason.
type ExpireReason uint8

// ExpireFillOrKill says a fill-or-kill order could not fill its whole quantity at once.
const ExpireFillOrKill ExpireReason = 1

// LevelChange is the new total of one price level (BookLevelChange).
type LevelChange struct {
	// Side is Buy for a bid level, Sell for an ask level.
	Side Side
	// Price is the level's price in ticks.
	Price int64
	// Quantity is the level's total resting quantity after the event; 0 means the level
	// is gone.
	Quantity int64
}

// Event is one effect of one command: one EngineEvent. Apply appends, per command and in
// this order: for a submit, EventAccepted or EventRejected, then its trades (and, under
// STPCancelMaker or STPCancelBoth, the cancels of the resting orders it met), then
// possibly EventCancelled or EventExpired for the incoming order's remainder; for a
// cancel, EventCancelled or EventCancelRejected.
//
// Every field the engine publishes is here, so it translates an Event to an EngineEvent
// without looking anything up in the book. Which fields are set depends on Kind:
//
//   - every kind: OrderID, Account and Side of the order the event is about (for a trade,
//     the incoming taker order; for a cancel command, the order and account the command
//     named).
//   - Accepted, Rejected, Cancelled, Expired: Type, TimeInForce, PostOnly and Price (the
//     limit price, or a market order's protection bound, 0 if none; the engine writes an
//     empty price for Type == Market).
//   - Accepted, Rejected: Quantity is the order's quantity.
//   - Trade: Price is the maker's price, Quantity the quantity traded, Remaining what is
//     left of the taker, MakerOrderID, MakerAccount and MakerRemaining the same for the
//     maker (whose side is Side.Opposite()).
//   - Cancelled, Expired: Quantity is the quantity cancelled or expired (the remainder).
//   - Rejected, CancelRejected: RejectReason and a static Message for humans.
//   - Cancelled: CancelReason. Expired: ExpireReason.
//
// Changes[:NumChanges] are the L2 levels the event changed (EngineEvent.book_changes): a
// trade or a cancel changes the level of the order it removed quantity from; the last
// event of a submit whose remainder rests also carries the new total of the level it
// joined. So NumChanges is at most 2, and the two are on different sides.
type Event struct {
	// Kind says which of the fields below are set.
	Kind EventKind
	// Side is the side of the order the event is about (the taker's for a trade).
	Side Side
	// Type is the order's type (Accepted, Rejected, Trade, Cancelled, Expired).
	Type OrderType
	// TimeInForce is the order's time in force with zero resolved (GTC for a limit
	// order, IOC for a market order).
	TimeInForce TimeInForce
	// PostOnly is the order's post-only flag.
	PostOnly bool
	// RejectReason is set for Rejected and CancelRejected.
	RejectReason RejectReason
	// CancelReason is set for Cancelled.
	CancelReason CancelReason
	// ExpireReason is set for Expired.
	ExpireReason ExpireReason
	// NumChanges is how many of Changes are set (0, 1 or 2).
	NumChanges uint8
	// OrderID is the order the event is about (the taker for a trade).
	OrderID string
	// Account owns OrderID (for a cancel command, the account it came from).
	Account string
	// Price is the limit price (see the kinds above); for a trade, the maker's price.
	Price int64
	// Quantity is the order's quantity (Accepted, Rejected), the traded quantity (Trade)
	// or the remainder cancelled or expired (Cancelled, Expired).
	Quantity int64
	// Remaining is what is left of the taker after a trade.
	Remaining int64
	// MakerOrderID is the resting order of a trade.
	MakerOrderID string
	// MakerAccount owns MakerOrderID.
	MakerAccount string
	// MakerRemaining is what is left of the maker after a trade; 0 when it is filled.
	MakerRemaining int64
	// Message is a static, human-readable detail of a rejection.
	Message string
	// Changes holds the L2 levels the event changed; only Changes[:NumChanges] are set.
	Changes [2]LevelChange
}

// BookChanges returns the L2 levels the event changed, Changes[:NumChanges]. The slice
// aliases e.
func (e *Event) BookChanges() []LevelChange { return e.Changes[:e.NumChanges] }

// addChange records a level's new total on e.
func (e *Event) addChange(side Side, price, total int64) {
	e.Changes[e.NumChanges] = LevelChange{Side: side, Price: price, Quantity: total}
	e.NumChanges++
}
