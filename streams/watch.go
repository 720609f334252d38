package streams

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// KVWatcher is what WatchKV needs of a bucket; jetstream.KeyValue has it.
type KVWatcher interface {
	Watch(ctx context.Context, keys string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
}

// Update is one event of WatchKV: a key's value, its deletion, or the end
// of the initial snapshot.
type Update[T proto.Message] struct {
	// Key is the entry's key; empty on the snapshot-end marker.
	Key string
	// Value is the decoded value; nil when Deleted and on the marker.
	Value T
	// Revision is the entry's revision (its stream sequence); 0 on the marker.
	Revision uint64
	// Deleted reports that the key was deleted, purged or expired.
	Deleted bool
	// Current reports that the entry is part of the initial snapshot: the
	// key's value when the watch began.
	Current bool
	// SnapshotEnd marks the end of the initial snapshot: every value
	// current when the watch began has been delivered, and every update
	// after it is a change. It comes exactly once, first for an empty
	// bucket.
	SnapshotEnd bool
}

// WatchKV calls fn with the current value of every key of kv matching keys
// (a key, or a pattern such as "instruments.*"; jetstream.AllKeys for all),
// then with an Update whose SnapshotEnd is set, then with every change, in
// revision order, until ctx ends or fn fails. Values are proto-encoded T; a
// value that does not decode is an error naming its key. Deleted keys are
// left out of the snapshot; after it they arrive with Deleted set.
//
// It is the request-stream pattern: a Connect server stream handler is
//
//	return streams.WatchKV(ctx, kv, "instruments.*", func(ctx context.Context, u streams.Update[*metadatav1.Instrument]) error {
//		return stream.Send(toResponse(u))
//	})
//
// A callback rather than a channel, so that a failed Send ends the watch,
// a slow client slows the watch instead of piling up updates, and nothing
// is left running when it returns.
//
// When ctx ends, WatchKV returns ctx.Err() (context.Canceled or
// context.DeadlineExceeded), so a stream cut by shutdown does not look like
// one that completed. It returns fn's error as is, and an error wrapping
// ErrUnavailable if the watch itself ends (the connection closed).
func WatchKV[T proto.Message](ctx context.Context, kv KVWatcher, keys string, fn func(context.Context, Update[T]) error) error {
	w, err := kv.Watch(ctx, keys)
	if err != nil {
		return brokerError("watch "+keys, err)
	}
	defer func() { _ = w.Stop() }() // a failed unsubscribe leaves nothing to undo
	snapshot := true
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok = <-w.Updates():
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case !ok:
			return fmt.Errorf("watch %s: %w: updates ended", keys, ErrUnavailable)
		case e == nil:
			snapshot = false
			if err := fn(ctx, Update[T]{SnapshotEnd: true}); err != nil {
				return err
			}
			continue
		}
		u, err := decodeUpdate[T](e, snapshot)
		if err != nil {
			return fmt.Errorf("watch %s: %w", keys, err)
		}
		if snapshot && u.Deleted {
			continue // the snapshot holds what exists
		}
		if err := fn(ctx, u); err != nil {
			return err
		}
	}
}

// decodeUpdate turns a KV entry into an Update.
func decodeUpdate[T proto.Message](e jetstream.KeyValueEntry, snapshot bool) (Update[T], error) {
	u := Update[T]{Key: e.Key(), Revision: e.Revision(), Current: snapshot}
	if e.Operation() != jetstream.KeyValuePut {
		u.Deleted = true
		return u, nil
	}
	var zero T
	v, ok := zero.ProtoReflect().New().Interface().(T)
	if !ok {
		return u, fmt.Errorf("%w: cannot instantiate %T", ErrWrongType, zero)
	}
	if err := proto.Unmarshal(e.Value(), v); err != nil {
		return u, fmt.Errorf("key %s revision %d: decode %s: %w", e.Key(), e.Revision(), v.ProtoReflect().Descriptor().FullName(), err)
	}
	u.Value = v
	return u, nil
}
