// Package instruments is the instrument cache that services (order,
// matching, marketdata, gateway) keep of the metadata service's
// instruments, without importing the service.
//
// A Cache is built from the generated metadata client (or the service's
// in-process handler, which has the same shape) and a subscription to the
// md.instrument.created.v1 and md.instrument.updated.v1 topics. Get answers
// from memory, loads a symbol it does not hold from the service, and every
// event refreshes the cached instrument in place (events carry the whole
// instrument).
//
// Why no update can be missed: the cache subscribes first (durable
// consumers starting at the first message after their creation,
// streams.StartNew) and only then reads from the service (the initial List,
// and every load on a miss). Any change stored after a read is published
// after it, so it arrives as an event; a change stored before a read is in
// what was read. Events and reads can arrive in either order, so the cache
// keeps, per symbol, the instrument with the highest revision it has seen
// and never goes back. The metadata service publishes every change after
// storing it and republishes any it failed to (its repair loop), so the
// latest revision of every instrument always arrives.
//
// If the subscription ends on its own (the consumers stop), the cache no
// longer trusts itself: it drops what it holds and loads every Get from the
// service until it is closed.
package instruments

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nuid"
	"golang.org/x/sync/singleflight"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// Client is what the cache needs of the metadata service.
// metadatav1connect.MetadataServiceClient has it, and so does the
// service's in-process handler.
type Client interface {
	GetInstrument(ctx context.Context, req *metadatav1.GetInstrumentRequest) (*metadatav1.GetInstrumentResponse, error)
	ListInstruments(ctx context.Context, req *metadatav1.ListInstrumentsRequest) (*metadatav1.ListInstrumentsResponse, error)
}

// ErrNotFound is returned when the metadata service knows no instrument by
// that symbol.
var ErrNotFound = errors.New("instrument not found")

// Option configures New.
type Option func(*options)

type options struct {
	logger      *slog.Logger
	name        string
	idle        time.Duration
	loadTimeout time.Duration
}

// WithLogger sets the cache's logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithConsumerName sets the prefix of the cache's durable consumer names,
// "<service>-instruments" (default "instruments-cache"). Each cache adds a
// unique suffix: every cache must see every event, so caches never share a
// consumer.
func WithConsumerName(prefix string) Option { return func(o *options) { o.name = prefix } }

// WithIdleExpiry sets how long the broker keeps the cache's consumers after
// their process stopped fetching without closing the cache (it crashed);
// default one hour.
func WithIdleExpiry(d time.Duration) Option { return func(o *options) { o.idle = d } }

// WithLoadTimeout bounds one load from the service (default 10s); a caller's
// own deadline applies as well.
func WithLoadTimeout(d time.Duration) Option { return func(o *options) { o.loadTimeout = d } }

// Cache holds instruments by symbol. It is safe for concurrent use.
type Cache struct {
	client Client
	mesh   *streams.Client
	log    *slog.Logger
	opts   options
	name   string

	mu    sync.RWMutex
	items map[string]*entry

	loads     singleflight.Group
	live      atomic.Bool // false once the subscription ended on its own
	closing   atomic.Bool
	consumers []*streams.Consumer
}

// entry is one cached instrument and its parsed rules.
type entry struct {
	inst     *metadatav1.Instrument
	rules    Rules
	rulesErr error
}

// followedTopics are the topics the cache follows.
func followedTopics() []string {
	return []string{streams.TopicInstrumentCreated, streams.TopicInstrumentUpdated}
}

