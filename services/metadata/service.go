package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	"github.com/tradex-mesh/tradex/streams"
)

// Deps are the service's dependencies.
type Deps struct {
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// Streams is the service's own connection to the mesh: the buckets
	// (Config.InstrumentsBucket and Config.ConfigBucket, KV stores of its
	// catalog) and the event streams the repair reads. Required.
	Streams *streams.Client
	// Publisher publishes the service's events (give it
	// streams.WithSource("tradex/metadata")). Required.
	Publisher *streams.Publisher
	// Clock stamps created_at, updated_at and changed_at; nil is time.Now.
	Clock func() time.Time
	// Actor names who makes a request (the authenticated user or calling
	// service, from ctx) for the events' audit trail; nil or "" is
	// Config.Actor.
	Actor func(ctx context.Context) string
}

// Service is the metadata service: instruments and runtime configuration.
// Its methods are safe for concurrent use.
type Service struct {
	cfg     Config
	log     *slog.Logger
	streams *streams.Client
	events  events
	now     func() time.Time
	actorf  func(context.Context) string

	openMu sync.Mutex
	st     atomic.Pointer[store]

	// writeMu makes each change (store write, then its event) one step in
	// this process, so its events leave in revision order and the repair
	// never sees a change whose event is still being published here.
	writeMu sync.Mutex

	repairNeeded chan struct{} // a publish failed; 1-buffered
	ready        chan struct{} // closed when Run has opened the store and seeded
	readyOnce    sync.Once
	stopping     chan struct{} // closed when Run returns: ends watch streams
	stopOnce     sync.Once
}

// New checks cfg and deps and returns the service. It does no I/O: Run
// opens the buckets and seeds the instruments, and a request that comes
// first opens the buckets itself.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case deps.Streams == nil:
		return nil, errors.New("metadata: Streams is required")
	case deps.Publisher == nil:
		return nil, errors.New("metadata: Publisher is required")
	}
	for _, name := range []string{cfg.InstrumentsBucket, cfg.ConfigBucket} {
		if err := checkBucket(deps.Streams.Catalog(), name); err != nil {
			return nil, err
		}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	return &Service{
		cfg:          cfg,
		log:          deps.Logger,
		streams:      deps.Streams,
		events:       events{pub: deps.Publisher},
		now:          func() time.Time { return deps.Clock().UTC() },
		actorf:       deps.Actor,
		repairNeeded: make(chan struct{}, 1),
		ready:        make(chan struct{}),
		stopping:     make(chan struct{}),
	}, nil
}

// Handler returns the Connect handler of tradex.metadata.v1.MetadataService
// and the path to mount it on.
func (s *Service) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	return metadatav1connect.NewMetadataServiceHandler(s.InProcess(), opts...)
}

// InProcess returns the service's handler methods, for a caller in the same
// process: the unary methods have the shape of the generated client
// (metadatav1connect.MetadataServiceClient) and return the same Connect
// errors as over the network.
func (s *Service) InProcess() metadatav1connect.MetadataServiceHandler { return &handler{s: s} }

// Ready is closed once Run has opened the buckets and every seed
// instrument exists.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run opens the buckets, creates the missing seed instruments, publishes
// any event a crash left unpublished, and then keeps repairing missed
// events (after a failed publish and every RepairInterval) until ctx ends.
// Failures at start are retried with backoff. It returns nil when ctx
// ends; open WatchConfig streams end then too, with Unavailable. Call it
// once.
func (s *Service) Run(ctx context.Context) error {
	defer s.stopOnce.Do(func() { close(s.stopping) })
	err := streams.RetryStart(ctx, s.log, "metadata start", s.start)
	switch {
	case ctx.Err() != nil:
		return nil
	case err != nil:
		return fmt.Errorf("metadata start: %w", err)
	}
	s.readyOnce.Do(func() { close(s.ready) })
	s.log.InfoContext(ctx, "metadata service ready",
		"instruments_bucket", s.cfg.InstrumentsBucket, "config_bucket", s.cfg.ConfigBucket, "seed", len(s.cfg.Seed))

	var tick <-chan time.Time
	if s.cfg.RepairInterval > 0 {
		t := time.NewTicker(s.cfg.RepairInterval)
		defer t.Stop()
		tick = t.C
	}
	var retry <-chan time.Time
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.repairNeeded:
		case <-tick:
		case <-retry:
		}
		retry = nil
		if err := s.repair(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			delay := streams.Backoff(failures)
			failures++
			s.log.WarnContext(ctx, "metadata event repair failed, retrying", "err", err, "retry_in", delay)
			retry = time.After(delay)
			continue
		}
		failures = 0
	}
}

