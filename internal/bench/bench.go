// Package bench is the load generator of `tradex bench`: it registers and
// funds simulated traders on a running platform through its REST API,
// places and cancels orders as fast as it can (or at a fixed rate), waits
// until settlement has caught up, and reports accepted and settled orders
// per second, answer latencies, errors by status and whether funds were
// conserved. Raw measures the baseline next to it: synchronous JetStream
// publishes to a server of its own.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/tradex-mesh/tradex/internal/decimal"
)

// Config is what Run does.
type Config struct {
	// URL is the gateway ("http://127.0.0.1:8080").
	URL string
	// AdminEmail and AdminPassword sign in the admin that funds the
	// traders (the bootstrap admin, or one with the transfer right).
	AdminEmail, AdminPassword string
	// Traders is how many accounts trade; Connections how many requests
	// are in flight at once (each on its own keep-alive connection).
	Traders, Connections int
	// Duration is how long orders are sent; Rate the orders per second in
	// all (0: as fast as the platform answers).
	Duration time.Duration
	Rate     float64
	// Instrument is the symbol traded; Price the middle of the prices used
	// (on the instrument's tick), Quantity each order's (on its lot).
	Instrument, Price, Quantity string
	// Cross is the share of orders placed to trade (the others rest away
	// from the middle); Cancels the share of actions that cancel a resting
	// order instead.
	Cross, Cancels float64
	// SettleTimeout bounds the wait for settlement after the load.
	SettleTimeout time.Duration
	// Client is the HTTP client to use; nil builds one for Connections.
	Client *http.Client
	// Progress receives a line a second while the load runs; nil: none.
	Progress io.Writer
	// CPU, when set, reads the CPU time the platform's process has used
	// so far: the result then gives the CPU per settled order, from the
	// start of the load until settlement caught up.
	CPU func() (time.Duration, error)
	// ClientCPU, when set, reads the CPU time of the load generator's own
	// process: the result then gives what the load itself cost per order
	// (on one machine it shares the cores with the platform).
	ClientCPU func() (time.Duration, error)
}

// Result is what a run measured.
type Result struct {
	Traders     int     `json:"traders"`
	Connections int     `json:"connections"`
	Seconds     float64 `json:"seconds"`
	// Accepted counts the orders answered 201; Cancelled the cancels
	// answered 200.
	Accepted  int64 `json:"accepted"`
	Cancelled int64 `json:"cancelled"`
	// AcceptedPerSecond is Accepted over the load's duration;
	// SettledPerSecond over the time until every consumer had caught up.
	AcceptedPerSecond float64 `json:"acceptedPerSecond"`
	SettledPerSecond  float64 `json:"settledPerSecond"`
	// SettleLag is how long settlement took to catch up once the load
	// stopped.
	SettleLagSeconds float64 `json:"settleLagSeconds"`
	// CPUPerOrder is the platform's CPU time per settled order, in
	// microseconds (0 without Config.CPU).
	CPUPerOrder float64 `json:"cpuPerSettledOrderUs,omitempty"`
	// ClientCPUPerOrder is the load generator's CPU time per settled
	// order, in microseconds (0 without Config.ClientCPU).
	ClientCPUPerOrder float64 `json:"clientCpuPerSettledOrderUs,omitempty"`
	// Answer latencies of order placements, in milliseconds.
	P50 float64 `json:"p50Ms"`
	P99 float64 `json:"p99Ms"`
	// P999 is the 99.9th percentile.
	P999 float64 `json:"p999Ms"`
	// Errors counts the failed requests by HTTP status ("transport" for
	// none).
	Errors map[string]int64 `json:"errors"`
	// ErrorSamples holds the first answer of each failing status.
	ErrorSamples map[string]string `json:"errorSamples,omitempty"`
	// Conserved reports that the traders' total of every asset is the
	// same before and after (trades only move funds between them).
	Conserved bool              `json:"conserved"`
	Before    map[string]string `json:"totalsBefore"`
	After     map[string]string `json:"totalsAfter"`
}

// assetScale is the scale at which balances are summed (the wallet's).
const assetScale = 8

