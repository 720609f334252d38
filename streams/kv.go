package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// KV is a key-value bucket of the catalog. Errors wrap ErrNotFound (no
// such key), ErrKeyExists, ErrRevisionMismatch or ErrUnavailable (the
// broker is away), so callers never look at nats.go's errors.
type KV struct {
	name   string
	kv     jetstream.KeyValue
	js     jetstream.JetStream
	stream jetstream.Stream // the bucket's stream, for direct reads
}

// Entry is one revision of a key.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
	Created  time.Time
	// Deleted reports a delete or purge marker (Value is empty).
	Deleted bool
}

// KV opens the catalog's KV bucket name, creating it (or updating its
// settings) as the catalog declares it.
func (c *Client) KV(ctx context.Context, name string) (*KV, error) {
	c.mu.Lock()
	kv, ok := c.kvs[name]
	c.mu.Unlock()
	if ok {
		return kv, nil
	}
	s, err := c.store(name, KeyValue)
	if err != nil {
		return nil, err
	}
	raw, err := c.openKV(ctx, s)
	if err != nil {
		return nil, brokerError("open bucket "+name, err)
	}
	st, err := c.js.Stream(ctx, "KV_"+s.Name)
	if err != nil {
		return nil, brokerError("open bucket "+name, err)
	}
	kv = &KV{name: name, kv: raw, js: c.js, stream: st}
	c.mu.Lock()
	c.kvs[name] = kv
	c.mu.Unlock()
	return kv, nil
}

// openKV binds to bucket s when it exists as declared, and otherwise
// creates it or updates its settings. Its stream allows atomic batches
// (KV.Batch), which a bucket's own settings cannot say.
func (c *Client) openKV(ctx context.Context, s Store) (jetstream.KeyValue, error) {
	stream := "KV_" + s.Name
	if st, err := c.js.Stream(ctx, stream); err == nil {
		cfg := st.CachedInfo().Config
		if cfg.AllowAtomicPublish && cfg.MaxMsgsPerSubject == int64(s.History) && cfg.Replicas == max(c.replicas, 1) &&
			cfg.Description == s.Description {
			return c.js.KeyValue(ctx, s.Name)
		}
	}
	raw, err := c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: s.Name, Description: s.Description, History: uint8(s.History), //nolint:gosec // validated: 1 to 64
		Storage: jetstream.FileStorage, Replicas: c.replicas,
	})
	if err != nil {
		return nil, err
	}
	st, err := c.js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	cfg := st.CachedInfo().Config
	if !cfg.AllowAtomicPublish {
		cfg.AllowAtomicPublish = true
		if _, err := c.js.UpdateStream(ctx, cfg); err != nil {
			return nil, err
		}
	}
	return raw, nil
}

// Name is the bucket's name.
func (b *KV) Name() string { return b.name }

func (b *KV) fail(op, key string, err error) error {
	return brokerError(fmt.Sprintf("%s %s in %s", op, key, b.name), err)
}

// Get returns the latest entry of key (ErrNotFound when there is none or
// it was deleted).
func (b *KV) Get(ctx context.Context, key string) (Entry, error) {
	e, err := b.kv.Get(ctx, key)
	if err != nil {
		return Entry{}, b.fail("get", key, err)
	}
	return entryOf(e), nil
}

// Entry returns the latest entry of key, a delete marker included
// (Deleted set, Value empty): its revision is the one a write after a
// delete must expect. ErrNotFound when the key was never written.
func (b *KV) Entry(ctx context.Context, key string) (Entry, error) {
	m, err := b.stream.GetLastMsgForSubject(ctx, "$KV."+b.kv.Bucket()+"."+key)
	if err != nil {
		return Entry{}, b.fail("get", key, err)
	}
	op := m.Header.Get("KV-Operation")
	return Entry{Key: key, Value: m.Data, Revision: m.Sequence, Created: m.Time, Deleted: op == "DEL" || op == "PURGE"}, nil
}

// Put writes value under key whatever is there; it returns the revision.
func (b *KV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := b.kv.Put(ctx, key, value)
	if err != nil {
		return 0, b.fail("put", key, err)
	}
	return rev, nil
}

// Create writes value under key only if the key has no value (ErrKeyExists
// otherwise).
func (b *KV) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := b.kv.Create(ctx, key, value)
	if err != nil {
		return 0, b.fail("create", key, err)
	}
	return rev, nil
}

// Update writes value under key only if its latest revision is rev
// (ErrRevisionMismatch otherwise).
func (b *KV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	next, err := b.kv.Update(ctx, key, value, rev)
	if err != nil {
		return 0, b.fail("update", key, err)
	}
	return next, nil
}

// KVWrite is one key's write of a Batch.
type KVWrite struct {
	Key   string
	Value []byte
	// Revision is the key's latest revision the write expects: 0 for a key
	// that has never been written (a create), as for Update otherwise.
	Revision uint64
}

// Batch writes every key of writes, all or nothing (an atomic batch: one
// write of the bucket's stream), each checked against its expected
// revision; it returns the new revisions in order. A key written since
// fails the whole batch with an error wrapping ErrRevisionMismatch.
func (b *KV) Batch(ctx context.Context, writes []KVWrite) ([]uint64, error) {
	if len(writes) == 0 || len(writes) > maxAtomicBatch {
		return nil, fmt.Errorf("%w: batch of %d writes to %s: want 1 to %d", ErrInvalidConfig, len(writes), b.name, maxAtomicBatch)
	}
	prefix := "$KV." + b.kv.Bucket() + "."
	msgs := make([]*nats.Msg, len(writes))
	for i, w := range writes {
		m := nats.NewMsg(prefix + w.Key)
		m.Data = w.Value
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(w.Revision, 10))
		msgs[i] = m
	}
	ack, err := jetstreamext.PublishMsgBatch(ctx, b.js, msgs)
	if isWrongLastSequence(err) {
		return nil, fmt.Errorf("batch of %d writes to %s: %w", len(writes), b.name, ErrRevisionMismatch)
	}
	if err != nil {
		return nil, b.fail("batch of writes to", b.name, err)
	}
	revs := make([]uint64, len(writes))
	for i := range revs {
		revs[i] = ack.Sequence - ack.BatchSize + 1 + uint64(i)
	}
	return revs, nil
}

