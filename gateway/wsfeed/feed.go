package wsfeed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
)

// Feed is the WebSocket API: it upgrades requests, runs every connection,
// and shares one upstream per channel and symbol between them.
type Feed struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	hub  *hub
	up   fiber.Handler

	mu      sync.Mutex
	conns   map[*conn]struct{}
	perAddr map[string]int // open connections by client address
	closing bool
	wg      sync.WaitGroup // connection handlers

	slow atomic.Uint64
}

// New builds a feed; mount Handler on the gateway's /ws route and call
// Shutdown when the gateway stops.
func New(cfg Config, deps Deps) (*Feed, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.MarketData == nil {
		return nil, errors.New("wsfeed: Deps.MarketData is required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Feed{cfg: cfg, deps: deps, log: log, conns: map[*conn]struct{}{}, perAddr: map[string]int{}}
	f.hub = newHub(cfg, deps, log)
	f.up = websocket.New(f.serve, websocket.Config{
		Origins:         []string{"*"}, // checked before the upgrade, to answer 403
		ReadBufferSize:  cfg.ReadBufferSize,
		WriteBufferSize: cfg.WriteBufferSize,
		WriteBufferPool: &sync.Pool{},
		RecoverHandler:  f.recoverConn,
	})
	return f, nil
}

// addressLocal is the Fiber local (and, after the upgrade, the
// connection's) naming the client address a connection counts against.
const addressLocal = "wsfeed.client_address"

// SetClientAddress attributes the request c to addr for the per-address
// connection cap (Config.MaxConnectionsPerAddress). The gateway calls it
// with the address its rate limits use (behind trusted proxies, the
// forwarded client); without it the feed counts the peer address.
func SetClientAddress(c *fiber.Ctx, addr string) { c.Locals(addressLocal, addr) }

// clientAddress is the address c counts against.
func clientAddress(c *fiber.Ctx) string {
	if a, ok := c.Locals(addressLocal).(string); ok && a != "" {
		return a
	}
	return c.IP()
}

// Handler is the fiber handler of the WebSocket endpoint: a request that
// is not a WebSocket upgrade gets 426, a browser origin not allowed 403,
// a client address at its connection cap 429, and a feed shutting down
// 503.
func (f *Feed) Handler() fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !websocket.IsWebSocketUpgrade(c) {
			return fiber.NewError(fiber.StatusUpgradeRequired, "this endpoint speaks WebSocket: send an upgrade request")
		}
		if origin := c.Get(fiber.HeaderOrigin); origin != "" && !f.originAllowed(origin, string(c.Request().Host())) {
			return fiber.NewError(fiber.StatusForbidden, fmt.Sprintf("origin %s is not allowed", origin))
		}
		addr := clientAddress(c)
		f.mu.Lock()
		closing, open := f.closing, f.perAddr[addr]
		f.mu.Unlock()
		switch {
		case closing:
			return fiber.NewError(fiber.StatusServiceUnavailable, "shutting down")
		case open >= f.cfg.MaxConnectionsPerAddress:
			return fiber.NewError(fiber.StatusTooManyRequests, fmt.Sprintf(
				"at most %d WebSocket connections per client address: close one first", f.cfg.MaxConnectionsPerAddress))
		}
		c.Locals(addressLocal, addr) // the upgraded connection reads it back
		return f.up(c)
	}
}

// originAllowed applies Config.Origins to a browser's Origin header.
func (f *Feed) originAllowed(origin, host string) bool {
	if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, host) {
		return true // same origin
	}
	for _, o := range f.cfg.Origins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// serve runs one upgraded connection (on the connection's own goroutine).
func (f *Feed) serve(wc *websocket.Conn) {
	addr, _ := wc.Locals(addressLocal).(string)
	c := newConn(f, wc.Conn, addr)
	if refused := f.register(c); refused != nil {
		_ = c.ws.WriteControl(fws.CloseMessage, fws.FormatCloseMessage(refused.code, refused.text), time.Now().Add(f.cfg.WriteTimeout))
		return
	}
	defer f.unregister(c)
	f.setSocketBuffer(c.ws.NetConn())
	c.serve()
}

// setSocketBuffer applies Config.SocketWriteBuffer.
func (f *Feed) setSocketBuffer(nc net.Conn) {
	if f.cfg.SocketWriteBuffer == 0 {
		return
	}
	if s, ok := socket(nc).(interface{ SetWriteBuffer(bytes int) error }); ok {
		if err := s.SetWriteBuffer(f.cfg.SocketWriteBuffer); err != nil {
			f.log.Warn("set socket write buffer", "err", err)
		}
	}
}

// socket is the network connection under nc: fasthttp's hijacked
// connection wraps it, and its Close does nothing (the server closes the
// socket once the handler returns).
func socket(nc net.Conn) net.Conn {
	if u, ok := nc.(interface{ UnsafeConn() net.Conn }); ok {
		return u.UnsafeConn()
	}
	return nc
}

func (f *Feed) recoverConn(*websocket.Conn) {
	if r := recover(); r != nil {
		f.log.Error("websocket connection panicked", "panic", fmt.Sprint(r))
	}
}

// register counts c in, or says why it may not run: the feed is
// shutting down, or its address reached the cap meanwhile (Handler
// checks first; connections upgraded at once may pass it together).
func (f *Feed) register(c *conn) *closeReason {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return &closeReason{code: fws.CloseGoingAway, text: "shutting down"}
	}
	if f.perAddr[c.addr] >= f.cfg.MaxConnectionsPerAddress {
		return &closeReason{code: fws.CloseTryAgainLater, text: "too many connections from this address"}
	}
	f.conns[c] = struct{}{}
	f.perAddr[c.addr]++
	f.wg.Add(1)
	return nil
}

func (f *Feed) unregister(c *conn) {
	f.mu.Lock()
	delete(f.conns, c)
	if f.perAddr[c.addr]--; f.perAddr[c.addr] <= 0 {
		delete(f.perAddr, c.addr)
	}
	f.mu.Unlock()
	f.wg.Done()
}

// Shutdown refuses new connections, closes every connection with 1001
// (going away), stops every upstream and waits for all of it, up to ctx's
// deadline.
func (f *Feed) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.closing = true
	for c := range f.conns {
		c.shutdown(closeReason{code: fws.CloseGoingAway, text: "server shutting down"})
	}
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		f.hub.close()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wsfeed: shutdown: %w", ctx.Err())
	}
}

// Stats is a snapshot of the feed's activity.
type Stats struct {
	// Connections is the number of open connections.
	Connections int
	// Upstreams is the number of upstream feeds running (one per channel
	// and symbol, or private channel and account, in use).
	Upstreams int
	// SlowConsumers is how many connections were dropped for a full send
	// queue since the feed started.
	SlowConsumers uint64
	// QueuedBytes is the bytes of the frames waiting to be written, over
	// every connection (a shared frame counted once per connection).
	QueuedBytes int
}

// Stats returns the feed's current activity.
func (f *Feed) Stats() Stats {
	f.mu.Lock()
	n, queued := len(f.conns), 0
	for c := range f.conns {
		queued += c.out.queued()
	}
	f.mu.Unlock()
	return Stats{Connections: n, Upstreams: f.hub.count(), SlowConsumers: f.slow.Load(), QueuedBytes: queued}
}