// New subscribes to the instrument topics, then fills the cache with the
// service's list of instruments (a failure there is logged, not returned:
// Get loads what is missing). The subscription lives until ctx ends or
// Close is called. mesh is the caller's connection to the mesh; its
// catalog must hold the instrument topics.
func New(ctx context.Context, client Client, mesh *streams.Client, opts ...Option) (*Cache, error) {
	o := options{logger: slog.New(slog.DiscardHandler), name: "instruments-cache", idle: time.Hour, loadTimeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if client == nil || mesh == nil {
		return nil, errors.New("instruments: client and mesh are required")
	}
	c := &Cache{
		client: client, mesh: mesh, log: o.logger, opts: o,
		name:  o.name + "-" + nuid.Next(),
		items: map[string]*entry{},
	}
	c.live.Store(true)
	if err := c.subscribe(ctx); err != nil {
		return nil, errors.Join(err, c.Close(context.WithoutCancel(ctx)))
	}
	if err := c.preload(ctx); err != nil {
		c.log.WarnContext(ctx, "instrument cache preload failed, loading on demand", "err", err)
	}
	go c.watchConsumers(ctx)
	return c, nil
}

// subscribe starts one consumer per topic, each new (StartNew) and unique
// to this cache.
func (c *Cache) subscribe(ctx context.Context) error {
	cfg := streams.ConsumerConfig{Name: c.name, Start: streams.StartNew(), Concurrency: 4, Logger: c.log,
		InactiveThreshold: c.opts.idle} // a process that died without Close leaves nothing behind for long
	created, err := streams.Consume(ctx, c.mesh, streams.TopicInstrumentCreated, cfg,
		func(_ context.Context, m *streams.Message[*metadatav1.InstrumentCreated]) error {
			return c.apply(m.Payload.GetInstrument())
		})
	if err != nil {
		return fmt.Errorf("instruments: follow %s: %w", streams.TopicInstrumentCreated, err)
	}
	c.consumers = append(c.consumers, created)
	updated, err := streams.Consume(ctx, c.mesh, streams.TopicInstrumentUpdated, cfg,
		func(_ context.Context, m *streams.Message[*metadatav1.InstrumentUpdated]) error {
			return c.apply(m.Payload.GetInstrument())
		})
	if err != nil {
		return fmt.Errorf("instruments: follow %s: %w", streams.TopicInstrumentUpdated, err)
	}
	c.consumers = append(c.consumers, updated)
	return nil
}

// preload stores every instrument the service lists.
func (c *Cache) preload(ctx context.Context) error {
	return c.list(ctx, func(*metadatav1.Instrument) {})
}

// list stores every instrument the service lists, handing each to fn.
func (c *Cache) list(ctx context.Context, fn func(*metadatav1.Instrument)) error {
	req := &metadatav1.ListInstrumentsRequest{Page: &commonv1.PageRequest{PageSize: 1000}}
	for {
		res, err := c.client.ListInstruments(ctx, req)
		if err != nil {
			return fmt.Errorf("list instruments: %w", err)
		}
		for _, in := range res.GetInstruments() {
			c.store(in)
			fn(in)
		}
		next := res.GetPage().GetNextPageToken()
		if next == "" {
			return nil
		}
		req.Page.PageToken = next
	}
}

// watchConsumers turns the cache into a pass-through when a consumer
// stops: on Close or when ctx ends, or on its own (which is logged).
func (c *Cache) watchConsumers(ctx context.Context) {
	select {
	case <-c.consumers[0].Done():
	case <-c.consumers[1].Done():
	}
	if !c.closing.Load() && ctx.Err() == nil {
		c.log.ErrorContext(ctx, "instrument subscription ended, the cache loads every instrument from now on", "consumer", c.name)
	}
	c.stopTrusting()
}

// stopTrusting drops the cached instruments: without the subscription
// they could go stale.
func (c *Cache) stopTrusting() {
	c.live.Store(false)
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.items)
}

// apply refreshes the cache from an event's instrument.
func (c *Cache) apply(in *metadatav1.Instrument) error {
	if in.GetSymbol() == "" {
		return streams.Permanent(errors.New("instrument event without an instrument"))
	}
	c.store(in)
	return nil
}

