// Package book is the order book of the matching engine: one Book per instrument, a
// single writer, price-time priority. It is pure: no I/O, no clock, no randomness that
// shows in its output, no transport types. The engine service decodes
// tradex.engine.v1.OrderCommand into a Command, calls Book.Apply, and encodes each Event
// as one tradex.engine.v1.EngineEvent; the enums share the proto's numbers.
//
// # Units
//
// Prices and quantities are int64 fixed-point integers that the caller converted from
// decimal strings with the instrument's scales: a price is a number of ticks of
// 10^-price_scale, a quantity a number of 10^-quantity_scale units. The book never sees a
// scale and never multiplies a price by a quantity (a trade's quote quantity is the
// caller's to compute, exactly). Order ids and accounts are the caller's strings; the
// book keeps the strings it is given, without copying them.
//
// # Priority
//
// Bids rest best (highest) price first, asks best (lowest) first; within a price level
// orders fill oldest first (FIFO by arrival). An incoming order trades with the best
// opposite level while its limit crosses it, always at the resting (maker) order's price.
//
// # Orders
//
//   - Limit GTC: trades what crosses, then the remainder rests.
//   - Limit IOC: trades what crosses, then the remainder is cancelled
//     (CancelIOCRemainder).
//   - FOK (limit or market): the book first checks, without changing anything, that the
//     whole quantity would trade; if so it trades, otherwise the order is accepted and
//     expires (ExpireFillOrKill) with no trade.
//   - Market: trades against the best asks (buy) or bids (sell) until its quantity, in
//     the base asset on both sides, is filled or the book side is empty; the remainder is
//     cancelled (CancelMarketNoLiquidity). A market order never rests. Its Price, if not
//     zero, is a protection bound: it trades at no worse price than that.
//   - Post-only (GTC limit only): rejected (RejectPostOnlyWouldTake) if it would trade on
//     arrival; otherwise it rests like any limit order.
//   - Cancel: removes a resting order if the command's account owns it; otherwise, or if
//     the order is not resting (unknown, filled, cancelled, expired), the cancel is
//     rejected with RejectOrderNotFound. Duplicate ids are detected among resting orders
//     only; the engine deduplicates commands by id before they reach the book.
//
// # Self-trade prevention
//
// When an incoming order reaches a resting order of the same account, the incoming
// order's SelfTradePrevention decides. The platform's rule, and the default (zero), is
// STPCancelTaker: the newest order loses, so the incoming order's remainder is cancelled
// (CancelSelfTrade) and the resting order stays; trades made before that stand.
// STPCancelMaker cancels the resting order and keeps matching; STPCancelBoth cancels
// both. A FOK order counts only the quantity it could trade before self-trade
// prevention would stop it.
//
// # Events
//
// Apply appends a command's events to a caller-owned slice, so a warm book allocates
// nothing per command. For a submit: EventAccepted or EventRejected; then the trades (and
// maker cancels under STPCancelMaker or STPCancelBoth) in the order they happened; then
// at most one EventCancelled or EventExpired for the remainder. For a cancel:
// EventCancelled or EventCancelRejected. Each event carries the L2 levels it changed
// with their new totals (EngineEvent.book_changes); a remainder that rests is reported
// on the command's last event.
//
// # State
//
// Book.Snapshot and Restore capture and rebuild the state; a restored book yields the
// same events as the original for the same commands. Book.Check verifies the
// invariants: never crossed at rest, level totals equal the sum of their orders, FIFO
// within a level, and the id index matching the queues.
//
// # Structure
//
// Each side is a skiplist of price levels (see ladder.go for why), each level an
// intrusive doubly linked FIFO list of pooled order nodes, and a map from order id to
// node serves cancels and duplicate checks. Freed nodes and levels are reused, so a book
// allocates only when it grows past its previous peak; WithCapacity and
// WithLevelCapacity size it up front. BENCHMARKS.md beside this file has the figures.
package book
