package order

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
	// List returns every instrument (for the perpetuals' funding ticks).
	List(ctx context.Context) ([]*metadatav1.Instrument, error)
}

// Wallet is what the service needs of the wallet:
// walletv1connect.WalletServiceClient has it, and so does the wallet
// service's in-process handler.
type Wallet interface {
	HoldBalance(ctx context.Context, req *walletv1.HoldBalanceRequest) (*walletv1.HoldBalanceResponse, error)
	ReleaseHold(ctx context.Context, req *walletv1.ReleaseHoldRequest) (*walletv1.ReleaseHoldResponse, error)
	ListHolds(ctx context.Context, req *walletv1.ListHoldsRequest) (*walletv1.ListHoldsResponse, error)
}

// Deps are the service's dependencies.
type Deps struct {
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// Streams is the service's own connection to the mesh: the order
	// bucket, the engine topics. Required.
	Streams *streams.Client
	// Publisher writes engine commands (give it
	// streams.WithSource("tradex/order")). Required.
	Publisher *streams.Publisher
	// Instruments gives an instrument's rules, kind and assets. Required.
	Instruments Instruments
	// Wallet holds and releases order funds. Required.
	Wallet Wallet
	// Backlog reads how many messages settlement has not acknowledged
	// yet (the engine's, the wallet's and the order-state consumers'); nil
	// turns backpressure off (Config.MaxBacklog).
	Backlog func(ctx context.Context) (uint64, error)
	// Books reads the index instruments' books for the funding ticks; nil
	// sends ticks without an index (the mark serves).
	Books Books
	// Clock stamps orders and commands; nil is time.Now.
	Clock func() time.Time
}

// commandReader reads an engine command back by its stream sequence
// (*streams.Client has it).
type commandReader interface {
	Get(ctx context.Context, topic string, seq uint64) (streams.Stored, error)
}

// Service is the order service. Its methods are safe for concurrent use.
type Service struct {
	cfg      Config
	log      *slog.Logger
	mesh     *streams.Client
	commands commandReader // engine.order.v1, to recover an order from its submit
	pub      *streams.Publisher
	insts    Instruments
	books    Books
	wallet   Wallet
	now      func() time.Time
	st       *store
	runs     *runs // applies engine events to the orders
	ids      *idGenerator

	// backlogOf reads settlement's backlog; backlog is the last read
	// (backpressure.go).
	backlogOf func(ctx context.Context) (uint64, error)
	backlog   atomic.Uint64

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
	case deps.Streams == nil:
		return nil, errors.New("order: Streams is required")
	case deps.Publisher == nil:
		return nil, errors.New("order: Publisher is required")
	case deps.Instruments == nil:
		return nil, errors.New("order: Instruments is required")
	case deps.Wallet == nil:
		return nil, errors.New("order: Wallet is required")
	}
	if err := checkBucket(deps.Streams.Catalog(), cfg.Bucket); err != nil {
		return nil, fmt.Errorf("order: Bucket: %w", err)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	clock := deps.Clock
	now := func() time.Time { return clock().UTC() }
	s := &Service{
		cfg: cfg, log: deps.Logger, mesh: deps.Streams, commands: deps.Streams, pub: deps.Publisher,
		insts: deps.Instruments, books: deps.Books, wallet: deps.Wallet, now: now, backlogOf: deps.Backlog,
		st: newStore(), ids: newIDGenerator(now), ready: make(chan struct{}), stopped: make(chan struct{}),
	}
	s.runs = newRuns(s.st, s.recover)
	return s, nil
}

// checkBucket checks that name is a KV store of the catalog.
func checkBucket(catalog *streams.Catalog, name string) error {
	st, err := catalog.Store(name)
	if err == nil && st.Kind != streams.KeyValue {
		err = fmt.Errorf("%w: %s is a %s, not a kv bucket", streams.ErrInvalidConfig, name, st.Kind)
	}
	return err
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
	err := streams.RetryStart(ctx, s.log, "open order bucket", func(ctx context.Context) error {
		kv, err := s.mesh.KV(ctx, s.cfg.Bucket)
		if err != nil {
			return err
		}
		s.st.kv = kv
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("order: open bucket %s: %w", s.cfg.Bucket, err)
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
	if s.backlogOf != nil && s.cfg.MaxBacklog > 0 {
		go s.watchBacklog(ctx)
	}
	if s.cfg.SweepEvery > 0 {
		go s.sweepLoop(ctx)
	}
	if s.cfg.FundingEvery > 0 {
		go s.fundingLoop(ctx)
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
