package metadata

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// casRetries bounds the read-modify-write attempts of an unconditional
// change that keeps losing to concurrent writers.
const casRetries = 5

// bucket is what the store needs of a KV bucket; *streams.KV has it.
type bucket interface {
	Get(ctx context.Context, key string) (streams.Entry, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error)
	Delete(ctx context.Context, key string, rev uint64) error
	History(ctx context.Context, key string, metaOnly bool) ([]streams.Entry, error)
	Latest(ctx context.Context, keys string) ([]streams.Entry, error)
	Heads(ctx context.Context, keys string) ([]streams.Entry, error)
}

// watchedBucket is a bucket WatchConfig can watch (streams.WatchKV).
type watchedBucket interface {
	bucket
	streams.KVWatcher
}

// kvOpener opens the catalog's KV buckets; *streams.Client is one.
type kvOpener interface {
	KV(ctx context.Context, name string) (*streams.KV, error)
}

// store keeps instruments and configuration in JetStream KV buckets. An
// instrument is stored under its symbol as a metadatav1.Instrument; a
// configuration entry under its key as a metadatav1.ConfigEntry (whose
// revision is the KV revision, filled in on read).
type store struct {
	instruments bucket
	config      watchedBucket
}

// openStore opens both buckets (creating them as the catalog declares
// them).
func openStore(ctx context.Context, kvs kvOpener, cfg Config) (*store, error) {
	instruments, err := kvs.KV(ctx, cfg.InstrumentsBucket)
	if err != nil {
		return nil, fmt.Errorf("open instruments: %w", err)
	}
	config, err := kvs.KV(ctx, cfg.ConfigBucket)
	if err != nil {
		return nil, fmt.Errorf("open config: %w", err)
	}
	return &store{instruments: instruments, config: config}, nil
}

// getInstrument reads an instrument and the KV revision it is stored at.
func (s *store) getInstrument(ctx context.Context, symbol string) (Instrument, uint64, error) {
	e, err := s.instruments.Get(ctx, symbol)
	if errors.Is(err, streams.ErrNotFound) {
		return Instrument{}, 0, fmt.Errorf("instrument %s: %w", symbol, ErrNotFound)
	}
	if err != nil {
		return Instrument{}, 0, fmt.Errorf("get instrument %s: %w", symbol, err)
	}
	in, err := decodeInstrument(e)
	return in, e.Revision, err
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
	case errors.Is(err, streams.ErrKeyExists):
		return fmt.Errorf("instrument %s: %w", in.Symbol, ErrAlreadyExists)
	case err != nil:
		return fmt.Errorf("create instrument %s: %w", in.Symbol, err)
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
		case !errors.Is(err, streams.ErrRevisionMismatch):
			return Instrument{}, Instrument{}, fmt.Errorf("update instrument %s: %w", symbol, err)
		}
	}
	return Instrument{}, Instrument{}, fmt.Errorf("update instrument %s: %d concurrent writers in a row: %w", symbol, casRetries, ErrRevisionMismatch)
}

// listInstruments returns every instrument, ordered by symbol.
func (s *store) listInstruments(ctx context.Context) ([]Instrument, error) {
	entries, err := s.instruments.Latest(ctx, ">")
	if err != nil {
		return nil, fmt.Errorf("list instruments: %w", err)
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
	history, err := s.instruments.History(ctx, symbol, false)
	if err != nil {
		return Instrument{}, false, fmt.Errorf("history of instrument %s: %w", symbol, err)
	}
	for _, e := range slices.Backward(history) {
		if e.Deleted {
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
func decodeInstrument(e streams.Entry) (Instrument, error) {
	var p metadatav1.Instrument
	if err := proto.Unmarshal(e.Value, &p); err != nil {
		return Instrument{}, fmt.Errorf("decode instrument %s at revision %d: %w", e.Key, e.Revision, err)
	}
	return instrumentFromProto(&p), nil
}

// getConfig reads a configuration entry.
func (s *store) getConfig(ctx context.Context, key string) (ConfigEntry, error) {
	e, err := s.config.Get(ctx, key)
	if errors.Is(err, streams.ErrNotFound) {
		return ConfigEntry{}, fmt.Errorf("config key %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return ConfigEntry{}, fmt.Errorf("get config %s: %w", key, err)
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
		if errors.Is(err, streams.ErrKeyExists) {
			return ConfigEntry{}, fmt.Errorf("config key %s exists, expected it not to (expected_revision 0): %w", key, ErrRevisionMismatch)
		}
	default:
		entry.Revision, err = s.config.Update(ctx, key, data, *expected)
		if errors.Is(err, streams.ErrRevisionMismatch) {
			return ConfigEntry{}, fmt.Errorf("config key %s is not at revision %d: %w", key, *expected, ErrRevisionMismatch)
		}
	}
	if err != nil {
		return ConfigEntry{}, fmt.Errorf("set config %s: %w", key, err)
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
		case errors.Is(err, streams.ErrNotFound):
			return 0, CheckRevision("config key "+key, 0, expected)
		case err != nil:
			return 0, fmt.Errorf("get config %s: %w", key, err)
		}
		if err := CheckRevision("config key "+key, e.Revision, expected); err != nil {
			return 0, err
		}
		err = s.config.Delete(ctx, key, e.Revision)
		switch {
		case err == nil:
			return s.revisionAfter(ctx, key, e.Revision)
		case !errors.Is(err, streams.ErrRevisionMismatch):
			return 0, fmt.Errorf("delete config %s: %w", key, err)
		}
	}
	return 0, fmt.Errorf("delete config %s: %d concurrent writers in a row: %w", key, casRetries, ErrRevisionMismatch)
}

// revisionAfter finds the revision of the change that directly followed
// revision prev of key (the delete marker just written: Delete does not
// return its revision).
func (s *store) revisionAfter(ctx context.Context, key string, prev uint64) (uint64, error) {
	history, err := s.config.History(ctx, key, true)
	if err != nil {
		return 0, fmt.Errorf("history of config %s: %w", key, err)
	}
	for _, e := range history {
		if e.Revision > prev {
			return e.Revision, nil
		}
	}
	return 0, fmt.Errorf("config %s: delete after revision %d not in history", key, prev)
}

// listConfig returns every configuration entry, ordered by key.
func (s *store) listConfig(ctx context.Context) ([]ConfigEntry, error) {
	entries, err := s.config.Latest(ctx, ">")
	if err != nil {
		return nil, fmt.Errorf("list config: %w", err)
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
	entries, err := s.config.Heads(ctx, ">")
	if err != nil {
		return nil, fmt.Errorf("list config changes: %w", err)
	}
	out := make([]ConfigChange, 0, len(entries))
	for _, e := range entries {
		ch := ConfigChange{Key: e.Key, Revision: e.Revision, ChangedAt: e.Created, Deleted: e.Deleted}
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
func decodeConfig(e streams.Entry) (ConfigEntry, error) {
	var p metadatav1.ConfigEntry
	if err := proto.Unmarshal(e.Value, &p); err != nil {
		return ConfigEntry{}, fmt.Errorf("decode config %s at revision %d: %w", e.Key, e.Revision, err)
	}
	return configEntryFromProto(&p, e.Revision), nil
}
