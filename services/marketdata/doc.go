// Package marketdata is the market data service: for every instrument, the
// L2 book at full depth, the recent trades, candles and the rolling 24-hour
// ticker, all built from the matching engine's events.
//
// It serves tradex.marketdata.v1.MarketDataService (GetBook, ListTrades,
// GetTicker, ListTickers, ListCandles, and the server streams StreamBook,
// StreamTrades, StreamTicker) and follows engine.event.v1 in order
// (streams.Client.Follow) from the stream's start or its latest snapshot:
// its state is derived, kept in memory and rebuilt at every start and
// after a gap (Run is ready once it has read what the stream held when it
// started; Health says how far a rebuild got). The pure part is
// services/marketdata/market; see docs/services/marketdata.md.
package marketdata
