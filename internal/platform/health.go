package platform

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/tradex-mesh/tradex/internal/health"
	"github.com/tradex-mesh/tradex/streams"
)

// Status is the readiness of one service run here: Starting until its
// state is rebuilt (or while it is not running), what it reports itself
// (health.Reporter: market data rebuilding after a gap), and Behind while
// one of its durable consumers has more than Config.MaxLag messages
// unacknowledged.
func (p *Platform) Status(ctx context.Context, name string) (health.Status, error) {
	u, err := p.unit(name)
	if err != nil {
		return health.Status{}, err
	}
	inst := u.current()
	if inst == nil {
		return health.Status{State: health.Starting, Detail: "not running"}, nil
	}
	select {
	case <-inst.svc.Ready():
	default:
		return health.Status{State: health.Starting, Detail: "rebuilding its state"}, nil
	}
	if r, ok := inst.svc.(health.Reporter); ok {
		if st := r.Health(); !st.OK() {
			return st, nil
		}
	}
	if u.spec.consumers == nil || p.mesh == nil {
		return health.Status{State: health.Ready}, nil
	}
	var behind []string
	for _, c := range u.spec.consumers(p.cfg) {
		lag, err := p.mesh.ConsumerLag(ctx, c.topic, c.name)
		switch {
		case errors.Is(err, streams.ErrNotFound):
			return health.Status{State: health.Starting, Detail: fmt.Sprintf("consumer %s of %s not created yet", c.name, c.topic)}, nil
		case err != nil:
			behind = append(behind, err.Error())
		case lag > p.cfg.MaxLag:
			behind = append(behind, fmt.Sprintf("consumer %s of %s is %d messages behind (limit %d)", c.name, c.topic, lag, p.cfg.MaxLag))
		}
	}
	if len(behind) > 0 {
		return health.Status{State: health.Behind, Detail: strings.Join(behind, "; ")}, nil
	}
	return health.Status{State: health.Ready}, nil
}

// ReadyChecks are the readiness checks of /readyz: "nats" (the platform's
// connection answers JetStream requests) and one per service run here,
// failing with "<state>: <detail>" while the service is not ready.
func (p *Platform) ReadyChecks() map[string]func(context.Context) error {
	out := make(map[string]func(context.Context) error, len(p.units)+1)
	out["nats"] = p.checkBroker
	for _, u := range p.units {
		name := u.spec.name
		out[name] = func(ctx context.Context) error {
			st, err := p.Status(ctx, name)
			if err != nil {
				return err
			}
			if !st.OK() {
				return errors.New(string(st.State) + ": " + st.Detail)
			}
			return nil
		}
	}
	return out
}

// Check is gRPC health (grpc.health.v1) over the services run here: a
// Connect service is SERVING only while its service is ready; "" (the
// whole server) only while every service is.
func (p *Platform) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	var names []string
	for _, u := range p.units {
		if req.Service == "" || u.spec.connect == req.Service {
			names = append(names, u.spec.name)
		}
	}
	if len(names) == 0 {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %q", req.Service))
	}
	for _, name := range names {
		st, err := p.Status(ctx, name)
		if err != nil || !st.OK() {
			return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
		}
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}

// checkBroker fails while the platform's own connection is down or
// JetStream does not answer it.
func (p *Platform) checkBroker(ctx context.Context) error {
	if p.conn == nil {
		return errors.New("not started")
	}
	if !p.conn.IsConnected() {
		return fmt.Errorf("nats: %s", p.conn.Status())
	}
	return p.mesh.Ping(ctx)
}

// settlementBacklog reads the backlog the order service's backpressure
// watches: the messages the engine's, the wallet's and the order-state
// durable consumers have not acknowledged, whichever process runs them
// (their names come from the configuration), read on the platform's own
// connection.
func (p *Platform) settlementBacklog() func(ctx context.Context) (uint64, error) {
	all := specs()
	var refs []consumerRef
	for _, name := range []string{Matching, Wallet, Order} {
		refs = append(refs, all[name].consumers(p.cfg)...)
	}
	return func(ctx context.Context) (uint64, error) {
		if p.mesh == nil {
			return 0, errors.New("not started")
		}
		var sum uint64
		for _, c := range refs {
			lag, err := p.mesh.ConsumerLag(ctx, c.topic, c.name)
			if errors.Is(err, streams.ErrNotFound) {
				continue // not created yet: nothing behind
			}
			if err != nil {
				return 0, err
			}
			sum += lag
		}
		return sum, nil
	}
}

// Lags is the lag of every durable consumer of the services run here, by
// "<topic> <consumer>" (for /readyz's body; the same figures as the
// tradex_consumer_lag metric).
func (p *Platform) Lags(ctx context.Context) map[string]uint64 {
	out := map[string]uint64{}
	if p.mesh == nil {
		return out
	}
	for _, u := range p.units {
		if u.spec.consumers == nil {
			continue
		}
		for _, c := range u.spec.consumers(p.cfg) {
			if lag, err := p.mesh.ConsumerLag(ctx, c.topic, c.name); err == nil {
				out[c.topic+" "+c.name] = lag
			}
		}
	}
	return out
}

// lagScrapeTimeout bounds the reads of one scrape of the consumer lags.
const lagScrapeTimeout = 2 * time.Second

// registerLagMetric exports the lag of every durable consumer of the
// services run here (messages not yet acknowledged): the backlog a
// settlement or an order-state consumer has, scrape by scrape. Start calls
// it once the platform's connection is up.
func (p *Platform) registerLagMetric() {
	p.metrics.GaugesFunc("tradex_consumer_lag", "Messages a service's durable consumer has not acknowledged yet (pending plus in flight).",
		[]string{"service", "topic", "consumer"}, func(emit func(float64, ...string)) {
			ctx, cancel := context.WithTimeout(context.Background(), lagScrapeTimeout)
			defer cancel()
			for _, u := range p.units {
				if u.spec.consumers == nil { // a stopped service's consumers still count: their backlog grows
					continue
				}
				for _, c := range u.spec.consumers(p.cfg) {
					if lag, err := p.mesh.ConsumerLag(ctx, c.topic, c.name); err == nil {
						emit(float64(lag), u.spec.name, c.topic, c.name)
					}
				}
			}
		})
}