// start opens the store, seeds and repairs once.
func (s *Service) start(ctx context.Context) error {
	if _, err := s.store(ctx); err != nil {
		return err
	}
	if err := s.seed(ctx); err != nil {
		return err
	}
	return s.repair(ctx)
}

// seed creates the seed instruments that do not exist; existing ones are
// left as they are, and publish nothing, except that a seed perpetual
// stored before perpetuals had contract rules gets the seed's.
func (s *Service) seed(ctx context.Context) error {
	for _, spec := range s.cfg.Seed {
		in, err := s.createInstrument(ctx, spec, s.cfg.Actor)
		switch {
		case errors.Is(err, ErrAlreadyExists):
			if err := s.seedRules(ctx, spec); err != nil {
				return fmt.Errorf("seed the contract rules of %s: %w", spec.Symbol, err)
			}
			continue
		case err != nil:
			return fmt.Errorf("seed instrument %s: %w", spec.Symbol, err)
		}
		s.log.InfoContext(ctx, "instrument seeded", "symbol", in.Symbol, "kind", in.Kind.String())
	}
	return nil
}

// seedRules gives spec's perpetual the seed's contract rules if it has
// none.
func (s *Service) seedRules(ctx context.Context, spec InstrumentSpec) error {
	if spec.Perpetual == nil {
		return nil
	}
	seeded := false
	_, err := s.changeInstrument(ctx, spec.Symbol, nil, "contract rules seeded", func(cur Instrument, now time.Time) (Instrument, []string, error) {
		if cur.Kind != KindPerpetual || cur.Perpetual != nil {
			return cur, nil, nil
		}
		seeded = true
		return cur.Update(InstrumentChange{Perpetual: spec.Perpetual}, now)
	})
	if err == nil && seeded {
		s.log.InfoContext(ctx, "contract rules seeded", "symbol", spec.Symbol)
	}
	return err
}

// store returns the open store, opening the buckets on first use.
func (s *Service) store(ctx context.Context) (*store, error) {
	if st := s.st.Load(); st != nil {
		return st, nil
	}
	s.openMu.Lock()
	defer s.openMu.Unlock()
	if st := s.st.Load(); st != nil {
		return st, nil
	}
	st, err := openStore(ctx, s.streams, s.cfg)
	if err != nil {
		return nil, err
	}
	s.st.Store(st)
	return st, nil
}

// actor names who makes the request in ctx.
func (s *Service) actor(ctx context.Context) string {
	if s.actorf != nil {
		if a := s.actorf(ctx); a != "" {
			return a
		}
	}
	return s.cfg.Actor
}

// announce publishes the event of a change that is already stored. The
// change stands whatever happens here, so the publish outlives the
// caller's cancellation (up to PublishTimeout), and a failure is logged
// and handed to the repair loop instead of failing the request.
func (s *Service) announce(ctx context.Context, what string, publish func(context.Context) error) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.PublishTimeout)
	defer cancel()
	if err := publish(pctx); err != nil {
		s.log.ErrorContext(ctx, "event not published, the repair loop will publish it", "change", what, "err", err)
		select {
		case s.repairNeeded <- struct{}{}:
		default:
		}
	}
}

