package streams

import (
	"context"
	"fmt"
)

// Heads returns the latest entry of every key matching keys (a key or a
// pattern; ">" for all), deleted keys included: unlike Latest, a key whose
// latest entry is a delete or purge marker is there with Deleted set. It
// is what a repair needs that must announce deletes too. Entries come in
// revision order.
func (b *KV) Heads(ctx context.Context, keys string) ([]Entry, error) {
	w, err := b.kv.Watch(ctx, keys)
	if err != nil {
		return nil, b.fail("watch", keys, err)
	}
	defer func() { _ = w.Stop() }() // nothing to undo
	var out []Entry
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("heads of %s in %s: %w", keys, b.name, ctx.Err())
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return nil, fmt.Errorf("heads of %s in %s: %w: the watch ended", keys, b.name, ErrUnavailable)
			case e == nil:
				return out, nil
			}
			out = append(out, entryOf(e))
		}
	}
}