// Write writes every key of writes, each checked against its expected
// revision, pipelined (one round trip for all, in order) but not atomic:
// when it fails, the writes before the failing one may be stored. It
// returns the new revisions in order; a key written since fails with an
// error wrapping ErrRevisionMismatch. For few keys it is much cheaper than
// Batch (no staging of an atomic batch); use it where each write stands on
// its own.
func (b *KV) Write(ctx context.Context, writes []KVWrite) ([]uint64, error) {
	prefix := "$KV." + b.kv.Bucket() + "."
	futures := make([]jetstream.PubAckFuture, len(writes))
	for i, w := range writes {
		m := nats.NewMsg(prefix + w.Key)
		m.Data = w.Value
		f, err := b.js.PublishMsgAsync(m, jetstream.WithExpectLastSequencePerSubject(w.Revision))
		if err != nil {
			return nil, b.fail("write", w.Key, err)
		}
		futures[i] = f
	}
	revs := make([]uint64, len(writes))
	var errs []error
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			revs[i] = ack.Sequence
		case err := <-f.Err():
			if isWrongLastSequence(err) {
				err = fmt.Errorf("%w: %w", ErrRevisionMismatch, err)
			}
			errs = append(errs, b.fail("write", writes[i].Key, err))
		case <-ctx.Done():
			return nil, b.fail("write", writes[i].Key, ctx.Err())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return revs, nil
}

// Delete deletes key; with rev > 0 only if its latest revision is rev
// (ErrRevisionMismatch otherwise).
func (b *KV) Delete(ctx context.Context, key string, rev uint64) error {
	var opts []jetstream.KVDeleteOpt
	if rev > 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	if err := b.kv.Delete(ctx, key, opts...); err != nil {
		return b.fail("delete", key, err)
	}
	return nil
}

// History returns the kept revisions of key, oldest first; with metaOnly
// the values are left out.
func (b *KV) History(ctx context.Context, key string, metaOnly bool) ([]Entry, error) {
	var opts []jetstream.WatchOpt
	if metaOnly {
		opts = append(opts, jetstream.MetaOnly())
	}
	hist, err := b.kv.History(ctx, key, opts...)
	if err != nil {
		return nil, b.fail("history of", key, err)
	}
	out := make([]Entry, len(hist))
	for i, e := range hist {
		out[i] = entryOf(e)
	}
	return out, nil
}

// Latest returns the latest entry of every live key matching keys (a key
// or a pattern such as "order.*"; ">" for all).
func (b *KV) Latest(ctx context.Context, keys string) ([]Entry, error) {
	var out []Entry
	err := b.Follow(ctx, keys, func(_ context.Context, c KVChange) error {
		if c.SnapshotEnd {
			return errSnapshotRead
		}
		if !c.Deleted {
			out = append(out, c.Entry)
		}
		return nil
	})
	switch {
	case errors.Is(err, errSnapshotRead):
		return out, nil
	case err == nil: // ctx ended before the snapshot was read
		return nil, fmt.Errorf("latest %s in %s: %w", keys, b.name, ctx.Err())
	default:
		return nil, err
	}
}

// errSnapshotRead ends the follow of Latest.
var errSnapshotRead = errors.New("snapshot read")

// KVChange is one event of Follow: an entry, or the end of the initial
// snapshot.
type KVChange struct {
	Entry
	// Current reports an entry of the initial snapshot (the key's value
	// when the follow began).
	Current bool
	// SnapshotEnd marks the end of the initial snapshot; it comes once,
	// first for an empty bucket.
	SnapshotEnd bool
}

// Follow calls fn with the latest entry of every live key matching keys,
// then a change with SnapshotEnd set, then every later change (deletes
// too) in revision order, until ctx ends (it returns nil), fn fails (it returns fn's error)
// or the watch ends (an error wrapping ErrUnavailable).
func (b *KV) Follow(ctx context.Context, keys string, fn func(context.Context, KVChange) error) error {
	w, err := b.kv.Watch(ctx, keys)
	if err != nil {
		return b.fail("watch", keys, err)
	}
	defer func() { _ = w.Stop() }() // nothing to undo
	current := true
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case e, ok = <-w.Updates():
		}
		var c KVChange
		switch {
		case !ok:
			return fmt.Errorf("watch %s in %s: %w: the watch ended", keys, b.name, ErrUnavailable)
		case e == nil:
			current = false
			c.SnapshotEnd = true
		default:
			c = KVChange{Entry: entryOf(e), Current: current}
			if current && c.Deleted {
				continue // a deleted key is not part of the snapshot
			}
		}
		if err := fn(ctx, c); err != nil {
			return err
		}
	}
}

// Watch is jetstream's watch of the bucket, for WatchKV.
func (b *KV) Watch(ctx context.Context, keys string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	w, err := b.kv.Watch(ctx, keys, opts...)
	if err != nil {
		return nil, b.fail("watch", keys, err)
	}
	return w, nil
}

func entryOf(e jetstream.KeyValueEntry) Entry {
	return Entry{Key: e.Key(), Value: e.Value(), Revision: e.Revision(), Created: e.Created(),
		Deleted: e.Operation() != jetstream.KeyValuePut}
}
