package wallet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"

	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/streams"
)

// Instruments looks instruments up by symbol (internal/instruments
// implements it with a cache of the metadata service).
type Instruments interface {
	Get(ctx context.Context, symbol string) (*metadatav1.Instrument, error)
	// Trades reports whether some instrument has asset as its base or
	// quote asset.
	Trades(ctx context.Context, asset string) (bool, error)
}

// Deps are the service's dependencies.
type Deps struct {
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// Streams is the service's own connection to the mesh: the journal,
	// the engine events and the snapshot store. Required.
	Streams *streams.Client
	// Publisher appends to the journal (give it
	// streams.WithSource("tradex/wallet")). Required.
	Publisher *streams.Publisher
	// Instruments gives the base and quote assets and the scales of an
	// instrument, for settlement. Required.
	Instruments Instruments
	// Clock stamps journal entries; nil is time.Now.
	Clock func() time.Time
}

// Service is the wallet service. Its methods are safe for concurrent use.
type Service struct {
	cfg     Config
	log     *slog.Logger
	streams *streams.Client
	insts   Instruments
	st      *store

	// through is, by instrument, the last engine sequence this instance
	// settled or found nothing to settle in (settle).
	coverMu sync.Mutex
	through map[string]uint64
	marks   map[string]mark // by instrument (noteMark)

	ready     chan struct{}
	readyOnce sync.Once
}

// New checks cfg and deps and returns the service. It does no I/O: Run
// rebuilds the state and starts settlement.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case deps.Streams == nil:
		return nil, errors.New("wallet: Streams is required")
	case deps.Publisher == nil:
		return nil, errors.New("wallet: Publisher is required")
	case deps.Instruments == nil:
		return nil, errors.New("wallet: Instruments is required")
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
		cfg: cfg, log: deps.Logger, streams: deps.Streams, insts: deps.Instruments,
		st:      newStore(cfg, deps.Logger, deps.Streams, deps.Publisher, now),
		through: map[string]uint64{}, marks: map[string]mark{}, ready: make(chan struct{}),
	}, nil
}

// Handler returns the Connect handler of tradex.wallet.v1.WalletService and
// the path to mount it on.
func (s *Service) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	return walletv1connect.NewWalletServiceHandler(s.InProcess(), opts...)
}

// InProcess returns the handler methods for a caller in the same process;
// they return the same Connect errors as over the network.
func (s *Service) InProcess() walletv1connect.WalletServiceHandler { return &handler{s: s} }

// Ready is closed once Run has rebuilt the state; requests before it fail
// with Unavailable.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run rebuilds the state from the latest snapshot and the journal after
// it (retrying with streams.Backoff while the broker is away; a corrupt
// journal, or a snapshot store or journal topic the catalog does not
// declare, is an error), then settles engine events until ctx ends. It
// returns nil when ctx ends. Call it once.
func (s *Service) Run(ctx context.Context) error {
	if err := streams.RetryStart(ctx, s.log, "wallet rebuild", s.open); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("wallet: rebuild state: %w", err)
	}
	s.readyOnce.Do(func() { close(s.ready) })
	loopCtx, stopLoop := context.WithCancel(ctx)
	snapped := make(chan struct{})
	go func() {
		defer close(snapped)
		s.st.snapshotLoop(loopCtx)
	}()
	defer func() { stopLoop(); <-snapped }()
	s.st.read(func(b *Book) {
		s.log.InfoContext(ctx, "wallet state rebuilt", "journal_sequence", b.Applied(), "accounts", len(b.accounts))
	})
	c, err := s.consume(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("wallet: consume %s: %w", streams.TopicEngineEvent, err)
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.Stop(stopCtx); err != nil {
		return fmt.Errorf("wallet: stop settlement: %w", err)
	}
	return nil
}

// open rebuilds the state once; errors that retrying cannot cure are
// streams.Permanent.
func (s *Service) open(ctx context.Context) error {
	err := s.st.open(ctx)
	if errors.Is(err, ErrCorruptJournal) || errors.Is(err, streams.ErrUnknownStore) ||
		errors.Is(err, streams.ErrUnknownTopic) || errors.Is(err, streams.ErrInvalidConfig) {
		return streams.Permanent(err)
	}
	return err
}

// Snapshot stores a snapshot of the state now (it is also written every
// Config.SnapshotEvery entries).
func (s *Service) Snapshot(ctx context.Context) error {
	if err := s.checkReady(); err != nil {
		return err
	}
	return s.st.Snapshot(ctx)
}

func (s *Service) checkReady() error {
	select {
	case <-s.ready:
		return nil
	default:
		return ErrNotReady
	}
}
