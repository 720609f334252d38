package auth

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

	"github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1/authv1connect"
	"github.com/tradex-mesh/tradex/streams"
)

// Deps are the service's dependencies.
type Deps struct {
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// Streams is the service's own connection to the mesh: its bucket.
	// Required.
	Streams *streams.Client
	// Publisher publishes auth.user.v1 (give it
	// streams.WithSource("tradex/auth")). Required.
	Publisher *streams.Publisher
	// Clock stamps records and tokens; nil is time.Now.
	Clock func() time.Time
}

// Service is the auth service. Its methods are safe for concurrent use.
type Service struct {
	cfg      Config
	log      *slog.Logger
	streams  *streams.Client
	pub      *streams.Publisher
	now      func() time.Time
	seal     sealer
	throttle *throttle
	dummy    string // a password hash checked for unknown emails, so they take as long

	st   store
	open atomic.Bool
	ring atomic.Pointer[keyring]

	// userMu serialises the changes of one user (record, then event), so
	// that its events leave in revision order from this process.
	userMu sync.Map // user id -> *sync.Mutex

	ready     chan struct{}
	readyOnce sync.Once
}

// New checks cfg and deps and returns the service. It does no I/O: Run
// opens the bucket.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case deps.Streams == nil:
		return nil, errors.New("auth: Streams is required")
	case deps.Publisher == nil:
		return nil, errors.New("auth: Publisher is required")
	}
	if st, err := deps.Streams.Catalog().Store(cfg.Bucket); err != nil || st.Kind != streams.KeyValue {
		return nil, fmt.Errorf("auth: Bucket %q is not a KV store of the catalog", cfg.Bucket)
	}
	seal, err := newSealer(cfg.MasterKey)
	if err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	dummy, err := hashPassword("an unknown email takes as long as a wrong password", cfg)
	if err != nil {
		return nil, err
	}
	return &Service{
		cfg: cfg, log: deps.Logger, streams: deps.Streams, pub: deps.Publisher,
		now:      func() time.Time { return deps.Clock().UTC() },
		seal:     seal,
		throttle: newThrottle(cfg.LoginFailures, cfg.LoginWindow),
		dummy:    dummy,
		ready:    make(chan struct{}),
	}, nil
}

// Handler returns the Connect handler of tradex.auth.v1.AuthService and
// the path to mount it on.
func (s *Service) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	return authv1connect.NewAuthServiceHandler(s.InProcess(), opts...)
}

// InProcess returns the service's handler methods for a caller in the same
// process.
func (s *Service) InProcess() authv1connect.AuthServiceHandler { return &handler{s: s} }

// Ready is closed once Run has opened the bucket, has a signing key and
// has published the events a crash left unpublished.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run opens the bucket, makes sure a signing key exists and publishes any
// user event left unpublished, retrying with backoff; then it waits for
// ctx. It returns nil when ctx ends. Call it once.
func (s *Service) Run(ctx context.Context) error {
	err := streams.RetryStart(ctx, s.log, "auth start", s.start)
	switch {
	case ctx.Err() != nil:
		return nil
	case err != nil:
		return fmt.Errorf("auth start: %w", err)
	}
	s.readyOnce.Do(func() { close(s.ready) })
	s.log.InfoContext(ctx, "auth service ready", "bucket", s.cfg.Bucket, "issuer", s.cfg.Issuer)
	<-ctx.Done()
	return nil
}

func (s *Service) start(ctx context.Context) error {
	kv, err := s.streams.KV(ctx, s.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("open %s: %w", s.cfg.Bucket, err)
	}
	s.st = store{b: kv}
	s.open.Store(true)
	if _, err := s.keys(ctx); err != nil {
		return err
	}
	return s.republish(ctx)
}

// opened is ErrNotReady until Run opened the bucket.
func (s *Service) opened() error {
	if !s.open.Load() {
		return ErrNotReady
	}
	return nil
}

// lockUser serialises the changes of one user; call the returned func to
// unlock.
func (s *Service) lockUser(id string) func() {
	m, _ := s.userMu.LoadOrStore(id, &sync.Mutex{})
	mu := m.(*sync.Mutex) //nolint:forcetypeassert // only *sync.Mutex is stored
	mu.Lock()
	return mu.Unlock
}
