// Package wsfeed is the gateway's WebSocket API, mounted at /ws: live
// market data (book, trades, ticker, candles) and, after an auth frame,
// the account's own orders and balances.
//
// The gateway mounts it and stops it with the app:
//
//	feed, err := wsfeed.New(wsfeed.Default(), wsfeed.Deps{
//		MarketData: mdClient, Orders: orderClient, Wallet: walletClient,
//		Verifier: verifier, Logger: logger,
//	})
//	app.Get("/ws", feed.Handler())
//	...
//	_ = feed.Shutdown(ctx) // before app.ShutdownWithContext: hijacked connections are the feed's
//
// # Protocol
//
// Every frame is a JSON text frame with an "op". The client sends
//
//	{"op":"subscribe","channels":[{"name":"book","symbols":["BTCUSDT-PERP"]}],"req_id":"1"}
//	{"op":"unsubscribe","channels":[{"name":"book","symbols":["BTCUSDT-PERP"]}]}
//	{"op":"auth","token":"<token>","req_id":"2"}
//	{"op":"ping","req_id":"3"}
//
// (req_id optional, a string of at most 64 bytes or an integer, echoed in
// the answer). Channels: book (optional "depth": snapshot levels a side,
// 0 or absent for all), trades, ticker, candles (optional "interval":
// 1m, 5m, 15m, 1h, 4h, 1d or 1w; default 1m), mark (a perpetual's mark
// price), and after auth orders and
// balances (no symbols: the principal's account). The server answers
// {"op":"subscribed"|"unsubscribed","channels":[...]},
// {"op":"authenticated","account":...}, {"op":"pong","time":...}, or
// {"op":"error","code":...,"message":...,"req_id":...} where code is the
// Connect code name (invalid_argument, not_found, unauthenticated,
// permission_denied, failed_precondition, resource_exhausted,
// unavailable). Data frames are
//
//	{"op":"book","type":"snapshot"|"delta","symbol":"BTCUSDT","data":{...}}
//	{"op":"trades"|"ticker"|"mark","type":"update","symbol":...,"data":{...}}
//	{"op":"candles","type":"update","symbol":...,"interval":"1m","data":{...}}
//	{"op":"orders"|"balances","type":"snapshot","data":[...]} then "type":"update"
//
// with data in the REST JSON dialect (package gateway/wire). A book delta
// carries seq and prevSeq: a client whose last applied seq differs from
// prevSeq missed one and subscribes again (a fresh snapshot). Heartbeats
// ({"op":"heartbeat","counter":N,"time":...}) come every
// Config.HeartbeatInterval. docs/api-websocket.md is the full reference.
//
// # Fan-out
//
// A hub keeps one upstream Connect stream per channel and symbol (per
// account for private channels), shared by every connection of the
// process: started by the first subscriber, stopped when the last one
// leaves, reopened with backoff when it ends (subscribers then get a fresh
// snapshot). For books it keeps the current book, so a new subscriber gets
// its snapshot from the hub at once, at the right seq, followed by the
// deltas after it. Every frame is encoded once and written to every
// subscriber as the same prepared message. Each connection has a bounded
// send queue drained by its own writer goroutine: the fan-out only ever
// appends to queues, and a connection whose queue is full is dropped (a
// slow consumer) rather than waited for.
package wsfeed
