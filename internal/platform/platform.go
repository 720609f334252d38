package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tradex-mesh/tradex/gateway/auth"
	"github.com/tradex-mesh/tradex/internal/rpcserver"
	"github.com/tradex-mesh/tradex/internal/telemetry"
	"github.com/tradex-mesh/tradex/streams"
)

// Dialer opens a new NATS connection named name (nats.Name): one per
// service ("tradex-wallet"), one for the instrument cache
// ("tradex-instruments") and one for the platform itself
// ("tradex-platform").
type Dialer func(name string) (*nats.Conn, error)

// Deps are what the platform is built on.
type Deps struct {
	// Dial opens the connections. Required.
	Dial Dialer
	// Logger receives the platform's and the services' logs; nil discards
	// them.
	Logger *slog.Logger
	// Metrics is the process's registry; nil makes one.
	Metrics *telemetry.Metrics
	// HTTPClient makes the Connect calls to services at Config.RemoteURL;
	// nil uses a client of its own.
	HTTPClient *http.Client
	// TracerProvider records the services' spans: their Connect calls
	// (handlers, and clients of other processes' services) and every
	// publish and handled message. Nil records none; the trace context is
	// carried on either way.
	TracerProvider trace.TracerProvider
	// OrderClock is the order service's clock: it stamps orders and
	// commands and decides when a funding interval ends. Nil is time.Now;
	// tests move it to an interval's end.
	OrderClock func() time.Time
}

// stopTimeout bounds how long a stopped service may take to return.
const stopTimeout = 30 * time.Second

// Platform is the services of one process, built and wired. Start, Stop,
// StartService and KillService must not be called concurrently.
type Platform struct {
	cfg            Config
	log            *slog.Logger
	dial           Dialer
	metrics        *telemetry.Metrics
	httpClient     *http.Client
	orderClock     func() time.Time
	tracing        trace.TracerProvider
	tracer         *otelconnect.Interceptor // Connect spans
	catalog        *streams.Catalog
	handlerOptions connect.HandlerOption

	units       []*unit // the services run here, in start order
	byName      map[string]*unit
	instruments *cacheRef
	wiring      []Link

	// Set by Start.
	conn   *nats.Conn
	mesh   *streams.Client
	failed chan error
}

// New builds the platform of cfg; it does no I/O (Start does).
func New(cfg Config, deps Deps) (*Platform, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Dial == nil {
		return nil, errors.New("platform: Dial is required")
	}
	p := &Platform{
		cfg: cfg, log: deps.Logger, dial: deps.Dial, metrics: deps.Metrics, httpClient: deps.HTTPClient, orderClock: deps.OrderClock, tracing: deps.TracerProvider,
		catalog: streams.DefaultCatalog(), byName: map[string]*unit{}, failed: make(chan error, len(Names())),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.metrics == nil {
		p.metrics = telemetry.New()
	}
	if p.httpClient == nil {
		p.httpClient = &http.Client{}
	}
	if p.tracing == nil {
		p.tracing = noop.NewTracerProvider()
	}
	var err error
	if p.tracer, err = otelconnect.NewInterceptor(otelconnect.WithTracerProvider(p.tracing), otelconnect.WithoutMetrics(),
		otelconnect.WithPropagator(propagation.TraceContext{}), otelconnect.WithTrustRemote()); err != nil {
		return nil, fmt.Errorf("platform: tracing: %w", err)
	}
	p.handlerOptions = handlerOptions(p.log, p.metrics, p.tracer)
	all := specs()
	for _, name := range Names() {
		if cfg.runs(name) {
			u := &unit{spec: all[name]}
			p.units = append(p.units, u)
			p.byName[name] = u
		}
	}
	if err := p.resolve(); err != nil {
		return nil, err
	}
	p.instruments = newCacheRef(p.metadataClient())
	return p, nil
}

// handlerOptions are the options of every service's Connect handler, in
// every process: every call is counted in the metrics; the gateway puts a
// caller's principal in the context and auth.Interceptor keeps a user to
// their own account (calls without one, on the internal port, pass
// unchanged); a message over 4 MiB is refused; a panic answers Internal
// and is logged with its stack.
func handlerOptions(log *slog.Logger, m *telemetry.Metrics, tracer *otelconnect.Interceptor) connect.HandlerOption {
	return connect.WithHandlerOptions(
		connect.WithInterceptors(tracer, m.Interceptor(), auth.Interceptor()),
		connect.WithReadMaxBytes(rpcserver.DefaultMaxBodyBytes),
		connect.WithRecover(func(ctx context.Context, spec connect.Spec, _ http.Header, r any) error {
			log.ErrorContext(ctx, "handler panicked", "procedure", spec.Procedure, "panic", r, "stack", string(debug.Stack()))
			return connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}),
	)
}

// Metrics is the process's registry.
func (p *Platform) Metrics() *telemetry.Metrics { return p.metrics }

// Services lists the services run here, in start order.
func (p *Platform) Services() []string {
	out := make([]string, len(p.units))
	for i, u := range p.units {
		out[i] = u.spec.name
	}
	return out
}

func (p *Platform) serviceLogger(name string) *slog.Logger { return p.log.With("service", name) }

// Wait blocks until ctx ends (it returns nil) or a service run here fails
// (it returns the failure).
func (p *Platform) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-p.failed:
		return err
	}
}