// getInstrument reads one instrument.
func (s *Service) getInstrument(ctx context.Context, symbol string) (Instrument, error) {
	if err := ValidateSymbol(symbol); err != nil {
		return Instrument{}, invalid("symbol", err)
	}
	st, err := s.store(ctx)
	if err != nil {
		return Instrument{}, err
	}
	in, _, err := st.getInstrument(ctx, symbol)
	return in, err
}

// listInstruments returns one page of the instruments that match f, after
// the symbol after.
func (s *Service) listInstruments(ctx context.Context, f InstrumentFilter, after string, size int) ([]Instrument, string, error) {
	st, err := s.store(ctx)
	if err != nil {
		return nil, "", err
	}
	all, err := st.listInstruments(ctx)
	if err != nil {
		return nil, "", err
	}
	matching := all[:0]
	for _, in := range all {
		if f.Match(in) {
			matching = append(matching, in)
		}
	}
	items, next := page(matching, func(in Instrument) string { return in.Symbol }, after, size)
	return items, next, nil
}

// createInstrument stores a new instrument and announces it.
func (s *Service) createInstrument(ctx context.Context, spec InstrumentSpec, actor string) (Instrument, error) {
	in, err := NewInstrument(spec, s.now())
	if err != nil {
		return Instrument{}, err
	}
	if err := streams.ValidateKey(in.Symbol); err != nil {
		return Instrument{}, invalid("symbol", err)
	}
	st, err := s.store(ctx)
	if err != nil {
		return Instrument{}, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := checkIndex(ctx, st, in); err != nil {
		return Instrument{}, err
	}
	if err := st.createInstrument(ctx, in); err != nil {
		return Instrument{}, err
	}
	s.announce(ctx, "instrument "+in.Symbol+" created", func(ctx context.Context) error {
		return s.events.instrumentCreated(ctx, in, actor)
	})
	return in, nil
}

// checkIndex refuses a perpetual whose index instrument is not a spot
// instrument of the same assets.
func checkIndex(ctx context.Context, st *store, in Instrument) error {
	if in.Perpetual == nil || in.Perpetual.IndexSymbol == "" {
		return nil
	}
	sym := in.Perpetual.IndexSymbol
	index, _, err := st.getInstrument(ctx, sym)
	switch {
	case errors.Is(err, ErrNotFound):
		return invalidf("perpetual.index_symbol", "no instrument %s", sym)
	case err != nil:
		return err
	case index.Kind != KindSpot || index.BaseAsset != in.BaseAsset || index.QuoteAsset != in.QuoteAsset:
		return invalidf("perpetual.index_symbol", "%s must be a spot instrument of %s/%s, it is %s %s/%s",
			sym, in.BaseAsset, in.QuoteAsset, index.Kind, index.BaseAsset, index.QuoteAsset)
	}
	return nil
}

// instrumentEdit computes the next state of an instrument and the fields
// that changed (none: nothing to store).
type instrumentEdit func(cur Instrument, now time.Time) (Instrument, []string, error)

// changeInstrument applies edit to the instrument if it is at expected (when
// set), stores the result and announces it; a change to nothing stores and
// announces nothing.
func (s *Service) changeInstrument(ctx context.Context, symbol string, expected *uint64, reason string, edit instrumentEdit) (Instrument, error) {
	if err := ValidateSymbol(symbol); err != nil {
		return Instrument{}, invalid("symbol", err)
	}
	st, err := s.store(ctx)
	if err != nil {
		return Instrument{}, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var changed []string
	prev, next, err := st.updateInstrument(ctx, symbol, func(cur Instrument) (Instrument, error) {
		if err := CheckRevision("instrument "+symbol, cur.Revision, expected); err != nil {
			return cur, err
		}
		n, fields, err := edit(cur, s.now())
		if err == nil && slices.Contains(fields, "perpetual") {
			err = checkIndex(ctx, st, n)
		}
		changed = fields
		return n, err
	})
	if err != nil {
		return Instrument{}, err
	}
	if next.Revision != prev.Revision {
		actor := s.actor(ctx)
		s.announce(ctx, fmt.Sprintf("instrument %s revision %d", symbol, next.Revision), func(ctx context.Context) error {
			return s.events.instrumentUpdated(ctx, prev, next, changed, reason, actor)
		})
	}
	return next, nil
}

// getConfig reads one configuration entry.
func (s *Service) getConfig(ctx context.Context, key string) (ConfigEntry, error) {
	if err := ValidateConfigKey(key); err != nil {
		return ConfigEntry{}, invalid("key", err)
	}
	st, err := s.store(ctx)
	if err != nil {
		return ConfigEntry{}, err
	}
	return st.getConfig(ctx, key)
}

// listConfig returns one page of the entries under prefix, after the key
// after.
func (s *Service) listConfig(ctx context.Context, prefix, after string, size int) ([]ConfigEntry, string, error) {
	if err := ValidateConfigPrefix(prefix); err != nil {
		return nil, "", invalid("prefix", err)
	}
	st, err := s.store(ctx)
	if err != nil {
		return nil, "", err
	}
	all, err := st.listConfig(ctx)
	if err != nil {
		return nil, "", err
	}
	matching := all[:0]
	for _, e := range all {
		if strings.HasPrefix(e.Key, prefix) {
			matching = append(matching, e)
		}
	}
	items, next := page(matching, func(e ConfigEntry) string { return e.Key }, after, size)
	return items, next, nil
}

// checkConfigKey validates a configuration key, also as a topic key.
func checkConfigKey(key string) error {
	if err := ValidateConfigKey(key); err != nil {
		return invalid("key", err)
	}
	if err := streams.ValidateKey(ConfigTopicKey(key)); err != nil {
		return invalid("key", err)
	}
	return nil
}

// setConfig stores a configuration value and announces it.
func (s *Service) setConfig(ctx context.Context, key, value string, expected *uint64) (ConfigEntry, error) {
	if err := checkConfigKey(key); err != nil {
		return ConfigEntry{}, err
	}
	if len(value) > s.cfg.MaxConfigValueBytes {
		return ConfigEntry{}, invalidf("value", "must be at most %d bytes, got %d", s.cfg.MaxConfigValueBytes, len(value))
	}
	st, err := s.store(ctx)
	if err != nil {
		return ConfigEntry{}, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	entry, err := st.setConfig(ctx, key, value, expected, s.now())
	if err != nil {
		return ConfigEntry{}, err
	}
	ch := ConfigChange{Key: key, Value: value, Revision: entry.Revision, ChangedAt: entry.UpdatedAt, Actor: s.actor(ctx)}
	s.announce(ctx, fmt.Sprintf("config %s revision %d", key, entry.Revision), func(ctx context.Context) error {
		return s.events.configChanged(ctx, ch)
	})
	return entry, nil
}

// deleteConfig deletes a configuration key and announces it; deleting a key
// that is not set does and announces nothing.
func (s *Service) deleteConfig(ctx context.Context, key string, expected *uint64) error {
	if err := checkConfigKey(key); err != nil {
		return err
	}
	st, err := s.store(ctx)
	if err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	rev, err := st.deleteConfig(ctx, key, expected)
	if err != nil || rev == 0 {
		return err
	}
	ch := ConfigChange{Key: key, Revision: rev, Deleted: true, ChangedAt: s.now(), Actor: s.actor(ctx)}
	s.announce(ctx, fmt.Sprintf("config %s deleted at revision %d", key, rev), func(ctx context.Context) error {
		return s.events.configChanged(ctx, ch)
	})
	return nil
}

// checkBucket reports whether name is a KV store of catalog.
func checkBucket(catalog *streams.Catalog, name string) error {
	st, err := catalog.Store(name)
	switch {
	case err != nil:
		return fmt.Errorf("metadata: bucket %s: %w", name, err)
	case st.Kind != streams.KeyValue:
		return fmt.Errorf("metadata: bucket %s is a %s, not a KV bucket", name, st.Kind)
	}
	return nil
}
