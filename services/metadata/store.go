package metadata

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// bucketHistory is how many revisions of each key the buckets keep: enough
// to find the revision before the latest when an event must be recovered.
const bucketHistory = 16

// casRetries bounds the read-modify-write attempts of an unconditional
// change that keeps losing to concurrent writers.
const casRetries = 5

// store keeps instruments and configuration in JetStream KV buckets. An
// instrument is stored under its symbol as a metadatav1.Instrument; a
// configuration entry under its key as a metadatav1.ConfigEntry (whose
// revision is the KV revision, filled in on read).
type store struct {
	instruments jetstream.KeyValue
	config      jetstream.KeyValue
}

// openStore creates or updates both buckets and opens them.
func openStore(ctx context.Context, js jetstream.JetStream, cfg Config) (*store, error) {
	open := func(bucket, what string) (jetstream.KeyValue, error) {
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      bucket,
			Description: "tradex metadata: " + what,
			History:     bucketHistory,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
		})
		if err != nil {
			return nil, storeError("open bucket "+bucket, err)
		}
		return kv, nil
	}
	instruments, err := open(cfg.InstrumentsBucket, "instruments by symbol")
	if err != nil {
		return nil, err
	}
	config, err := open(cfg.ConfigBucket, "runtime configuration by key")
	if err != nil {
		return nil, err
	}
	return &store{instruments: instruments, config: config}, nil
}

// getInstrument reads an instrument and the KV revision it is stored at.
func (s *store) getInstrument(ctx context.Context, symbol string) (Instrument, uint64, error) {
	e, err := s.instruments.Get(ctx, symbol)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Instrument{}, 0, fmt.Errorf("instrument %s: %w", symbol, ErrNotFound)
	}
	if err != nil {
		return Instrument{}, 0, storeError("get instrument "+symbol, err)
	}
	in, err := decodeInstrument(e)
	return in, e.Revision(), err
}

// createInstrument stores a new instrument; ErrAlreadyExists if the symbol
// is taken.
func (s *store) createInstrument(ctx context.Context, in Instrument) error {
	data, err := proto.Marshal(instrumentToProto(in))
	if err != nil {
		return fmt.Errorf("encode instrument %s: %w", in.Symbol, err)
	}
	_, err = s.instruments.Create(ctx, in.Symbol, data)
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return fmt.Errorf("instrument %s: %w", in.Symbol, ErrAlreadyExists)
	case err != nil:
		return storeError("create instrument "+in.Symbol, err)
	}
	return nil
}

// updateInstrument is a read-modify-write of one instrument: change gets the
// stored instrument and returns its next state (or the same revision for
// no change, or an error). A concurrent write in between makes it read
// and call change again, so checks inside change (expected revisions) see
// the latest state. It returns the instrument before and after.
func (s *store) updateInstrument(ctx context.Context, symbol string, change func(Instrument) (Instrument, error)) (prev, next Instrument, err error) {
	for range casRetries {
		cur, kvRev, err := s.getInstrument(ctx, symbol)
		if err != nil {
			return Instrument{}, Instrument{}, err
		}
		next, err := change(cur)
		if err != nil || next.Revision == cur.Revision {
			return cur, cur, err
		}
		data, err := proto.Marshal(instrumentToProto(next))
		if err != nil {
			return Instrument{}, Instrument{}, fmt.Errorf("encode instrument %s: %w", symbol, err)
		}
		_, err = s.instruments.Update(ctx, symbol, data, kvRev)
		switch {
		case err == nil:
			return cur, next, nil
		case !errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			return Instrument{}, Instrument{}, storeError("update instrument "+symbol, err)
		}
	}
	return Instrument{}, Instrument{}, fmt.Errorf("update instrument %s: %d concurrent writers in a row: %w", symbol, casRetries, ErrRevisionMismatch)
}

// listInstruments returns every instrument, ordered by symbol.
func (s *store) listInstruments(ctx context.Context) ([]Instrument, error) {
	entries, err := latestEntries(ctx, s.instruments, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, storeError("list instruments", err)
	}
	out := make([]Instrument, 0, len(entries))
	for _, e := range entries {
		in, err := decodeInstrument(e)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b Instrument) int { return cmp.Compare(a.Symbol, b.Symbol) })
	return out, nil
}

// instrumentAt finds the stored state of symbol at an instrument revision,
// while the bucket's history still holds it.
func (s *store) instrumentAt(ctx context.Context, symbol string, revision uint64) (Instrument, bool, error) {
	history, err := s.instruments.History(ctx, symbol)
	if err != nil {
		return Instrument{}, false, storeError("history of instrument "+symbol, err)
	}
	for _, e := range slices.Backward(history) {
		if e.Operation() != jetstream.KeyValuePut {
			continue
		}
		in, err := decodeInstrument(e)
		if err != nil {
			return Instrument{}, false, err
		}
		if in.Revision == revision {
			return in, true, nil
		}
	}
	return Instrument{}, false, nil
}

// decodeInstrument decodes a stored instrument.
func decodeInstrument(e jetstream.KeyValueEntry) (Instrument, error) {
	var p metadatav1.Instrument
	if err := proto.Unmarshal(e.Value(), &p); err != nil {
		return Instrument{}, fmt.Errorf("decode instrument %s at revision %d: %w", e.Key(), e.Revision(), err)
	}
	return instrumentFromProto(&p), nil
}