// Start provisions the streams, starts every service (the metadata service
// first, until it serves) and the instrument cache, and returns; WaitReady
// waits until they serve. The services run
// until Stop or until ctx ends.
func (p *Platform) Start(ctx context.Context) error {
	conn, err := p.dial(UserPlatform)
	if err != nil {
		return fmt.Errorf("platform: connect: %w", err)
	}
	p.conn = conn
	if p.cfg.Replicas == 0 {
		p.cfg.Replicas = autoReplicas(conn)
	}
	if p.mesh, err = streams.Connect(conn, p.catalog, p.meshOptions()...); err != nil {
		return fmt.Errorf("platform: %w", err)
	}
	p.registerLagMetric() //nolint:contextcheck // a scrape has no context of its own: each is bounded by lagScrapeTimeout
	js := p.mesh.JetStream()
	if err := streams.EnsureStreams(ctx, js, p.catalog, streams.WithReplicas(p.cfg.Replicas)); err != nil {
		return fmt.Errorf("provision streams: %w", err)
	}
	if err := streams.PublishSchemas(ctx, js, p.catalog, streams.WithSchemaReplicas(p.cfg.Replicas)); err != nil {
		return fmt.Errorf("publish schemas: %w", err)
	}
	for _, u := range p.units {
		if err := p.startUnit(ctx, u); err != nil {
			return err
		}
		if u.spec.name == Metadata { // the instrument cache loads from it: let it serve first
			if err := p.WaitReady(ctx, Metadata); err != nil {
				return err
			}
		}
	}
	if p.needsInstruments() { // the services wait for it on their first lookup
		if err := p.instruments.start(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// connName is the name of a service's connection and NATS user.
func connName(name string) string { return "tradex-" + name }

// autoReplicas is 3 when connected to a cluster of three or more servers
// (as the server advertises them), else 1.
func autoReplicas(nc *nats.Conn) int {
	if nc.ConnectedClusterName() != "" && len(nc.Servers()) >= 3 {
		return 3
	}
	return 1
}

// Replicas is the replica count in use (known after Start).
func (p *Platform) Replicas() int { return p.cfg.Replicas }

// Catalog is the platform's topic and store catalog.
func (p *Platform) Catalog() *streams.Catalog { return p.catalog }

// needsInstruments reports whether a service run here uses the instrument
// cache.
func (p *Platform) needsInstruments() bool {
	for _, u := range p.units {
		if slices.Contains(u.spec.needs, Metadata) {
			return true
		}
	}
	return false
}

// WaitReady waits until the named services (every service run here when
// none is named) are ready (their state rebuilt), failing when ctx ends or
// a service fails first.
func (p *Platform) WaitReady(ctx context.Context, names ...string) error {
	units := p.units
	if len(names) > 0 {
		units = nil
		for _, name := range names {
			u, err := p.unit(name)
			if err != nil {
				return err
			}
			units = append(units, u)
		}
	}
	for _, u := range units {
		inst := u.current()
		if inst == nil {
			return fmt.Errorf("service %s is not running", u.spec.name)
		}
		select {
		case <-inst.svc.Ready():
		case <-inst.done:
			return fmt.Errorf("service %s ended before it was ready: %w", u.spec.name, inst.err)
		case <-ctx.Done():
			return fmt.Errorf("service %s did not start: %w", u.spec.name, context.Cause(ctx))
		}
	}
	return nil
}

// Stop stops every service (the last started first), waiting for each to
// finish within ctx's deadline (or 30 s), then closes the connections.
func (p *Platform) Stop(ctx context.Context) error {
	var errs []error
	for i := len(p.units) - 1; i >= 0; i-- {
		if err := p.units[i].stop(ctx, false); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, p.instruments.stop(ctx))
	if p.conn != nil {
		p.conn.Close()
	}
	return errors.Join(errs...)
}

// StartService starts a service of this process again after KillService,
// on a new connection: it rebuilds its state from the streams, and runs
// until ctx ends or Stop.
func (p *Platform) StartService(ctx context.Context, name string) error {
	u, err := p.unit(name)
	if err != nil {
		return err
	}
	if u.current() != nil {
		return fmt.Errorf("platform: service %s is running", name)
	}
	return p.startUnit(ctx, u)
}

// KillService stops a service the way a crash would: its connection is
// closed first (nothing in flight is drained or acknowledged), then it is
// stopped. Its RPCs answer Unavailable until StartService.
func (p *Platform) KillService(ctx context.Context, name string) error {
	u, err := p.unit(name)
	if err != nil {
		return err
	}
	return u.stop(ctx, true)
}

// unit is the slot of a service run here.
func (p *Platform) unit(name string) (*unit, error) {
	u, ok := p.byName[name]
	if !ok {
		return nil, fmt.Errorf("platform: service %s does not run here", name)
	}
	return u, nil
}

// TracerProvider records the services' spans (Deps.TracerProvider; a
// provider that records nothing without one).
func (p *Platform) TracerProvider() trace.TracerProvider { return p.tracing }

// meshOptions are the options of the services' mesh clients.
func (p *Platform) meshOptions() []streams.ClientOption {
	return []streams.ClientOption{streams.WithStoreReplicas(p.cfg.Replicas), streams.WithTracerProvider(p.tracing)}
}

// startUnit builds a new instance of u on a connection of its own and runs
// it.
func (p *Platform) startUnit(ctx context.Context, u *unit) error {
	conn, err := p.dial(connName(u.spec.name))
	if err != nil {
		return fmt.Errorf("service %s: connect: %w", u.spec.name, err)
	}
	mesh, err := streams.Connect(conn, p.catalog, p.meshOptions()...)
	if err != nil {
		conn.Close()
		return fmt.Errorf("service %s: %w", u.spec.name, err)
	}
	b, err := u.spec.build(p, mesh)
	if err != nil {
		conn.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	inst := &instance{built: b, conn: conn, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(inst.done)
		err := b.svc.Run(ctx)
		if err != nil && ctx.Err() == nil {
			inst.err = fmt.Errorf("service %s: %w", u.spec.name, err)
			select {
			case p.failed <- inst.err:
			default:
			}
		}
	}()
	u.cur.Store(inst)
	return nil
}

// unit is one service slot: the running instance, if any.
type unit struct {
	spec spec
	cur  atomic.Pointer[instance]
	mu   sync.Mutex // serialises stop
}

// instance is one run of a service.
type instance struct {
	built
	conn   *nats.Conn
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed
}

func (u *unit) current() *instance { return u.cur.Load() }

// stop stops the running instance, if any: gracefully (cancel, wait, close
// the connection), or as a crash (close the connection first).
func (u *unit) stop(ctx context.Context, crash bool) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	inst := u.cur.Swap(nil)
	if inst == nil {
		return nil
	}
	if crash {
		inst.conn.Close()
	}
	inst.cancel()
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	defer inst.conn.Close()
	select {
	case <-inst.done:
	case <-ctx.Done():
		return fmt.Errorf("service %s did not stop: %w", u.spec.name, ctx.Err())
	}
	if crash { // a crash may fail Run on its way down; that is the point
		return nil
	}
	return inst.err
}

// ConnectServices are the Connect handlers of the services run here, to
// mount on the internal port and the gateway. Each answers Unavailable
// while its service is not running (killed, or not started yet).
func (p *Platform) ConnectServices() []rpcserver.Service {
	var out []rpcserver.Service
	for _, u := range p.units {
		if u.spec.connect == "" {
			continue
		}
		out = append(out, rpcserver.Service{Name: u.spec.connect, Path: "/" + u.spec.connect + "/", Handler: u})
	}
	return out
}

// ServeHTTP forwards to the running instance's Connect handler, or answers
// 503 (Connect: Unavailable) while there is none.
func (u *unit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	inst := u.current()
	if inst == nil {
		http.Error(w, u.spec.name+" is not running", http.StatusServiceUnavailable)
		return
	}
	inst.handler.ServeHTTP(w, r)
}
