package matching

import (
	"errors"
	"fmt"
	"time"

	"github.com/tradex-mesh/tradex/streams"
)

// Config configures the matching service.
type Config struct {
	// Instruments restricts the instance to these instruments (its shard). Empty serves
	// every instrument with one durable consumer (ConsumerName); a non-empty list uses
	// one durable consumer per instrument, "<ConsumerName>-<instrument>", so an
	// instrument can move between shards and keep its position. The shards of one
	// deployment must be disjoint, and an "all" instance must not run beside them: each
	// instrument has exactly one writer.
	Instruments []string
	// ConsumerName is the durable consumer name (or prefix, with Instruments).
	ConsumerName string
	// Concurrency is how many instruments an "all" instance matches in parallel (one
	// command at a time per instrument).
	Concurrency int
	// BatchCommands is how many commands of an instrument, already stored on
	// engine.order.v1, the engine executes together and publishes in one atomic batch
	// (one fsync) when their events fit (at most 1000).
	BatchCommands int
	// SnapshotBucket is the KV bucket of book snapshots, keyed by instrument: a store of
	// the client's catalog (its replicas come from the client).
	SnapshotBucket string
	// SnapshotInterval is how many commands of an instrument pass between two snapshots
	// of its book; a restart replays at most that many commands per instrument.
	SnapshotInterval int
	// AckWait is how long the broker waits for a command's ack before redelivering it.
	AckWait time.Duration
	// MaxDeliver bounds attempts per command. A command that exhausts it is
	// dead-lettered and the instrument moves on without it while a restart would replay
	// it, so keep it high: commands fail only while the broker is unavailable.
	MaxDeliver int
	// RememberCommands is how long (in the commands' stream time) the engine
	// remembers the id of every submit it executed, so that one stored again
	// after the stream's duplicate window (2 minutes) is rejected as a
	// duplicate instead of executed twice. It is kept in the snapshots.
	RememberCommands time.Duration
	// ShutdownTimeout bounds how long Run waits, once its ctx ends, for the commands in
	// flight to finish; what is cut short is redelivered to the next instance.
	ShutdownTimeout time.Duration
}

// Default is the configuration of a single instance serving every instrument.
func Default() Config {
	return Config{
		ConsumerName:     "matching-engine",
		Concurrency:      16,
		BatchCommands:    200,
		SnapshotBucket:   streams.StoreMatchingSnapshots,
		SnapshotInterval: 1000,
		AckWait:          30 * time.Second,
		MaxDeliver:       1_000_000,
		ShutdownTimeout:  10 * time.Second,
		RememberCommands: 24 * time.Hour,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.ConsumerName == "" || c.SnapshotBucket == "":
		return errors.New("matching config: consumer name and snapshot bucket are required")
	case c.Concurrency < 1 || c.BatchCommands < 1 || c.SnapshotInterval < 1 || c.MaxDeliver < 1:
		return errors.New("matching config: concurrency, batch commands, snapshot interval and max deliver must be positive")
	case c.AckWait <= 0 || c.ShutdownTimeout <= 0 || c.RememberCommands <= 0:
		return errors.New("matching config: ack wait, shutdown timeout and remember commands must be positive")
	}
	seen := make(map[string]bool, len(c.Instruments))
	for _, inst := range c.Instruments {
		if err := streams.ValidateKey(inst); err != nil {
			return fmt.Errorf("matching config: instrument %q: %w", inst, err)
		}
		if seen[inst] {
			return fmt.Errorf("matching config: instrument %s listed twice", inst)
		}
		seen[inst] = true
	}
	return nil
}
