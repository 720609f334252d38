package marketdata

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1/marketdatav1connect"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
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
	// JetStream holds engine.event.v1. Required.
	JetStream jetstream.JetStream
	// Instruments gives each instrument's scales. Required.
	Instruments Instruments
	// Publisher, if set, publishes every book change to md.book.v1 and
	// every trade to md.trade.v1 as they happen (give it
	// streams.WithSource("tradex/marketdata")).
	Publisher *streams.Publisher
	// Clock is the end of the ticker's 24-hour window; nil is time.Now.
	Clock func() time.Time
}

// Service is the market data service. Its methods are safe for concurrent
// use.
type Service struct {
	cfg   Config
	log   *slog.Logger
	js    jetstream.JetStream
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
	stopped chan struct{}
}

// New checks cfg and deps and returns the service. It does no I/O.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case deps.JetStream == nil:
		return nil, errors.New("marketdata: JetStream is required")
	case deps.Instruments == nil:
		return nil, errors.New("marketdata: Instruments is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	return &Service{
		cfg: cfg, log: deps.Logger, js: deps.JetStream, insts: deps.Instruments, pub: deps.Publisher, now: deps.Clock,
		st: newState(cfg), ready: make(chan struct{}), stopped: make(chan struct{}),
	}, nil
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
// ctx ends (retrying while the broker is away); it returns nil then. Open
// server streams end with Unavailable. Call it once.
func (s *Service) Run(ctx context.Context) error {
	defer close(s.stopped)
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		err := s.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		s.log.WarnContext(ctx, "market data feed interrupted, rebuilding", "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (s *Service) checkReady() error {
	if !s.serving.Load() {
		return ErrNotReady
	}
	return nil
}
