// Package metadata is the metadata service: it owns the instruments that
// can be traded (BTCUSDT, ETHUSDT, BTCUSDT-PERP, ...) with their trading
// rules, and the platform's runtime configuration.
//
// RPCs (tradex.metadata.v1.MetadataService, see Service.Handler):
// GetInstrument, ListInstruments, CreateInstrument, UpdateInstrument,
// HaltInstrument, ResumeInstrument; GetConfig, SetConfig, DeleteConfig,
// ListConfig and the server stream WatchConfig (current entries, one
// snapshot_end, then every change).
//
// State: the catalog's KV buckets tradex_instruments (streams.StoreInstruments;
// key: symbol, value: metadatav1.Instrument) and tradex_config
// (streams.StoreConfig; key: configuration key, value:
// metadatav1.ConfigEntry), opened through Deps.Streams. The service keeps
// no other state.
//
// Topics produced (consumes none):
//
//   - md.instrument.created.v1, key symbol, InstrumentCreated, message id
//     "instrument:<symbol>:1";
//   - md.instrument.updated.v1, key symbol, InstrumentUpdated (rule changes,
//     halts, resumes), message id "instrument:<symbol>:<revision>";
//   - md.config.changed.v1, key ConfigTopicKey(key) (the key with ':' for
//     '.'), ConfigChanged, message id "config:<key>:<revision>".
//
// Every change is written to its bucket first (with a compare-and-set on the
// KV revision) and announced second, so no event announces a change that did
// not happen. The window in between (a crash, a failed publish) is closed by
// a repair that Run performs at start, after a failed publish and every
// Config.RepairInterval: it publishes the event of any latest revision that
// has none (see repair.go). Events carry whole states and revisions;
// consumers keep the highest revision they have seen.
//
// Seed: Run creates the Config.Seed instruments that do not exist (by
// default BTCUSDT, ETHUSDT, BTCUSDT-PERP) and changes none that do, so a
// restart creates and publishes nothing.
//
// docs/services/metadata.md is the guide.
package metadata
