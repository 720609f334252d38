package marketdata

import (
	"errors"

	"github.com/tradex-mesh/tradex/services/marketdata/market"
	"github.com/tradex-mesh/tradex/streams"
)

// Config configures the market data service.
type Config struct {
	// Market sizes what is kept per instrument (recent trades, 1-minute
	// candles).
	Market market.Config
	// StreamBuffer is how many updates a server stream may fall behind
	// before it is ended with ResourceExhausted (the client resubscribes
	// and gets a fresh snapshot).
	StreamBuffer int
	// MaxDepth bounds the depth a request may ask for (0 there: every
	// level, up to MaxDepth).
	MaxDepth int
	// MaxTrades bounds ListTrades' limit (0 there: 100).
	MaxTrades int
	// MaxCandles bounds ListCandles' limit (0 there: 500).
	MaxCandles int
	// SnapshotBucket is the object store of state snapshots: a catalog
	// store (default streams.StoreMarketDataSnapshot).
	SnapshotBucket string
	// SnapshotEvery writes a snapshot of every instrument after this many
	// engine events since the last one, so that a start reads only the
	// events after it; 0 disables snapshots (every start replays the whole
	// engine stream).
	SnapshotEvery int
}

// Default keeps 1000 trades and a week of 1-minute candles per instrument,
// and snapshots every 10,000 engine events.
func Default() Config {
	return Config{StreamBuffer: 1024, MaxDepth: 5000, MaxTrades: 1000, MaxCandles: 1500,
		SnapshotBucket: streams.StoreMarketDataSnapshot, SnapshotEvery: 10000}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.StreamBuffer < 1 || c.MaxDepth < 1 || c.MaxTrades < 1 || c.MaxCandles < 1:
		return errors.New("marketdata: StreamBuffer, MaxDepth, MaxTrades and MaxCandles must be at least 1")
	case c.SnapshotEvery < 0:
		return errors.New("marketdata: SnapshotEvery must not be negative")
	case c.SnapshotEvery > 0 && c.SnapshotBucket == "":
		return errors.New("marketdata: SnapshotBucket is required with SnapshotEvery")
	}
	return nil
}
