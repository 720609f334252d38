package matching

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/tradex-mesh/tradex/streams"
)

// Deps are the service's dependencies.
type Deps struct {
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// Streams is the service's own connection to the mesh. Required.
	Streams *streams.Client
	// Publisher publishes the engine events (give it
	// streams.WithSource("tradex/matching")). Required.
	Publisher *streams.Publisher
}

// Service is the matching engine: the single writer of each instrument it serves.
type Service struct {
	cfg    Config
	log    *slog.Logger
	client *streams.Client
	reader streamReader
	events events
	snaps  *snapshots

	mu    sync.Mutex
	slots map[string]*slot

	ready     chan struct{}
	readyOnce sync.Once
}

// New checks cfg and deps and returns the service. It does no I/O; Run does.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case deps.Streams == nil:
		return nil, errors.New("matching: Streams is required")
	case deps.Publisher == nil:
		return nil, errors.New("matching: Publisher is required")
	}
	if _, err := deps.Streams.Catalog().Store(cfg.SnapshotBucket); err != nil {
		return nil, fmt.Errorf("matching config: snapshot bucket: %w", err)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{
		cfg:    cfg,
		log:    deps.Logger,
		client: deps.Streams,
		reader: deps.Streams,
		events: events{pub: deps.Publisher},
		slots:  make(map[string]*slot),
		ready:  make(chan struct{}),
	}, nil
}

// Ready is closed once Run has opened the snapshot bucket and its consumers exist.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run opens the snapshot bucket and matches commands until ctx ends; then it lets the
// commands in flight finish (within Config.ShutdownTimeout) and returns nil. Failures
// at start are retried with backoff (streams.RetryStart). Each instrument is recovered
// on its first command (see recover.go). Call it once.
func (s *Service) Run(ctx context.Context) error {
	var consumers []*streams.Consumer
	err := streams.RetryStart(ctx, s.log, "matching start", func(ctx context.Context) error {
		cs, err := s.start(ctx)
		consumers = cs
		return err
	})
	switch {
	case err != nil && ctx.Err() != nil:
		return nil // shut down while starting
	case err != nil:
		return fmt.Errorf("matching start: %w", err)
	}
	s.readyOnce.Do(func() { close(s.ready) })
	s.log.InfoContext(ctx, "matching service ready", "instruments", s.cfg.Instruments,
		"consumers", len(consumers), "snapshot_interval", s.cfg.SnapshotInterval)
	<-ctx.Done()
	s.stop(ctx, consumers)
	return nil
}

// start opens the bucket and starts the consumers.
func (s *Service) start(ctx context.Context) ([]*streams.Consumer, error) {
	snaps, err := openSnapshots(ctx, s.client, s.cfg)
	if err != nil {
		return nil, err
	}
	s.snaps = snaps
	return s.consume(ctx)
}
