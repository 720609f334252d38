package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tradex-mesh/tradex/streams"
)

// casAttempts bounds the read-modify-write attempts of a change that keeps
// meeting concurrent writers.
const casAttempts = 5

// bucket is what the store needs of a KV bucket; *streams.KV has it.
type bucket interface {
	Get(ctx context.Context, key string) (streams.Entry, error)
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error)
	Delete(ctx context.Context, key string, rev uint64) error
	Latest(ctx context.Context, keys string) ([]streams.Entry, error)
}

// store keeps the service's records as JSON in one bucket, under
// "user.<id>", "email.<hash>", "session.<user>.<id>", "apikey.<id>" and
// "signing.<id>".
type store struct{ b bucket }

// get reads key into v and returns its revision (ErrNotFound when absent).
func (s store) get(ctx context.Context, key string, v any) (uint64, error) {
	e, err := s.b.Get(ctx, key)
	switch {
	case errors.Is(err, streams.ErrNotFound):
		return 0, fmt.Errorf("%s: %w", key, ErrNotFound)
	case err != nil:
		return 0, err
	}
	if err := json.Unmarshal(e.Value, v); err != nil {
		return 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return e.Revision, nil
}

// create writes v under key unless it exists (ErrAlreadyExists).
func (s store) create(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	_, err = s.b.Create(ctx, key, b)
	if errors.Is(err, streams.ErrKeyExists) {
		return fmt.Errorf("%s: %w", key, ErrAlreadyExists)
	}
	return err
}

// change reads key into a fresh T, lets fn change it and writes it back
// if the key did not change meanwhile, retrying otherwise. fn returning
// errUnchanged writes nothing.
func change[T any](ctx context.Context, s store, key string, fn func(*T) error) (T, error) {
	for attempt := 1; ; attempt++ {
		var v T
		rev, err := s.get(ctx, key, &v)
		if err != nil {
			return v, err
		}
		if err := fn(&v); err != nil {
			if errors.Is(err, errUnchanged) {
				return v, nil
			}
			return v, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return v, fmt.Errorf("encode %s: %w", key, err)
		}
		_, err = s.b.Update(ctx, key, b, rev)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, streams.ErrRevisionMismatch) || attempt >= casAttempts {
			return v, err
		}
	}
}

// errUnchanged tells change that fn left the record as it was.
var errUnchanged = errors.New("unchanged")

// all reads every record under prefix ("user.") into a T each, by key.
func all[T any](ctx context.Context, s store, prefix string) ([]T, error) {
	entries, err := s.b.Latest(ctx, prefix+">")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(a, b streams.Entry) int { return strings.Compare(a.Key, b.Key) })
	out := make([]T, 0, len(entries))
	for _, e := range entries {
		var v T
		if err := json.Unmarshal(e.Value, &v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", e.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}
