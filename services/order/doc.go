// Package order is the order service: it validates orders against the
// instrument's rules, holds their funds in the wallet, submits them to the
// matching engine, and keeps every order's state from the engine's events.
//
// It serves tradex.order.v1.OrderService (PlaceOrder, CancelOrder,
// GetOrder, ListOrders, WatchOrders), produces engine.order.v1.<instrument>
// (OrderCommand submit and cancel) and consumes engine.event.v1 (durable
// consumer order-status, ordered per instrument).
//
// Orders live in the KV bucket Config.Bucket (the catalog store
// tradex_orders by default; key "o.<order id>", JSON),
// beside the client order id index ("c.<account>.<client order id>",
// created with Create semantics so that one of two concurrent requests
// wins, kept forever) and the last engine sequence applied per instrument
// ("s.<instrument>"). Every instance keeps an in-memory view of the orders,
// fed by a watch of the bucket, for ListOrders and WatchOrders. See
// docs/services/order.md.
package order
