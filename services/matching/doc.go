// Package matching is the matching engine service: the single writer of the order book
// of each instrument it serves. It has no RPC service.
//
// It consumes tradex.engine.v1.OrderCommand from engine.order.v1 (key: instrument) in
// stream order per instrument, turns each command's decimal strings into the book's
// integers with the scales the submit carries, applies it to the instrument's
// book.Book, and publishes the book's events as tradex.engine.v1.EngineEvent on
// engine.event.v1 (key: instrument). A command the engine cannot execute (bad decimal,
// scale, enum, instrument) becomes a rejection with REJECT_REASON_INVALID_ORDER.
//
// # Ids and order
//
// The events of the command at stream sequence S get event_id "<instrument>:<S>:<i>"
// (also their Nats-Msg-Id; a trade's trade_id is the same), input_sequence S,
// input_index i, engine_time the command's stream time, and the instrument's gapless
// output sequence. Nothing depends on the wall clock, so a replay of the same commands
// gives byte-identical events.
//
// # Exactly-once output
//
// The events of a command are published in one JetStream atomic batch (all or none),
// together with those of the instrument's following commands already stored (up to
// Config.BatchCommands, at most 1000 events a batch: one fsync for all), and the
// command is acknowledged (AckSync) only after its batch is stored. The engine reads
// the commands it executes from the stream, in stream order, so redeliveries out of
// order change nothing. On an
// instrument's first command after a start, or after a failed publish, the engine
// recovers it: it reads the last event of engine.event.v1.<instrument> (its
// input_sequence and sequence), loads the latest snapshot at or before that command
// from the KV bucket Config.SnapshotBucket, replays the commands in between through the
// book without publishing, checks that the replay reproduced that last event (id and
// sequence, else ErrDiverged), and publishes only what follows. A redelivered command
// whose events are stored is acknowledged without publishing. Snapshots are written
// every Config.SnapshotInterval commands of an instrument, after its events are stored.
//
// # Sharding
//
// Config.Instruments restricts an instance to a set of instruments, with one durable
// consumer per instrument; empty serves every instrument with one durable consumer.
// Each instrument must have exactly one writer: shards are disjoint.
//
// docs/services/matching.md has the details.
package matching
