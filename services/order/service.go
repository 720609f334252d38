package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"

	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/order/v1/orderv1connect"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/instruments"
	"github.com/tradex-mesh/tradex/streams"
)

// Instruments looks instruments and their trading rules up by symbol
// (internal/instruments.Cache implements it). An unknown symbol is an
// error wrapping instruments.ErrNotFound.
type Instruments interface {
	Get(ctx context.Context, symbol string) (*metadatav1.Instrument, error)
	Rules(ctx context.Context, symbol string) (instruments.Rules, error)
}

// Wallet is what the service needs of the wallet:
// walletv1connect.WalletServiceClient has it, and so does the wallet
// service's in-process handler.
type Wallet interface {
	HoldBalance(ctx context.Context, req *walletv1.HoldBalanceRequest) (*walletv1.HoldBalanceResponse, error)
	ReleaseHold(ctx context.Context, req *walletv1.ReleaseHoldRequest) (*walletv1.ReleaseHoldResponse, error)
}

// Deps are the service's dependencies.
type Deps struct {
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// JetStream holds the order bucket and the engine topics. Required.
	JetStream jetstream.JetStream
	// Publisher writes engine commands (give it
	// streams.WithSource("tradex/order")). Required.
	Publisher *streams.Publisher
	// Instruments gives an instrument's rules, kind and assets. Required.
	Instruments Instruments
	// Wallet holds and releases order funds. Required.
	Wallet Wallet
	// Clock stamps orders and commands; nil is time.Now.
	Clock func() time.Time
}

// Service is the order service. Its methods are safe for concurrent use.
type Service struct {
	cfg    Config
	log    *slog.Logger
	js     jetstream.JetStream
	pub    *streams.Publisher
	insts  Instruments
	wallet Wallet
	now    func() time.Time
	st     *store
	ids    *idGenerator

	ready     chan struct{}
	readyOnce sync.Once
	stopped   chan struct{} // closed when Run returns: watches end
}

// New checks cfg and deps and returns the service. It does no I/O: Run
// opens the bucket, loads the orders and follows the engine.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case deps.JetStream == nil:
		return nil, errors.New("order: JetStream is required")
	case deps.Publisher == nil:
		return nil, errors.New("order: Publisher is required")
	case deps.Instruments == nil:
		return nil, errors.New("order: Instruments is required")
	case deps.Wallet == nil:
		return nil, errors.New("order: Wallet is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	clock := deps.Clock
	now := func() time.Time { return clock().UTC() }
	return &Service{
		cfg: cfg, log: deps.Logger, js: deps.JetStream, pub: deps.Publisher,
		insts: deps.Instruments, wallet: deps.Wallet, now: now,
		st: newStore(), ids: newIDGenerator(now), ready: make(chan struct{}), stopped: make(chan struct{}),
	}, nil
}

// Handler returns the Connect handler of tradex.order.v1.OrderService and
// the path to mount it on.
func (s *Service) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	return orderv1connect.NewOrderServiceHandler(s.InProcess(), opts...)
}

// InProcess returns the handler methods for a caller in the same process;
// they return the same Connect errors as over the network.
func (s *Service) InProcess() orderv1connect.OrderServiceHandler { return &handler{s: s} }

// Ready is closed once Run has loaded the orders; requests before it fail
// with Unavailable.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run opens the order bucket (retrying while the broker is away), loads the
// orders, then follows engine.event.v1 until ctx ends. It returns nil when
// ctx ends. Call it once.
func (s *Service) Run(ctx context.Context) error {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		err := s.st.open(ctx, s.js, s.cfg)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		s.log.WarnContext(ctx, "order bucket not available, retrying", "error", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	defer close(s.stopped)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loaded := make(chan struct{})
	var once sync.Once
	followed := make(chan error, 1)
	go func() {
		followed <- s.st.follow(ctx, func() { once.Do(func() { close(loaded) }) })
	}()
	select {
	case <-ctx.Done():
		return nil
	case err := <-followed:
		return fmt.Errorf("order: load orders: %w", err)
	case <-loaded:
	}
	c, err := s.consume(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("order: consume %s: %w", streams.TopicEngineEvent, err)
	}
	s.readyOnce.Do(func() { close(s.ready) })
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-followed:
		if ctx.Err() == nil {
			runErr = fmt.Errorf("order: follow orders: %w", err)
		}
	}
	cancel()
	stopCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer stop()
	if err := c.Stop(stopCtx); err != nil {
		return errors.Join(runErr, fmt.Errorf("order: stop consumer: %w", err))
	}
	return runErr
}

func (s *Service) checkReady() error {
	select {
	case <-s.ready:
		return nil
	default:
		return ErrNotReady
	}
}
