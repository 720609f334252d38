package marketdata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1/marketdatav1connect"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/internal/health"
	"github.com/tradex-mesh/tradex/streams"
)

// Instruments looks instruments up by symbol (internal/instruments
// implements it with a cache of the metadata service).
type Instruments interface {
	Get(ctx context.Context, symbol string) (*metadatav1.Instrument, error)
}

// Deps are the service's dependencies.
type Deps struct {
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// Streams is the service's own connection to the mesh: it reads
	// engine.event.v1 there and keeps its snapshots in the catalog store
	// Config.SnapshotBucket. Required.
	Streams *streams.Client
	// Instruments gives each instrument's scales. Required.
	Instruments Instruments
	// Publisher, if set, publishes every book change to md.book.v1 and
	// every trade to md.trade.v1 as they happen (give it
	// streams.WithSource("tradex/marketdata")).
	Publisher *streams.Publisher
	// Clock is the end of the ticker's 24-hour window; nil is time.Now.
	Clock func() time.Time
}

// mesh is what the service reads and keeps on the mesh; *streams.Client
// has it.
type mesh interface {
	LastSequence(ctx context.Context, topic string) (uint64, error)
	Follow(ctx context.Context, f streams.Follow, fn func(context.Context, streams.Stored) error) error
	Objects(ctx context.Context, name string) (*streams.Objects, error)
	DeadLetter(ctx context.Context, topic string, m streams.Stored, handler string, cause error) error
}

// Service is the market data service. Its methods are safe for concurrent
// use.
type Service struct {
	cfg   Config
	log   *slog.Logger
	mesh  mesh
	insts Instruments
	pub   *streams.Publisher
	now   func() time.Time
	st    *state

	ready     chan struct{}
	readyOnce sync.Once
	// serving is true while the state is caught up; false during a
	// rebuild (requests then fail with Unavailable, not with a partial
	// answer).
	serving atomic.Bool
	// progress of the rebuild, for Health: why it runs, the stream
	// sequence of the last event applied and the one it must reach.
	why             atomic.Pointer[string]
	applied, target atomic.Uint64
	stopped         chan struct{}
}

// New checks cfg and deps and returns the service. It does no I/O.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case deps.Streams == nil:
		return nil, errors.New("marketdata: Streams is required")
	case deps.Instruments == nil:
		return nil, errors.New("marketdata: Instruments is required")
	}
	if cfg.SnapshotEvery > 0 {
		if _, err := deps.Streams.Catalog().Store(cfg.SnapshotBucket); err != nil {
			return nil, fmt.Errorf("marketdata: SnapshotBucket: %w", err)
		}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	s := &Service{
		cfg: cfg, log: deps.Logger, mesh: deps.Streams, insts: deps.Instruments, pub: deps.Publisher, now: deps.Clock,
		st: newState(cfg), ready: make(chan struct{}), stopped: make(chan struct{}),
	}
	s.setWhy("reading " + streams.TopicEngineEvent)
	return s, nil
}

// Handler returns the Connect handler of tradex.marketdata.v1.MarketDataService
// and the path to mount it on.
func (s *Service) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	return marketdatav1connect.NewMarketDataServiceHandler(s.InProcess(), opts...)
}

// InProcess returns the handler methods for a caller in the same process.
func (s *Service) InProcess() marketdatav1connect.MarketDataServiceHandler { return &handler{s: s} }

// Ready is closed once Run has read every engine event the stream held when
// it started; requests before it fail with Unavailable.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run reads engine.event.v1 from its start and keeps following it until
// ctx ends (rebuilding the state after a gap or while the broker is away,
// waiting by streams.Backoff); it returns nil then. Open server streams
// end with Unavailable. Call it once.
func (s *Service) Run(ctx context.Context) error {
	defer close(s.stopped)
	for attempt := 0; ; attempt++ {
		err := s.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if s.interrupted(err) {
			attempt = 0 // it had caught up: a new failure, not the last one again
		}
		delay := streams.Backoff(attempt)
		s.log.WarnContext(ctx, "market data feed interrupted, rebuilding", "err", err, "retry_in", delay)
		if streams.Sleep(ctx, delay) != nil {
			return nil
		}
	}
}

// interrupted records why the feed stopped and stops serving until the
// rebuild is done; it reports whether the service was serving.
func (s *Service) interrupted(err error) bool {
	why := "feed ended"
	if err != nil {
		why = "feed interrupted: " + err.Error()
	}
	s.setWhy(why)
	return s.serving.Swap(false)
}

func (s *Service) setWhy(why string) { s.why.Store(&why) }

// Health reports whether the service serves: Starting until its first
// rebuild is done, Rebuilding while it rebuilds again (after a lost feed),
// Ready otherwise. The detail says why and
// how far the rebuild got.
func (s *Service) Health() health.Status {
	if s.serving.Load() {
		return health.Status{State: health.Ready}
	}
	state := health.Starting
	select {
	case <-s.ready:
		state = health.Rebuilding
	default:
	}
	detail := *s.why.Load()
	if target := s.target.Load(); target > 0 {
		detail = fmt.Sprintf("%s; applied %d of %d events", detail, s.applied.Load(), target)
	}
	return health.Status{State: state, Detail: detail}
}

func (s *Service) checkReady() error {
	if !s.serving.Load() {
		return ErrNotReady
	}
	return nil
}
