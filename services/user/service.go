package user

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/gen/go/tradex/user/v1/userv1connect"
	"github.com/tradex-mesh/tradex/streams"
)

// Deps are the service's dependencies.
type Deps struct {
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// Streams is the service's own connection to the mesh: its bucket and
	// auth.user.v1. Required.
	Streams *streams.Client
	// Clock stamps profile changes; nil is time.Now.
	Clock func() time.Time
}

// Service is the user service. Its methods are safe for concurrent use.
type Service struct {
	cfg     Config
	log     *slog.Logger
	streams *streams.Client
	now     func() time.Time

	kv        atomic.Pointer[streams.KV]
	ready     chan struct{}
	readyOnce sync.Once
}

// New checks cfg and deps and returns the service. It does no I/O.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Streams == nil {
		return nil, errors.New("user: Streams is required")
	}
	if st, err := deps.Streams.Catalog().Store(cfg.Bucket); err != nil || st.Kind != streams.KeyValue {
		return nil, fmt.Errorf("user: Bucket %q is not a KV store of the catalog", cfg.Bucket)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	return &Service{cfg: cfg, log: deps.Logger, streams: deps.Streams, now: func() time.Time { return deps.Clock().UTC() },
		ready: make(chan struct{})}, nil
}

// Handler returns the Connect handler of tradex.user.v1.UserService and
// the path to mount it on.
func (s *Service) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	return userv1connect.NewUserServiceHandler(s.InProcess(), opts...)
}

// InProcess returns the service's handler methods for a caller in the same
// process.
func (s *Service) InProcess() userv1connect.UserServiceHandler { return &handler{s: s} }

// Ready is closed once Run has opened the bucket and started consuming.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run opens the bucket and applies auth.user.v1 until ctx ends (nil).
func (s *Service) Run(ctx context.Context) error {
	var cons *streams.Consumer
	err := streams.RetryStart(ctx, s.log, "user start", func(ctx context.Context) error {
		kv, err := s.streams.KV(ctx, s.cfg.Bucket)
		if err != nil {
			return fmt.Errorf("open %s: %w", s.cfg.Bucket, err)
		}
		s.kv.Store(kv)
		cons, err = streams.Consume(ctx, s.streams, streams.TopicUserEvent,
			streams.ConsumerConfig{Name: s.cfg.ConsumerName, AckSync: true, Logger: s.log}, s.apply)
		return err
	})
	switch {
	case ctx.Err() != nil:
		return nil
	case err != nil:
		return fmt.Errorf("user start: %w", err)
	}
	s.readyOnce.Do(func() { close(s.ready) })
	s.log.InfoContext(ctx, "user service ready", "bucket", s.cfg.Bucket, "consumer", s.cfg.ConsumerName)
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return cons.Stop(stopCtx)
}

// casAttempts bounds the read-modify-write attempts of a profile change.
const casAttempts = 5

// profile reads a profile and its revision (ErrNotFound when absent).
func (s *Service) profile(ctx context.Context, id string) (Profile, uint64, error) {
	kv := s.kv.Load()
	if kv == nil {
		return Profile{}, 0, ErrNotReady
	}
	if err := streams.ValidateKey(id); err != nil {
		return Profile{}, 0, fmt.Errorf("%w: user %q", ErrNotFound, id)
	}
	e, err := kv.Get(ctx, "profile."+id)
	switch {
	case errors.Is(err, streams.ErrNotFound):
		return Profile{}, 0, fmt.Errorf("%w: no profile of user %s", ErrNotFound, id)
	case err != nil:
		return Profile{}, 0, err
	}
	var p Profile
	if err := json.Unmarshal(e.Value, &p); err != nil {
		return Profile{}, 0, fmt.Errorf("decode profile %s: %w", id, err)
	}
	return p, e.Revision, nil
}

// update applies fn to the profile of id (created from zero when absent
// and create is set) and stores it unless fn returns errUnchanged.
func (s *Service) update(ctx context.Context, id string, create bool, fn func(p *Profile) error) (Profile, error) {
	for attempt := 1; ; attempt++ {
		p, rev, err := s.profile(ctx, id)
		if errors.Is(err, ErrNotFound) && create {
			p, err = Profile{UserID: id}, nil
		}
		if err != nil {
			return Profile{}, err
		}
		if err := fn(&p); err != nil {
			if errors.Is(err, errUnchanged) {
				return p, nil
			}
			return Profile{}, err
		}
		b, err := json.Marshal(p)
		if err != nil {
			return Profile{}, fmt.Errorf("encode profile %s: %w", id, err)
		}
		kv := s.kv.Load()
		if rev == 0 {
			_, err = kv.Create(ctx, "profile."+id, b)
		} else {
			_, err = kv.Update(ctx, "profile."+id, b, rev)
		}
		if err == nil {
			return p, nil
		}
		concurrent := errors.Is(err, streams.ErrRevisionMismatch) || errors.Is(err, streams.ErrKeyExists)
		if !concurrent || attempt >= casAttempts {
			return Profile{}, fmt.Errorf("store profile %s: %w", id, err)
		}
	}
}

// errUnchanged tells update that fn left the profile as it was.
var errUnchanged = errors.New("unchanged")
