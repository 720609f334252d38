package platform

import (
	"context"
	"errors"
	"fmt"

	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/internal/instruments"
	"github.com/tradex-mesh/tradex/streams"
)

// errNoCache is a lookup before the instrument cache started.
var errNoCache = errors.New("instrument cache not started")

// cacheRef is the process's one instrument cache, handed to the services
// before it starts: a lookup waits for it.
type cacheRef struct {
	client instruments.Client
	ready  chan struct{}
	cache  *instruments.Cache
	closer func()
}

func newCacheRef(client instruments.Client) *cacheRef {
	return &cacheRef{client: client, ready: make(chan struct{})}
}

// start creates the cache on a connection of its own.
func (r *cacheRef) start(ctx context.Context, p *Platform) error {
	conn, err := p.dial(UserInstruments)
	if err != nil {
		return fmt.Errorf("instrument cache: connect: %w", err)
	}
	mesh, err := streams.Connect(conn, p.catalog)
	if err != nil {
		conn.Close()
		return fmt.Errorf("instrument cache: %w", err)
	}
	cache, err := instruments.New(ctx, r.client, mesh,
		instruments.WithLogger(p.log.With("component", "instruments")), instruments.WithConsumerName("tradex-instruments"))
	if err != nil {
		conn.Close()
		return fmt.Errorf("instrument cache: %w", err)
	}
	r.cache, r.closer = cache, conn.Close
	close(r.ready)
	return nil
}

// stop closes the cache (its consumers are deleted) and its connection.
func (r *cacheRef) stop(ctx context.Context) error {
	if r.cache == nil {
		return nil
	}
	defer r.closer()
	if err := r.cache.Close(ctx); err != nil {
		return fmt.Errorf("instrument cache: %w", err)
	}
	return nil
}

// Get waits for the cache, then looks symbol up.
func (r *cacheRef) Get(ctx context.Context, symbol string) (*metadatav1.Instrument, error) {
	if err := r.wait(ctx, symbol); err != nil {
		return nil, err
	}
	return r.cache.Get(ctx, symbol)
}

// Rules waits for the cache, then returns the trading rules of symbol.
func (r *cacheRef) Rules(ctx context.Context, symbol string) (instruments.Rules, error) {
	if err := r.wait(ctx, symbol); err != nil {
		return instruments.Rules{}, err
	}
	return r.cache.Rules(ctx, symbol)
}

// Trades waits for the cache, then reports whether some instrument
// trades asset.
func (r *cacheRef) Trades(ctx context.Context, asset string) (bool, error) {
	if err := r.wait(ctx, asset); err != nil {
		return false, err
	}
	return r.cache.Trades(ctx, asset)
}

// List waits for the cache, then returns every instrument.
func (r *cacheRef) List(ctx context.Context) ([]*metadatav1.Instrument, error) {
	if err := r.wait(ctx, "list"); err != nil {
		return nil, err
	}
	return r.cache.List(ctx)
}

func (r *cacheRef) wait(ctx context.Context, symbol string) error {
	select {
	case <-r.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("instrument %s: %w: %w", symbol, errNoCache, ctx.Err())
	}
}
