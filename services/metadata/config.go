package metadata

import (
	"errors"
	"fmt"
	"time"

	"github.com/tradex-mesh/tradex/streams"
)

// Config configures the metadata service.
type Config struct {
	// InstrumentsBucket is the KV bucket of instruments, keyed by symbol:
	// a KV store of the Streams client's catalog (its history and replicas
	// come from there).
	InstrumentsBucket string
	// ConfigBucket is the KV bucket of runtime configuration, keyed by key:
	// a KV store of the catalog, like InstrumentsBucket.
	ConfigBucket string
	// Seed lists the instruments that must exist: Run creates those that
	// are missing (and changes none that exist). Empty seeds nothing.
	Seed []InstrumentSpec
	// Actor names the service in the events it publishes on its own
	// behalf (seeding, recovery) and in requests that name no actor.
	Actor string
	// PublishTimeout bounds the publish of an event after its change is
	// stored. The publish does not end when the caller goes away: a change
	// is announced even if its client hangs up.
	PublishTimeout time.Duration
	// RepairInterval is how often Run checks that the latest change of
	// every instrument and configuration key has been published, and
	// publishes what is missing (see doc.go). Zero checks only at start
	// and after a failed publish.
	RepairInterval time.Duration
	// MaxConfigValueBytes bounds a configuration value.
	MaxConfigValueBytes int
}

// Default is the standard configuration: the catalog's buckets
// streams.StoreInstruments and streams.StoreConfig, and the demo
// instruments BTCUSDT, ETHUSDT and BTCUSDT-PERP.
func Default() Config {
	return Config{
		InstrumentsBucket:   streams.StoreInstruments,
		ConfigBucket:        streams.StoreConfig,
		Seed:                DefaultSeed(),
		Actor:               "metadata",
		PublishTimeout:      10 * time.Second,
		RepairInterval:      time.Minute,
		MaxConfigValueBytes: 64 << 10,
	}
}

// DefaultSeed is the demo instruments: BTCUSDT and ETHUSDT (spot, quoted in
// USDT) and BTCUSDT-PERP (perpetual: up to 50x, 0.5% maintenance margin,
// funding every 8 hours clamped to 0.75%, indexed on BTCUSDT), with a
// minimum order value of 5 USDT and no fees.
func DefaultSeed() []InstrumentSpec {
	return []InstrumentSpec{
		{
			Symbol: "BTCUSDT", Kind: KindSpot, BaseAsset: "BTC", QuoteAsset: "USDT",
			TickSize: "0.01", LotSize: "0.00001", MinQuantity: "0.00001", MinNotional: "5",
			PriceScale: 2, QuantityScale: 5,
		},
		{
			Symbol: "ETHUSDT", Kind: KindSpot, BaseAsset: "ETH", QuoteAsset: "USDT",
			TickSize: "0.01", LotSize: "0.0001", MinQuantity: "0.0001", MinNotional: "5",
			PriceScale: 2, QuantityScale: 4,
		},
		{
			Symbol: "BTCUSDT-PERP", Kind: KindPerpetual, BaseAsset: "BTC", QuoteAsset: "USDT",
			TickSize: "0.1", LotSize: "0.001", MinQuantity: "0.001", MinNotional: "5",
			PriceScale: 1, QuantityScale: 3,
			Perpetual: &PerpetualRules{
				MaxLeverage: 50, MaintenanceMarginRate: "0.005", FundingInterval: 8 * time.Hour,
				FundingRateClamp: "0.0075", ImpactNotional: "10000", IndexSymbol: "BTCUSDT",
			},
		},
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.InstrumentsBucket == "" || c.ConfigBucket == "":
		return errors.New("metadata config: bucket names are required")
	case c.InstrumentsBucket == c.ConfigBucket:
		return fmt.Errorf("metadata config: instruments and config share bucket %q", c.ConfigBucket)
	case c.Actor == "":
		return errors.New("metadata config: actor is required")
	case c.PublishTimeout <= 0:
		return fmt.Errorf("metadata config: publish timeout %s: want more than zero", c.PublishTimeout)
	case c.RepairInterval < 0:
		return fmt.Errorf("metadata config: repair interval %s: want zero or more", c.RepairInterval)
	case c.MaxConfigValueBytes < 1:
		return fmt.Errorf("metadata config: max config value bytes %d: want at least 1", c.MaxConfigValueBytes)
	}
	seen := make(map[string]bool, len(c.Seed))
	for _, spec := range c.Seed {
		if _, err := NewInstrument(spec, time.Time{}); err != nil {
			return fmt.Errorf("metadata config: seed %s: %w", spec.Symbol, err)
		}
		if seen[spec.Symbol] {
			return fmt.Errorf("metadata config: seed %s listed twice", spec.Symbol)
		}
		seen[spec.Symbol] = true
	}
	return nil
}