// store keeps in unless the cache holds a newer revision of it, and returns
// the entry the cache holds now. While the subscription is down it only
// wraps in.
func (c *Cache) store(in *metadatav1.Instrument) *entry {
	if !c.live.Load() {
		return newEntry(in)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.items[in.GetSymbol()]
	if cur != nil && cur.inst.GetRevision() >= in.GetRevision() {
		return cur
	}
	e := newEntry(in)
	c.items[in.GetSymbol()] = e
	return e
}

func newEntry(in *metadatav1.Instrument) *entry {
	r, err := NewRules(in)
	return &entry{inst: in, rules: r, rulesErr: err}
}

// Get returns the instrument symbol, from memory or else from the service.
// The result is shared: do not modify it (proto.Clone it to change a copy).
// An unknown symbol is an error wrapping ErrNotFound.
func (c *Cache) Get(ctx context.Context, symbol string) (*metadatav1.Instrument, error) {
	e, err := c.entry(ctx, symbol)
	if err != nil {
		return nil, err
	}
	return e.inst, nil
}

// List returns every instrument: from memory while the subscription keeps
// it current, else from the service. The results are shared: do not
// modify them.
func (c *Cache) List(ctx context.Context) ([]*metadatav1.Instrument, error) {
	var out []*metadatav1.Instrument
	if c.live.Load() {
		c.mu.RLock()
		for _, e := range c.items {
			out = append(out, e.inst)
		}
		c.mu.RUnlock()
		if len(out) > 0 {
			slices.SortFunc(out, func(a, b *metadatav1.Instrument) int { return strings.Compare(a.GetSymbol(), b.GetSymbol()) })
			return out, nil
		}
	}
	err := c.list(ctx, func(in *metadatav1.Instrument) { out = append(out, in) })
	return out, err
}

// Rules returns the trading rules of symbol as fixed-point integers, parsed
// once per revision.
func (c *Cache) Rules(ctx context.Context, symbol string) (Rules, error) {
	e, err := c.entry(ctx, symbol)
	if err != nil {
		return Rules{}, err
	}
	return e.rules, e.rulesErr
}

// Trades reports whether some instrument has asset as its base or quote
// asset: at once when an instrument held does, else from the service's
// list (an instrument created a moment ago may not have arrived yet).
func (c *Cache) Trades(ctx context.Context, asset string) (bool, error) {
	if c.live.Load() && c.holdsAsset(asset) {
		return true, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.loadTimeout)
	defer cancel()
	found := false
	err := c.list(ctx, func(in *metadatav1.Instrument) { found = found || tradesAsset(in, asset) })
	if err != nil {
		return false, fmt.Errorf("instruments trading %s: %w", asset, err)
	}
	return found, nil
}

func (c *Cache) holdsAsset(asset string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.items {
		if tradesAsset(e.inst, asset) {
			return true
		}
	}
	return false
}

func tradesAsset(in *metadatav1.Instrument, asset string) bool {
	return in.GetBaseAsset() == asset || in.GetQuoteAsset() == asset
}

// Len is the number of instruments held.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.items)
}

// entry returns the cached entry of symbol, loading it on a miss. Concurrent
// misses of one symbol share one load.
func (c *Cache) entry(ctx context.Context, symbol string) (*entry, error) {
	if c.live.Load() {
		c.mu.RLock()
		e := c.items[symbol]
		c.mu.RUnlock()
		if e != nil {
			return e, nil
		}
	}
	if err := streams.ValidateKey(symbol); err != nil {
		return nil, fmt.Errorf("instrument %q: %w", symbol, ErrNotFound) // not a topic key: cannot exist
	}
	// The load is shared, so it does not end with one caller's context;
	// each caller still stops waiting at its own.
	ch := c.loads.DoChan(symbol, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.loadTimeout)
		defer cancel()
		return c.load(lctx, symbol)
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("instrument %s: %w", symbol, ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		e, _ := r.Val.(*entry) // load returns *entry or an error
		return e, nil
	}
}

// load reads symbol from the service and stores it.
func (c *Cache) load(ctx context.Context, symbol string) (*entry, error) {
	res, err := c.client.GetInstrument(ctx, &metadatav1.GetInstrumentRequest{Symbol: symbol})
	switch code := connect.CodeOf(err); {
	case err == nil:
	case code == connect.CodeNotFound || code == connect.CodeInvalidArgument:
		return nil, fmt.Errorf("instrument %s: %w: %w", symbol, ErrNotFound, err)
	default:
		return nil, fmt.Errorf("load instrument %s: %w", symbol, err)
	}
	in := res.GetInstrument()
	if in.GetSymbol() != symbol {
		return nil, fmt.Errorf("load instrument %s: the service answered %q", symbol, in.GetSymbol())
	}
	return c.store(in), nil
}

// Close stops the subscription, waiting up to ctx for events in flight, and
// deletes the cache's consumers. The cache keeps answering Get by loading
// from the service.
func (c *Cache) Close(ctx context.Context) error {
	c.closing.Store(true)
	var errs []error
	for _, cons := range c.consumers {
		if err := cons.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	c.stopTrusting()
	for _, topic := range followedTopics() {
		if err := c.mesh.DeleteConsumer(ctx, topic, c.name); err != nil {
			errs = append(errs, fmt.Errorf("instruments: %w", err))
		}
	}
	return errors.Join(errs...)
}