// Run registers and funds cfg.Traders traders, sends the load, waits for
// settlement and reports.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.check(); err != nil {
		return Result{}, err
	}
	c := newClient(cfg)
	inst, err := c.instrument(ctx, cfg.Instrument, cfg.Price)
	if err != nil {
		return Result{}, err
	}
	traders, err := c.setUp(ctx, cfg, inst)
	if err != nil {
		return Result{}, err
	}
	if err := c.waitSettled(ctx, cfg.SettleTimeout); err != nil {
		return Result{}, fmt.Errorf("before the load: %w", err)
	}
	before, err := c.totals(ctx, traders)
	if err != nil {
		return Result{}, err
	}
	l := newLoad(cfg, c, inst, traders)
	cpu0, err := cpuTimes(cfg)
	if err != nil {
		return Result{}, err
	}
	began := time.Now()
	l.run(ctx)
	loaded := time.Now()
	if err := c.waitSettled(ctx, cfg.SettleTimeout); err != nil {
		return Result{}, fmt.Errorf("after the load: %w", err)
	}
	settled := time.Now()
	cpu1, err := cpuTimes(cfg)
	if err != nil {
		return Result{}, err
	}
	after, err := c.totals(ctx, traders)
	if err != nil {
		return Result{}, err
	}
	r := l.result(began, loaded, settled, before, after)
	if r.Accepted > 0 {
		if cfg.CPU != nil {
			r.CPUPerOrder = float64((cpu1[0] - cpu0[0]).Microseconds()) / float64(r.Accepted)
		}
		if cfg.ClientCPU != nil {
			r.ClientCPUPerOrder = float64((cpu1[1] - cpu0[1]).Microseconds()) / float64(r.Accepted)
		}
	}
	return r, nil
}

// cpuTimes reads the platform's and the load generator's CPU time, each
// 0 when its reader is not set.
func cpuTimes(cfg Config) ([2]time.Duration, error) {
	platform, err := readCPU(cfg.CPU)
	if err != nil {
		return [2]time.Duration{}, fmt.Errorf("bench: the platform's CPU time: %w", err)
	}
	client, err := readCPU(cfg.ClientCPU)
	if err != nil {
		return [2]time.Duration{}, fmt.Errorf("bench: the load generator's CPU time: %w", err)
	}
	return [2]time.Duration{platform, client}, nil
}

// readCPU calls read, if set.
func readCPU(read func() (time.Duration, error)) (time.Duration, error) {
	if read == nil {
		return 0, nil
	}
	return read()
}

func (cfg Config) check() error {
	switch {
	case cfg.URL == "":
		return errors.New("bench: the gateway URL is required")
	case cfg.AdminEmail == "" || cfg.AdminPassword == "":
		return errors.New("bench: an admin's email and password are required (to fund the traders)")
	case cfg.Traders < 2 || cfg.Connections < 1 || cfg.Duration <= 0 || cfg.SettleTimeout <= 0:
		return errors.New("bench: at least 2 traders, 1 connection, a duration and a settle timeout are required")
	case cfg.Rate < 0 || cfg.Cross < 0 || cfg.Cancels < 0 || cfg.Cross > 1 || cfg.Cancels > 1:
		return errors.New("bench: rate must not be negative; cross and cancels are shares from 0 to 1")
	}
	return nil
}

// trader is one simulated account.
type trader struct {
	id, token string
}

// load sends orders and cancels from Connections workers.
type load struct {
	cfg     Config
	c       *client
	inst    instrument
	traders []trader
	limiter *rate.Limiter

	accepted, cancelled atomic.Int64
	mu                  sync.Mutex
	latencies           []time.Duration
	errors              map[string]int64
	samples             map[string]string
}

func newLoad(cfg Config, c *client, inst instrument, traders []trader) *load {
	l := &load{cfg: cfg, c: c, inst: inst, traders: traders, errors: map[string]int64{}, samples: map[string]string{}}
	if cfg.Rate > 0 {
		l.limiter = rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	}
	return l
}

// run sends the load for cfg.Duration, printing progress.
func (l *load) run(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for w := range l.cfg.Connections {
		wg.Go(func() { l.work(ctx, w) })
	}
	if l.cfg.Progress != nil {
		wg.Go(func() { l.progress(ctx) })
	}
	wg.Wait()
}

// work is one worker: its traders (every Connections-th), alternating
// buys and sells, each a crossing or a resting order, or the cancel of one
// of its resting orders.
func (l *load) work(ctx context.Context, w int) {
	rng := rand.New(rand.NewPCG(uint64(w), 42)) //nolint:gosec // a load pattern, not a secret
	var waiting []resting
	for i := 0; ctx.Err() == nil; i++ {
		if l.limiter != nil && l.limiter.Wait(ctx) != nil {
			return
		}
		t := l.traders[(w+i*l.cfg.Connections)%len(l.traders)]
		if len(waiting) > 0 && rng.Float64() < l.cfg.Cancels {
			r := waiting[0]
			waiting = waiting[1:]
			l.cancel(ctx, r)
			continue
		}
		buy := i%2 == 0
		cross := rng.Float64() < l.cfg.Cross
		id, ok := l.place(ctx, t, buy, l.inst.priceFor(buy, cross, rng))
		if ok && !cross {
			waiting = append(waiting, resting{trader: t.token, order: id})
		}
	}
}