// getConfig reads a configuration entry.
func (s *store) getConfig(ctx context.Context, key string) (ConfigEntry, error) {
	e, err := s.config.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ConfigEntry{}, fmt.Errorf("config key %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return ConfigEntry{}, storeError("get config "+key, err)
	}
	return decodeConfig(e)
}

// setConfig writes a configuration value: unconditionally when expected is
// nil, only if the key does not exist when it is 0, only if the key is at
// that revision otherwise.
func (s *store) setConfig(ctx context.Context, key, value string, expected *uint64, now time.Time) (ConfigEntry, error) {
	entry := ConfigEntry{Key: key, Value: value, UpdatedAt: now}
	data, err := proto.Marshal(configEntryToProto(entry))
	if err != nil {
		return ConfigEntry{}, fmt.Errorf("encode config %s: %w", key, err)
	}
	switch {
	case expected == nil:
		entry.Revision, err = s.config.Put(ctx, key, data)
	case *expected == 0:
		entry.Revision, err = s.config.Create(ctx, key, data)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return ConfigEntry{}, fmt.Errorf("config key %s exists, expected it not to (expected_revision 0): %w", key, ErrRevisionMismatch)
		}
	default:
		entry.Revision, err = s.config.Update(ctx, key, data, *expected)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return ConfigEntry{}, fmt.Errorf("config key %s is not at revision %d: %w", key, *expected, ErrRevisionMismatch)
		}
	}
	if err != nil {
		return ConfigEntry{}, storeError("set config "+key, err)
	}
	return entry, nil
}

// deleteConfig deletes a configuration key: unconditionally when expected
// is nil, only if it is at that revision otherwise (0: only if it does not
// exist, which deletes nothing). It returns the revision of the delete, or
// 0 when the key was not set.
func (s *store) deleteConfig(ctx context.Context, key string, expected *uint64) (uint64, error) {
	for range casRetries {
		e, err := s.config.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return 0, CheckRevision("config key "+key, 0, expected)
		case err != nil:
			return 0, storeError("get config "+key, err)
		}
		if err := CheckRevision("config key "+key, e.Revision(), expected); err != nil {
			return 0, err
		}
		err = s.config.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
		switch {
		case err == nil:
			return s.revisionAfter(ctx, key, e.Revision())
		case !errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			return 0, storeError("delete config "+key, err)
		}
	}
	return 0, fmt.Errorf("delete config %s: %d concurrent writers in a row: %w", key, casRetries, ErrRevisionMismatch)
}

// revisionAfter finds the revision of the change that directly followed
// revision prev of key (the delete marker just written: Delete does not
// return its revision).
func (s *store) revisionAfter(ctx context.Context, key string, prev uint64) (uint64, error) {
	history, err := s.config.History(ctx, key, jetstream.MetaOnly())
	if err != nil {
		return 0, storeError("history of config "+key, err)
	}
	for _, e := range history {
		if e.Revision() > prev {
			return e.Revision(), nil
		}
	}
	return 0, fmt.Errorf("config %s: delete after revision %d not in history", key, prev)
}

// listConfig returns every configuration entry, ordered by key.
func (s *store) listConfig(ctx context.Context) ([]ConfigEntry, error) {
	entries, err := latestEntries(ctx, s.config, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, storeError("list config", err)
	}
	out := make([]ConfigEntry, 0, len(entries))
	for _, e := range entries {
		c, err := decodeConfig(e)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b ConfigEntry) int { return cmp.Compare(a.Key, b.Key) })
	return out, nil
}

// configChanges returns the latest change of every configuration key that
// was ever set, deletes included, as the change events they should have
// produced (without actor).
func (s *store) configChanges(ctx context.Context) ([]ConfigChange, error) {
	entries, err := latestEntries(ctx, s.config)
	if err != nil {
		return nil, storeError("list config changes", err)
	}
	out := make([]ConfigChange, 0, len(entries))
	for _, e := range entries {
		ch := ConfigChange{Key: e.Key(), Revision: e.Revision(), ChangedAt: e.Created(), Deleted: e.Operation() != jetstream.KeyValuePut}
		if !ch.Deleted {
			c, err := decodeConfig(e)
			if err != nil {
				return nil, err
			}
			ch.Value, ch.ChangedAt = c.Value, c.UpdatedAt
		}
		out = append(out, ch)
	}
	return out, nil
}

// decodeConfig decodes a stored configuration entry.
func decodeConfig(e jetstream.KeyValueEntry) (ConfigEntry, error) {
	var p metadatav1.ConfigEntry
	if err := proto.Unmarshal(e.Value(), &p); err != nil {
		return ConfigEntry{}, fmt.Errorf("decode config %s at revision %d: %w", e.Key(), e.Revision(), err)
	}
	return configEntryFromProto(&p, e.Revision()), nil
}

// latestEntries reads the latest entry of every key of kv.
func latestEntries(ctx context.Context, kv jetstream.KeyValue, opts ...jetstream.WatchOpt) ([]jetstream.KeyValueEntry, error) {
	w, err := kv.WatchAll(ctx, opts...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }() // nothing to undo if the unsubscribe fails
	var out []jetstream.KeyValueEntry
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return nil, errors.New("watch ended before the initial values")
			case e == nil:
				return out, nil
			}
			out = append(out, e)
		}
	}
}

// storeError wraps a bucket error with what was being done, marking the
// connectivity failures with streams.ErrUnavailable.
func storeError(op string, err error) error {
	if isUnavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, streams.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// isUnavailable reports the errors that mean the broker could not be
// reached or did not answer; retrying later may work.
func isUnavailable(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrConnectionDraining) ||
		errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}
