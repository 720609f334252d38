package order

import (
	"errors"
	"fmt"
	"time"

	"github.com/tradex-mesh/tradex/streams"
)

// maxApplyBatch keeps a run's write within an atomic batch (1,000
// messages): an event changes at most two orders, and the position is one
// more key.
const maxApplyBatch = 400

// Config configures the order service.
type Config struct {
	// Bucket is the KV bucket of orders, the client order id index and the
	// engine sequences applied per instrument: a KV store of the streams
	// catalog (its replicas are the streams client's).
	Bucket string
	// ConsumerName is the durable consumer of engine.event.v1.
	ConsumerName string
	// Concurrency is how many instruments' events are applied in parallel.
	Concurrency int
	// ApplyBatch is how many engine events of an instrument are applied to
	// the orders in one write at most: the delivered one and those already
	// stored after it (1..maxApplyBatch).
	ApplyBatch int
	// AckWait is how long the broker waits for an engine event to be
	// applied before it redelivers it (to this or another instance).
	AckWait time.Duration
	// CleanupTimeout bounds what PlaceOrder does after a failure once the
	// caller may be gone (releasing a hold, freeing a client order id).
	CleanupTimeout time.Duration
	// MaxBacklog is how far settlement may fall behind (Deps.Backlog: the
	// messages the engine, wallet and order-state consumers have not
	// acknowledged) before PlaceOrder answers Unavailable with a
	// Retry-After, instead of letting the backlog grow; 0 turns it off.
	MaxBacklog uint64
	// BacklogEvery is how often the backlog is read.
	BacklogEvery time.Duration
	// SweepEvery is how often the sweeper looks for holds whose order never
	// reached the engine (sweeper.go); 0 turns it off. SweepAfter is how old
	// a hold must be to be looked at; SweepGrace how long a swept order's
	// record stands before its hold is released (longer than any PlaceOrder
	// can take).
	SweepEvery, SweepAfter, SweepGrace time.Duration
	// FundingEvery is how often the service looks for perpetuals whose
	// funding interval ended, to publish their funding ticks
	// (funding.go); 0 turns funding off.
	FundingEvery time.Duration
	// WatchBuffer is how many updates a WatchOrders stream may fall behind
	// before it is ended (the client reconnects and gets a fresh snapshot).
	WatchBuffer int
}

// Default is the configuration of a single node.
func Default() Config {
	return Config{
		Bucket:         streams.StoreOrders,
		ConsumerName:   "order-status",
		Concurrency:    8,
		ApplyBatch:     100,
		AckWait:        30 * time.Second,
		CleanupTimeout: 10 * time.Second,
		WatchBuffer:    1024,
		MaxBacklog:     5_000,
		BacklogEvery:   200 * time.Millisecond,
		SweepEvery:     time.Minute,
		SweepAfter:     5 * time.Minute,
		SweepGrace:     time.Minute,
		FundingEvery:   time.Second,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Bucket == "" || c.ConsumerName == "":
		return errors.New("order: Bucket and ConsumerName are required")
	case c.Concurrency < 1 || c.WatchBuffer < 1 || c.CleanupTimeout <= 0 || c.AckWait <= 0:
		return errors.New("order: Concurrency, WatchBuffer >= 1, CleanupTimeout and AckWait > 0 are required")
	case c.MaxBacklog > 0 && c.BacklogEvery <= 0:
		return errors.New("order: BacklogEvery must be positive when MaxBacklog is set")
	case c.FundingEvery < 0:
		return errors.New("order: FundingEvery must not be negative")
	case c.SweepEvery > 0 && (c.SweepAfter < 0 || c.SweepGrace < 0):
		return errors.New("order: SweepAfter and SweepGrace must not be negative")
	case c.ApplyBatch < 1 || c.ApplyBatch > maxApplyBatch:
		return fmt.Errorf("order: ApplyBatch %d not in 1..%d", c.ApplyBatch, maxApplyBatch)
	}
	return nil
}
