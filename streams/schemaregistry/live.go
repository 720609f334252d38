package schemaregistry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/streams"
)

// DefaultRefreshInterval is how often Live.Run rebuilds its index even
// when the bucket's watch reported nothing.
const DefaultRefreshInterval = time.Minute

// Option configures Build, Open and NewHandler.
type Option func(*config)

type config struct {
	bucket  string
	logger  *slog.Logger
	refresh time.Duration
}

// WithBucket sets the registry bucket (default streams.DefaultSchemaBucket).
func WithBucket(name string) Option { return func(c *config) { c.bucket = name } }

// WithLogger sets the logger of Live.Run and of the handler (default: one
// that discards).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithRefreshInterval sets how often Live.Run rebuilds without a change
// reported (default DefaultRefreshInterval).
func WithRefreshInterval(d time.Duration) Option { return func(c *config) { c.refresh = d } }

func newConfig(opts []Option) config {
	c := config{bucket: streams.DefaultSchemaBucket, refresh: DefaultRefreshInterval,
		logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Build reads every topic's schema from the registry bucket, with the
// older revisions its history still holds, and indexes them.
func Build(ctx context.Context, js jetstream.JetStream, opts ...Option) (*Index, error) {
	return build(ctx, js, newConfig(opts))
}

func build(ctx context.Context, js jetstream.JetStream, c config) (*Index, error) {
	reg, err := streams.OpenRegistry(ctx, js, streams.WithSchemaBucket(c.bucket))
	if err != nil {
		return nil, fmt.Errorf("build schema index: %w", err)
	}
	current, err := reg.Topics(ctx)
	if err != nil {
		return nil, fmt.Errorf("build schema index: %w", err)
	}
	kv, err := js.KeyValue(ctx, c.bucket)
	if err != nil {
		return nil, fmt.Errorf("build schema index: open %s: %w", c.bucket, err)
	}
	entries := make([]streams.Schema, 0, len(current))
	for _, s := range current {
		old, err := history(ctx, kv, s)
		if err != nil {
			return nil, fmt.Errorf("build schema index: %w", err)
		}
		entries = append(append(entries, old...), s)
	}
	return NewIndex(entries)
}

// history returns the revisions of s's topic older than s.
func history(ctx context.Context, kv jetstream.KeyValue, s streams.Schema) ([]streams.Schema, error) {
	hist, err := kv.History(ctx, s.Topic)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil // deleted since it was listed
	}
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", s.Topic, err)
	}
	var out []streams.Schema
	for _, e := range hist {
		if e.Operation() != jetstream.KeyValuePut || e.Revision() >= s.Revision {
			continue
		}
		var old streams.Schema
		if err := json.Unmarshal(e.Value(), &old); err != nil {
			return nil, fmt.Errorf("%w: %s revision %d: %w", ErrInvalidSchema, s.Topic, e.Revision(), err)
		}
		old.Revision = e.Revision()
		out = append(out, old)
	}
	return out, nil
}

// Source gives the index to serve; an *Index and a *Live are sources.
type Source interface {
	Current() *Index
}

// Live keeps an Index of the registry bucket current: Run rebuilds it when
// the bucket changes, and Current returns the latest build without I/O. It
// is safe for concurrent use.
type Live struct {
	js  jetstream.JetStream
	cfg config

	mu  sync.Mutex // serialises rebuilds, so that an older build never replaces a newer one
	cur atomic.Pointer[Index]
}

// Open builds the first index of the registry bucket; call Run to keep it
// current.
func Open(ctx context.Context, js jetstream.JetStream, opts ...Option) (*Live, error) {
	l := &Live{js: js, cfg: newConfig(opts)}
	if err := l.Refresh(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Current returns the latest index.
func (l *Live) Current() *Index { return l.cur.Load() }

// Refresh rebuilds the index now; on error the previous one stays.
func (l *Live) Refresh(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	idx, err := build(ctx, l.js, l.cfg)
	if err != nil {
		return err
	}
	l.cur.Store(idx)
	return nil
}

// Run watches the registry bucket and rebuilds the index after each burst
// of changes, and at the refresh interval, until ctx ends (then it returns
// nil). A failed rebuild is logged and keeps the previous index.
func (l *Live) Run(ctx context.Context) error {
	kv, err := l.js.KeyValue(ctx, l.cfg.bucket)
	if err != nil {
		return fmt.Errorf("watch %s: %w", l.cfg.bucket, err)
	}
	w, err := kv.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("watch %s: %w", l.cfg.bucket, err)
	}
	defer func() { _ = w.Stop() }() // a failed unsubscribe leaves nothing to undo
	tick := time.NewTicker(l.cfg.refresh)
	defer tick.Stop()
	// Rebuild once now: the bucket may have changed between Open and the watch.
	l.refreshLogged(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("watch %s: %w: watch ended", l.cfg.bucket, streams.ErrUnavailable)
			}
			drain(w.Updates())
			l.refreshLogged(ctx)
		case <-tick.C:
			l.refreshLogged(ctx)
		}
	}
}

// Follow is Run for as long as ctx lasts: when the watch ends (a NATS
// outage), it logs why and starts over after a backoff, keeping the
// current index meanwhile. It returns nil when ctx ends.
func (l *Live) Follow(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := l.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		l.cfg.logger.WarnContext(ctx, "schema index: watch failed, starting over", "error", err)
		if err := streams.Sleep(ctx, streams.Backoff(min(attempt, 6))); err != nil {
			return nil
		}
	}
}

// drain takes the updates already waiting, so that a burst of writes
// (PublishSchemas writes every topic) costs one rebuild.
func drain(updates <-chan jetstream.KeyValueEntry) {
	for {
		select {
		case _, ok := <-updates:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// refreshLogged rebuilds the index, logging a failure.
func (l *Live) refreshLogged(ctx context.Context) {
	if err := l.Refresh(ctx); err != nil && ctx.Err() == nil {
		l.cfg.logger.WarnContext(ctx, "schema index rebuild failed, serving the previous one", "error", err)
	}
}
