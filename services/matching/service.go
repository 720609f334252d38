package matching

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/streams"
)

// Deps are the service's dependencies.
type Deps struct {
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// JetStream holds the streams and the snapshot bucket. Required.
	JetStream jetstream.JetStream
	// Publisher publishes the engine events (give it
	// streams.WithSource("tradex/matching")). Required.
	Publisher *streams.Publisher
	// Catalog is the topic catalog; nil is streams.DefaultCatalog().
	Catalog *streams.Catalog
	// Clock is unused by matching itself (event times are the commands' stream times,
	// so replay is deterministic); it is here for the shape every service shares.
	Clock func() time.Time
}

// Service is the matching engine: the single writer of each instrument it serves.
type Service struct {
	cfg     Config
	log     *slog.Logger
	js      jetstream.JetStream
	catalog *streams.Catalog
	events  events
	snaps   *snapshots

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
	case deps.JetStream == nil:
		return nil, errors.New("matching: JetStream is required")
	case deps.Publisher == nil:
		return nil, errors.New("matching: Publisher is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Catalog == nil {
		deps.Catalog = streams.DefaultCatalog()
	}
	return &Service{
		cfg:     cfg,
		log:     deps.Logger,
		js:      deps.JetStream,
		catalog: deps.Catalog,
		events:  events{pub: deps.Publisher},
		slots:   make(map[string]*slot),
		ready:   make(chan struct{}),
	}, nil
}

// Ready is closed once Run has opened the snapshot bucket and its consumers exist.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run opens the snapshot bucket and matches commands until ctx ends; then it lets the
// commands in flight finish (within Config.ShutdownTimeout) and returns nil. Failures
// at start are retried with backoff. Each instrument is recovered on its first command
// (see recover.go). Call it once.
func (s *Service) Run(ctx context.Context) error {
	var consumers []*streams.Consumer
	for attempt := 0; ; attempt++ {
		err := s.start(ctx, &consumers)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		delay := min(100*time.Millisecond<<min(attempt, 7), 10*time.Second)
		s.log.WarnContext(ctx, "matching start failed, retrying", "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	s.readyOnce.Do(func() { close(s.ready) })
	s.log.InfoContext(ctx, "matching service ready", "instruments", s.cfg.Instruments,
		"consumers", len(consumers), "snapshot_interval", s.cfg.SnapshotInterval)
	<-ctx.Done()
	s.stop(ctx, consumers)
	return nil
}

// start opens the bucket and starts the consumers.
func (s *Service) start(ctx context.Context, consumers *[]*streams.Consumer) error {
	snaps, err := openSnapshots(ctx, s.js, s.cfg)
	if err != nil {
		return err
	}
	s.snaps = snaps
	cs, err := s.consume(ctx)
	if err != nil {
		return err
	}
	*consumers = cs
	return nil
}
