package gateway

import (
	"errors"
	"math"
	"strconv"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"

	"github.com/tradex-mesh/tradex/gateway/wsfeed"
)

// RateLimit is the per-client request budget of the REST API: a token
// bucket of Burst requests refilled at PerSecond. A client is its verified
// principal (admins apart from users), or its IP address when it sent no
// credential. Every address also has a ceiling that all its clients
// share, so fresh credentials from one address do not buy fresh budgets.
type RateLimit struct {
	// PerSecond is the sustained rate; 0 turns rate limiting off.
	PerSecond float64
	// Burst is how many requests a client may make at once.
	Burst int
	// AddressPerSecond and AddressBurst are the ceiling of one address,
	// whatever credentials it uses; 0 is 4 times PerSecond and Burst.
	AddressPerSecond float64
	AddressBurst     int
}

// addressCeiling is the per-address bucket of r.
func (r RateLimit) addressCeiling() RateLimit {
	c := RateLimit{PerSecond: r.AddressPerSecond, Burst: r.AddressBurst}
	if c.PerSecond == 0 {
		c.PerSecond = 4 * r.PerSecond
	}
	if c.Burst == 0 {
		c.Burst = 4 * r.Burst
	}
	return c
}

// limiter keeps one token bucket per client.
type limiter struct {
	cfg RateLimit
	now func() time.Time

	mu        sync.Mutex
	clients   map[string]*rate.Limiter
	lastSweep time.Time
}

// sweepEvery is how often buckets that have refilled are forgotten.
const sweepEvery = time.Minute

func newLimiter(cfg RateLimit, now func() time.Time) *limiter {
	return &limiter{cfg: cfg, now: now, clients: map[string]*rate.Limiter{}, lastSweep: now()}
}

// allow takes a token from client's bucket. It returns the tokens left
// and, when there was none, how long until there is one.
func (l *limiter) allow(client string) (remaining int, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > sweepEvery {
		l.sweep(now)
	}
	b, ok := l.clients[client]
	if !ok {
		b = rate.NewLimiter(rate.Limit(l.cfg.PerSecond), l.cfg.Burst)
		l.clients[client] = b
	}
	if b.AllowN(now, 1) {
		return int(b.TokensAt(now)), 0
	}
	r := b.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return 0, wait
}

// sweep forgets the clients whose buckets are full again: they would start
// from a full bucket anyway.
func (l *limiter) sweep(now time.Time) {
	for client, b := range l.clients {
		if b.TokensAt(now) >= float64(l.cfg.Burst) {
			delete(l.clients, client)
		}
	}
	l.lastSweep = now
}

// budgetKey is the bucket of a caller: its principal's, admins apart from
// users (so that no user named like an admin shares the admin's budget),
// else its address's.
func budgetKey(ip string, p *principal) string {
	switch {
	case p == nil:
		return "ip:" + ip
	case p.Admin:
		return "admin:" + p.Subject
	default:
		return "user:" + p.Subject
	}
}

// take charges a request to its caller's budget and, for a caller with a
// credential, to its address's ceiling: the tokens left in the caller's
// budget, and how long to wait when either refused.
func (g *Gateway) take(ip string, p *principal) (remaining int, wait time.Duration) {
	if p != nil {
		if _, wait := g.ceiling.allow("ip:" + ip); wait > 0 {
			return 0, wait
		}
	}
	return g.limits.allow(budgetKey(ip, p))
}

// rateLimit enforces the limits on the request's caller.
func (g *Gateway) rateLimit(c *fiber.Ctx) error {
	var pp *principal
	if p, ok := principalOf(c); ok {
		pp = &p
	}
	if err := g.charge(c, g.clientIP(c), pp); err != nil {
		return err
	}
	return c.Next()
}

// limitConnections charges every WebSocket connection attempt to its
// address's budget, so that one client cannot open connections without
// bound, and tells the feed the address its per-address cap counts.
func (g *Gateway) limitConnections(c *fiber.Ctx) error {
	ip := g.clientIP(c)
	if err := g.charge(c, ip, nil); err != nil {
		return err
	}
	wsfeed.SetClientAddress(c, ip)
	return c.Next()
}

// charge takes one request from its caller's budget (see take) and
// reports the budget in headers: X-RateLimit-Limit, X-RateLimit-Remaining
// and, when refused (429 resource_exhausted), Retry-After in whole seconds.
func (g *Gateway) charge(c *fiber.Ctx, ip string, p *principal) error {
	if g.limits.cfg.PerSecond == 0 {
		return nil
	}
	remaining, wait := g.take(ip, p)
	c.Set("X-RateLimit-Limit", strconv.Itoa(g.limits.cfg.Burst))
	c.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	if wait == 0 {
		return nil
	}
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	return errRateLimited
}

// errRateLimited is answered by the gateway's error handler.
var errRateLimited = connect.NewError(connect.CodeResourceExhausted, errors.New("rate limit exceeded: retry after the Retry-After header's seconds"))
