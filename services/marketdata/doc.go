// Package marketdata is the market data service: for every instrument, the
// L2 book at full depth, the recent trades, candles and the rolling 24-hour
// ticker, all built from the matching engine's events.
//
// It serves tradex.marketdata.v1.MarketDataService (GetBook, ListTrades,
// GetTicker, ListTickers, ListCandles, and the server streams StreamBook,
// StreamTrades, StreamTicker) and consumes engine.event.v1 with an ordered
// consumer from the stream's start: its state is derived, kept in memory
// and rebuilt at every start (Run is ready once it has read what the stream
// held when it started). The pure part is services/marketdata/market; see
// docs/services/marketdata.md.
package marketdata
