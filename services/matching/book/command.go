package book

import "strconv"

// Side is the direction of an order. The values are those of tradex.common.v1.Side, so
// the engine converts with a plain conversion.
type Side uint8

// Sides.
const (
	// Buy takes asks and rests as a bid.
	Buy Side = 1
	// Sell takes bids and rests as an ask.
	Sell Side = 2
)

// String returns "buy", "sell" or "side(N)".
func (s Side) String() string {
	switch s {
	case Buy:
		return "buy"
	case Sell:
		return "sell"
	}
	return "side(" + strconv.Itoa(int(s)) + ")"
}

// Opposite returns the side an order of side s trades against.
func (s Side) Opposite() Side { return 3 - s }

func (s Side) valid() bool { return s == Buy || s == Sell }

// OrderType says how an order is priced. The values are those of
// tradex.common.v1.OrderType.
type OrderType uint8

// Order types.
const (
	// Limit trades at its price or better and may rest.
	Limit OrderType = 1
	// Market trades against the best prices available and never rests.
	Market OrderType = 2
)

// String returns "limit", "market" or "type(N)".
func (t OrderType) String() string {
	switch t {
	case Limit:
		return "limit"
	case Market:
		return "market"
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// TimeInForce says how long an order stays working. The values are those of
// tradex.common.v1.TimeInForce; zero means GTC for a limit order and IOC for a market
// order.
type TimeInForce uint8

// Times in force.
const (
	// GTC (good till cancelled): the rest of a limit order stays on the book.
	GTC TimeInForce = 1
	// IOC (immediate or cancel): trade what can trade now, cancel the rest.
	IOC TimeInForce = 2
	// FOK (fill or kill): trade the whole quantity now or nothing.
	FOK TimeInForce = 3
)

// String returns "gtc", "ioc", "fok" or "tif(N)".
func (f TimeInForce) String() string {
	switch f {
	case GTC:
		return "gtc"
	case IOC:
		return "ioc"
	case FOK:
		return "fok"
	}
	return "tif(" + strconv.Itoa(int(f)) + ")"
}

// SelfTradePrevention says what happens when an incoming order would trade with a resting
// order of the same account. The values are those of tradex.common.v1.SelfTradePrevention;
// zero means STPCancelTaker, the platform's rule.
type SelfTradePrevention uint8

// Self-trade prevention modes.
const (
	// STPCancelTaker cancels the rest of the incoming order; the resting order stays.
	STPCancelTaker SelfTradePrevention = 1
	// STPCancelMaker cancels the resting order and keeps matching the incoming one.
	STPCancelMaker SelfTradePrevention = 2
	// STPCancelBoth cancels the resting order and the rest of the incoming one.
	STPCancelBoth SelfTradePrevention = 3
)

// String returns "taker", "maker", "both" or "stp(N)"; zero is "taker".
func (p SelfTradePrevention) String() string {
	switch p {
	case 0, STPCancelTaker:
		return "taker"
	case STPCancelMaker:
		return "maker"
	case STPCancelBoth:
		return "both"
	}
	return "stp(" + strconv.Itoa(int(p)) + ")"
}

// CommandKind says what a Command does.
type CommandKind uint8

// Command kinds.
const (
	// Submit adds an order.
	Submit CommandKind = 1
	// Cancel removes a resting order.
	Cancel CommandKind = 2
)

// Command is one instruction to a Book: OrderCommand with its decimal strings already
// turned into integers by the caller.
//
// For Submit every field but CancelReason is used. For Cancel only OrderID, Account and
// CancelReason are.
type Command struct {
	// Kind is Submit or Cancel.
	Kind CommandKind
	// OrderID is the order's id, unique across the platform. The book keeps the string
	// itself (no copy) for as long as the order rests.
	OrderID string
	// Account owns the order; it decides self-trade prevention and who may cancel.
	Account string
	// Side is Buy or Sell.
	Side Side
	// Type is Limit or Market.
	Type OrderType
	// TimeInForce is GTC, IOC or FOK; zero is GTC for Limit and IOC for Market. A market
	// order never rests: GTC and IOC both cancel what it cannot trade at once.
	TimeInForce TimeInForce
	// PostOnly rejects the order instead of letting it trade on arrival. Only a GTC limit
	// order may be post-only.
	PostOnly bool
	// Price is the limit price in ticks (10^-price_scale), > 0 for a limit order. For a
	// market order it is an optional protection bound: 0 means none, otherwise the order
	// trades at no worse price than this.
	Price int64
	// Quantity is the order's quantity in lots (10^-quantity_scale), > 0; for a market
	// buy too it is in the base asset.
	Quantity int64
	// SelfTradePrevention is the incoming order's rule; zero means STPCancelTaker.
	SelfTradePrevention SelfTradePrevention
	// CancelReason is copied into the Cancelled event of a Cancel command:
	// CancelUserRequested (also when zero) or CancelAdmin.
	CancelReason CancelReason
}
