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
	f := &Feed{cfg: cfg, deps: deps, log: log, conns: map[*conn]struct{}{}}
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

// Handler is the fiber handler of the WebSocket endpoint: a request that
// is not a WebSocket upgrade gets 426, a browser origin not allowed 403,
// and a feed shutting down 503.
func (f *Feed) Handler() fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !websocket.IsWebSocketUpgrade(c) {
			return fiber.NewError(fiber.StatusUpgradeRequired, "this endpoint speaks WebSocket: send an upgrade request")
		}
		if origin := c.Get(fiber.HeaderOrigin); origin != "" && !f.originAllowed(origin, string(c.Request().Host())) {
			return fiber.NewError(fiber.StatusForbidden, fmt.Sprintf("origin %s is not allowed", origin))
		}
		f.mu.Lock()
		closing := f.closing
		f.mu.Unlock()
		if closing {
			return fiber.NewError(fiber.StatusServiceUnavailable, "shutting down")
		}
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
	c := newConn(f, wc.Conn)
	if !f.register(c) {
		_ = c.ws.WriteControl(fws.CloseMessage, fws.FormatCloseMessage(fws.CloseGoingAway, "shutting down"), time.Now().Add(f.cfg.WriteTimeout))
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
	if u, ok := nc.(interface{ UnsafeConn() net.Conn }); ok { // fasthttp's hijacked connection
		nc = u.UnsafeConn()
	}
	if s, ok := nc.(interface{ SetWriteBuffer(bytes int) error }); ok {
		if err := s.SetWriteBuffer(f.cfg.SocketWriteBuffer); err != nil {
			f.log.Warn("set socket write buffer", "err", err)
		}
	}
}

func (f *Feed) recoverConn(*websocket.Conn) {
	if r := recover(); r != nil {
		f.log.Error("websocket connection panicked", "panic", fmt.Sprint(r))
	}
}

func (f *Feed) register(c *conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return false
	}
	f.conns[c] = struct{}{}
	f.wg.Add(1)
	return true
}

func (f *Feed) unregister(c *conn) {
	f.mu.Lock()
	delete(f.conns, c)
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
}

// Stats returns the feed's current activity.
func (f *Feed) Stats() Stats {
	f.mu.Lock()
	n := len(f.conns)
	f.mu.Unlock()
	return Stats{Connections: n, Upstreams: f.hub.count(), SlowConsumers: f.slow.Load()}
}
