package order

import (
	"time"
)

// Side is buy or sell; the values are those of tradex.common.v1.Side.
type Side int32

// Sides.
const (
	SideBuy  Side = 1
	SideSell Side = 2
)

// Type is limit or market; the values are those of tradex.common.v1.OrderType.
type Type int32

// Order types.
const (
	TypeLimit  Type = 1
	TypeMarket Type = 2
)

// TimeInForce says how long an order works; the values are those of
// tradex.common.v1.TimeInForce.
type TimeInForce int32

// Times in force.
const (
	GTC TimeInForce = 1
	IOC TimeInForce = 2
	FOK TimeInForce = 3
)

// Status is where an order is in its life; the values are those of
// tradex.common.v1.OrderStatus.
type Status int32

// Statuses.
const (
	StatusNew             Status = 1
	StatusPartiallyFilled Status = 2
	StatusFilled          Status = 3
	StatusCancelled       Status = 4
	StatusRejected        Status = 5
	StatusExpired         Status = 6
)

// Final reports whether no engine event can change the order any more.
func (s Status) Final() bool { return s >= StatusFilled }

// Order is an order and its state. Prices are integers at PriceScale,
// quantities at QuantityScale, FilledNotional at their sum.
type Order struct {
	ID                  string      `json:"id"`
	ClientOrderID       string      `json:"client_order_id,omitempty"`
	Account             string      `json:"account"`
	Instrument          string      `json:"instrument"`
	Side                Side        `json:"side"`
	Type                Type        `json:"type"`
	TimeInForce         TimeInForce `json:"time_in_force"`
	PostOnly            bool        `json:"post_only,omitempty"`
	SelfTradePrevention int32       `json:"stp,omitempty"`
	PriceScale          int32       `json:"price_scale"`
	QuantityScale       int32       `json:"quantity_scale"`
	// Price is the limit price, or a market order's protection bound; 0 for
	// a market order without one.
	Price          int64  `json:"price,omitempty"`
	Quantity       int64  `json:"quantity"`
	Filled         int64  `json:"filled,omitempty"`
	Remaining      int64  `json:"remaining"`
	FilledNotional int64  `json:"filled_notional,omitempty"`
	Status         Status `json:"status"`
	RejectReason   int32  `json:"reject_reason,omitempty"`
	CancelReason   int32  `json:"cancel_reason,omitempty"`
	ExpireReason   int32  `json:"expire_reason,omitempty"`
	Message        string `json:"message,omitempty"`
	// HoldAsset and HoldAmount are the funds held in the wallet for the
	// order (hold id = order id), HoldAmount at HoldScale.
	HoldAsset  string `json:"hold_asset"`
	HoldAmount int64  `json:"hold_amount"`
	HoldScale  int32  `json:"hold_scale"`
	// MakerFeeRate and TakerFeeRate are the instrument's fee rates when
	// the order was placed, in millionths; the engine charges them.
	MakerFeeRate int64 `json:"maker_fee_rate,omitempty"`
	TakerFeeRate int64 `json:"taker_fee_rate,omitempty"`
	// A perpetual's order (docs/perpetuals.md): the leverage its margin was
	// held at (0 for spot), the margin (at HoldScale, part of HoldAmount),
	// whether it may only reduce the position, and the maintenance margin
	// rate (millionths) the engine liquidates at.
	Leverage        int32     `json:"leverage,omitempty"`
	Margin          int64     `json:"margin,omitempty"`
	ReduceOnly      bool      `json:"reduce_only,omitempty"`
	MaintenanceRate int64     `json:"maintenance_rate,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	// Revision grows with every change.
	Revision uint64 `json:"revision"`
	// EngineSequence is the instrument's engine event sequence last applied
	// to the order: an event at or below it is a repeat and changes nothing.
	EngineSequence uint64 `json:"engine_sequence,omitempty"`
	// Swept marks the record the sweeper wrote for an order whose submit
	// never reached the engine (sweeper.go).
	Swept bool `json:"swept,omitempty"`
}

// SameRequest reports whether p asks for the same order as o (a repeated
// client order id must repeat the request).
func (o Order) SameRequest(p Order) bool {
	return o.Account == p.Account && o.Instrument == p.Instrument && o.Side == p.Side &&
		o.Type == p.Type && o.TimeInForce == p.TimeInForce && o.PostOnly == p.PostOnly &&
		o.SelfTradePrevention == p.SelfTradePrevention && o.Price == p.Price && o.Quantity == p.Quantity &&
		o.ReduceOnly == p.ReduceOnly
}

// AveragePrice is the volume-weighted average price of the fills at
// PriceScale, rounded half up; ok is false while nothing filled.
func (o Order) AveragePrice() (price int64, ok bool) {
	if o.Filled <= 0 {
		return 0, false
	}
	q, r := o.FilledNotional/o.Filled, o.FilledNotional%o.Filled
	if 2*r >= o.Filled {
		q++
	}
	return q, true
}

// step applies one engine event at sequence seq: it reports false, changing
// nothing, for an event already applied.
func (o *Order) step(seq uint64, at time.Time) bool {
	if seq <= o.EngineSequence {
		return false
	}
	o.EngineSequence = seq
	o.UpdatedAt = at
	o.Revision++
	return true
}

// Accept records that the engine accepted the order (it stays NEW).
func (o *Order) Accept(seq uint64, at time.Time) bool { return o.step(seq, at) }

// Reject records that the engine refused the order.
func (o *Order) Reject(seq uint64, at time.Time, reason int32, msg string) bool {
	if !o.step(seq, at) {
		return false
	}
	o.Status, o.RejectReason, o.Message, o.Remaining = StatusRejected, reason, msg, 0
	return true
}

// Fill records a trade of qty for notional (at PriceScale+QuantityScale),
// after which remaining is left working.
func (o *Order) Fill(seq uint64, at time.Time, qty, notional, remaining int64) bool {
	if !o.step(seq, at) {
		return false
	}
	o.Filled += qty
	o.FilledNotional += notional
	o.Remaining = remaining
	if remaining == 0 {
		o.Status = StatusFilled
	} else {
		o.Status = StatusPartiallyFilled
	}
	return true
}

// Cancel records that the engine cancelled the order or its remainder.
func (o *Order) Cancel(seq uint64, at time.Time, reason int32) bool {
	if !o.step(seq, at) {
		return false
	}
	o.Status, o.CancelReason, o.Remaining = StatusCancelled, reason, 0
	return true
}

// Expire records that the order expired under its time in force.
func (o *Order) Expire(seq uint64, at time.Time, reason int32) bool {
	if !o.step(seq, at) {
		return false
	}
	o.Status, o.ExpireReason, o.Remaining = StatusExpired, reason, 0
	return true
}
