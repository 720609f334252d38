package wallet

import (
	"errors"
	"fmt"
	"time"

	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/streams"
)

// maxSettleBatch keeps a settlement's journal write within an atomic
// batch (1,000 messages): a trade makes at most nine entries (six, and
// three for fees).
const maxSettleBatch = 110

// Config configures the wallet service.
type Config struct {
	// Scales is the fixed-point scale of each asset: an amount is an int64
	// count of 10^-scale units. An asset's scale must never change once it
	// has journal entries (they are read back at this scale).
	Scales map[string]int32
	// DefaultScale is the scale of assets not in Scales (8: large enough for
	// every quantity and notional of the demo instruments).
	DefaultScale int32
	// SnapshotBucket is the object store of state snapshots; it must name
	// an object store of the client's catalog (its replicas come from the
	// client).
	SnapshotBucket string
	// SnapshotEvery writes a snapshot after this many journal entries since
	// the last one; 0 disables snapshots.
	SnapshotEvery int
	// RecordHorizon is how long the idempotency records (transfers,
	// partial releases) and closed holds are kept: a snapshot leaves out
	// those last changed longer ago, so the state does not grow with
	// history. A request repeated after the horizon is taken as a new one.
	RecordHorizon time.Duration
	// ConsumerName is the durable consumer of engine.event.v1.
	ConsumerName string
	// Concurrency is how many instruments are settled in parallel.
	Concurrency int
	// SettleBatch is how many engine events of an instrument are settled
	// in one journal write at most: the delivered one and those already
	// stored after it (1..maxSettleBatch).
	SettleBatch int
	// AckWait is how long the broker waits for the settlement of an engine
	// event before it redelivers it (to this or another instance).
	AckWait time.Duration
	// WriteAttempts bounds the re-read-and-retry loop of a write that meets
	// a concurrent writer; after it the write fails with Aborted.
	WriteAttempts int
	// WriteTimeout bounds one journal write (it does not end with the
	// caller's context: a started write is finished).
	WriteTimeout time.Duration
	// FeeAccountPrefix names the accounts that receive trade fees, one per
	// instrument: the prefix and the instrument ("fees-BTCUSDT"), so that
	// the settlements of different instruments do not write one account.
	FeeAccountPrefix string
	// MarginAccountPrefix names the accounts that hold a perpetual's
	// margins, one per instrument ("margin-BTCUSDT-PERP",
	// docs/perpetuals.md).
	MarginAccountPrefix string
	// InsuranceAccount is the insurance fund's account: the matching
	// engine's (matching.InsuranceAccount). It pays bankrupt positions'
	// shortfalls; it must be funded by deposits before it can.
	InsuranceAccount string
}

// Default is the configuration of a single node: scale 8 for every asset,
// a snapshot every 10,000 entries in tradex_wallet_snapshots.
func Default() Config {
	return Config{
		DefaultScale:   8,
		SnapshotBucket: streams.StoreWalletSnapshots,
		SnapshotEvery:  10_000,
		RecordHorizon:  7 * 24 * time.Hour,
		ConsumerName:   "wallet-settlement",
		Concurrency:    8,
		SettleBatch:    100,
		AckWait:        30 * time.Second,
		WriteAttempts:  10,
		WriteTimeout:   10 * time.Second,

		FeeAccountPrefix:    "fees-",
		MarginAccountPrefix: "margin-",
		InsuranceAccount:    "insurance-fund",
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.DefaultScale < 0 || c.DefaultScale > decimal.MaxScale {
		errs = append(errs, fmt.Errorf("wallet: DefaultScale %d not in 0..%d", c.DefaultScale, decimal.MaxScale))
	}
	for a, s := range c.Scales {
		if s < 0 || s > decimal.MaxScale {
			errs = append(errs, fmt.Errorf("wallet: scale of %s %d not in 0..%d", a, s, decimal.MaxScale))
		}
	}
	if c.SnapshotBucket == "" {
		errs = append(errs, errors.New("wallet: SnapshotBucket is required"))
	}
	if c.SnapshotEvery < 0 || c.Concurrency < 1 || c.WriteAttempts < 1 || c.WriteTimeout <= 0 || c.AckWait <= 0 || c.RecordHorizon <= 0 {
		errs = append(errs, errors.New("wallet: SnapshotEvery >= 0, Concurrency, WriteAttempts >= 1, WriteTimeout, AckWait and RecordHorizon > 0 are required"))
	}
	if c.SettleBatch < 1 || c.SettleBatch > maxSettleBatch {
		errs = append(errs, fmt.Errorf("wallet: SettleBatch %d not in 1..%d", c.SettleBatch, maxSettleBatch))
	}
	if c.ConsumerName == "" {
		errs = append(errs, errors.New("wallet: ConsumerName is required"))
	}
	for name, prefix := range map[string]string{"FeeAccountPrefix": c.FeeAccountPrefix, "MarginAccountPrefix": c.MarginAccountPrefix} {
		if prefix == "" || streams.ValidateKey(prefix+"X") != nil {
			errs = append(errs, fmt.Errorf("wallet: %s %q: want the start of an account id", name, prefix))
		}
	}
	if streams.ValidateKey(c.InsuranceAccount) != nil {
		errs = append(errs, fmt.Errorf("wallet: InsuranceAccount %q: want an account id", c.InsuranceAccount))
	}
	return errors.Join(errs...)
}

// scale returns the fixed-point scale of asset.
func (c Config) scale(asset string) int32 {
	if s, ok := c.Scales[asset]; ok {
		return s
	}
	return c.DefaultScale
}