// resting is an order expected to rest: its trader's token and its id.
type resting struct{ trader, order string }

func (l *load) place(ctx context.Context, t trader, buy bool, price string) (string, bool) {
	side := map[bool]string{true: "buy", false: "sell"}[buy]
	body := map[string]string{"instrumentId": l.cfg.Instrument, "side": side, "type": "limit",
		"quantity": l.cfg.Quantity, "price": price}
	var out struct {
		Order struct {
			OrderID string `json:"orderId"`
		} `json:"order"`
	}
	start := time.Now()
	status, err := l.c.do(ctx, http.MethodPost, "/v1/orders", t.token, body, &out)
	took := time.Since(start)
	if ctx.Err() != nil && err != nil {
		return "", false // the load ended during the request
	}
	if err != nil || status != http.StatusCreated {
		l.fail(status, err)
		l.backOff(ctx, err)
		return "", false
	}
	l.accepted.Add(1)
	l.mu.Lock()
	l.latencies = append(l.latencies, took)
	l.mu.Unlock()
	return out.Order.OrderID, true
}

func (l *load) cancel(ctx context.Context, r resting) {
	status, err := l.c.do(ctx, http.MethodDelete, "/v1/orders/"+r.order, r.trader, nil, nil)
	if ctx.Err() != nil && err != nil {
		return
	}
	if err != nil || status != http.StatusOK {
		l.fail(status, err)
		return
	}
	l.cancelled.Add(1)
}

// backOff waits as long as a refusal's Retry-After asks (the platform's
// backpressure), as a well-behaved client does.
func (l *load) backOff(ctx context.Context, err error) {
	var ra retryAfter
	if !errors.As(err, &ra) {
		return
	}
	t := time.NewTimer(ra.wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (l *load) fail(status int, err error) {
	key := strconv.Itoa(status)
	if status == 0 {
		key = "transport"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errors[key]++
	if _, ok := l.samples[key]; !ok && err != nil {
		l.samples[key] = err.Error()
	}
}

// progress prints a line a second, and one when the load ends: orders so
// far, their rate, cancels, errors.
func (l *load) progress(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start, last, lastAt := time.Now(), int64(0), time.Now()
	line := func(now time.Time) {
		n := l.accepted.Load()
		l.mu.Lock()
		var errs int64
		for _, e := range l.errors {
			errs += e
		}
		l.mu.Unlock()
		rate := float64(n-last) / max(now.Sub(lastAt).Seconds(), 1e-3)
		_, _ = fmt.Fprintf(l.cfg.Progress, "%5.1fs  %8d orders  %7.0f/s  %6d cancels  %5d errors\n",
			now.Sub(start).Seconds(), n, rate, l.cancelled.Load(), errs)
		last, lastAt = n, now
	}
	for {
		select {
		case <-ctx.Done():
			line(time.Now())
			return
		case now := <-tick.C:
			line(now)
		}
	}
}

func (l *load) result(began, loaded, settled time.Time, before, after map[string]int64) Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	lat := slices.Clone(l.latencies)
	slices.Sort(lat)
	pct := func(p float64) float64 { return percentile(lat, p) }
	n := l.accepted.Load()
	r := Result{
		Traders: len(l.traders), Connections: l.cfg.Connections, Seconds: loaded.Sub(began).Seconds(),
		Accepted: n, Cancelled: l.cancelled.Load(),
		AcceptedPerSecond: float64(n) / loaded.Sub(began).Seconds(),
		SettledPerSecond:  float64(n) / settled.Sub(began).Seconds(),
		SettleLagSeconds:  settled.Sub(loaded).Seconds(),
		P50:               pct(0.50), P99: pct(0.99), P999: pct(0.999),
		Errors: l.errors, ErrorSamples: l.samples, Before: format(before), After: format(after),
		Conserved: len(before) == len(after),
	}
	for asset, v := range before {
		if after[asset] != v {
			r.Conserved = false
		}
	}
	return r
}

func format(totals map[string]int64) map[string]string {
	out := map[string]string{}
	for asset, v := range totals {
		out[asset] = decimal.FormatTrim(v, assetScale)
	}
	return out
}

// percentile is the p-th (0..1) of sorted latencies, in milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[min(len(sorted)-1, int(float64(len(sorted))*p))].Microseconds()) / 1000
}
