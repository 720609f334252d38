package wsfeed

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tradex-mesh/tradex/gateway/auth"
)

// Config holds the feed's settings. Start from Default: a zero field is
// not a default.
type Config struct {
	// Origins lists the browser origins (scheme://host[:port], compared
	// case-insensitively) allowed to open a connection. A request without
	// an Origin header (a non-browser client) and a same-origin request
	// (the Origin's host:port equals the Host header) are always allowed;
	// "*" allows every origin. Any other origin is refused at the upgrade
	// with 403.
	Origins []string
	// MaxFrameBytes is the largest client frame read; a larger frame
	// closes the connection with status 1009 (message too big).
	MaxFrameBytes int64
	// MaxSubscriptions is how many subscriptions (a channel and one symbol,
	// or one private channel) a connection may hold at once.
	MaxSubscriptions int
	// SendQueue is how many frames may wait to be written to one
	// connection. A connection whose queue is full is a slow consumer: it
	// is sent a resource_exhausted notice (if the socket takes it within
	// WriteTimeout) and closed with 1008; the fan-out never waits for it.
	SendQueue int
	// SendBytes bounds the bytes of the frames waiting to be written to one
	// connection (a shared frame counts in full for each connection that
	// holds it), so that a client that does not read holds at most about
	// this much server memory; past it the connection is a slow consumer
	// as above. One frame larger than SendBytes (a deep book snapshot)
	// still passes when nothing else waits.
	SendBytes int
	// MaxConnectionsPerAddress bounds the connections open at once from
	// one client address (as the gateway attributes it: see
	// SetClientAddress); one more is refused with 429.
	MaxConnectionsPerAddress int
	// WriteTimeout bounds one write to a connection, and the notice and
	// close frame of a connection being dropped.
	WriteTimeout time.Duration
	// PingInterval is how often the server sends a WebSocket ping.
	PingInterval time.Duration
	// PongWait is how long a connection may stay silent (no frame, no
	// pong) before it is dropped; it must exceed PingInterval.
	PongWait time.Duration
	// HeartbeatInterval is how often a connection is sent a heartbeat
	// frame with a counter.
	HeartbeatInterval time.Duration
	// SubscribeTimeout bounds the wait for an upstream's first answer (a
	// book snapshot, a symbol lookup) before a subscription fails with
	// unavailable.
	SubscribeTimeout time.Duration
	// AuthTimeout bounds one call to the verifier.
	AuthTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between attempts to
	// reopen a lost upstream stream (doubling from min to max).
	ReconnectMin, ReconnectMax time.Duration
	// ReadBufferSize and WriteBufferSize are the sizes of a connection's
	// WebSocket I/O buffers in bytes (not limits; write buffers are pooled
	// between writes).
	ReadBufferSize, WriteBufferSize int
	// SocketWriteBuffer sets the kernel send buffer (SO_SNDBUF) of every
	// connection in bytes, bounding what a stalled client holds in the
	// kernel; 0 keeps the system's default.
	SocketWriteBuffer int
}

// Default returns the settings used by `tradex serve`: same-origin and
// non-browser clients only, 16 KiB frames, 100 subscriptions, 1024 queued
// frames and 1 MiB queued, 32 connections per address, 10 s writes, pings every 20 s with 60 s to answer, heartbeats
// every 10 s.
func Default() Config {
	return Config{
		MaxFrameBytes:            16 << 10,
		MaxSubscriptions:         100,
		SendQueue:                1024,
		SendBytes:                1 << 20,
		MaxConnectionsPerAddress: 32,
		WriteTimeout:             10 * time.Second,
		PingInterval:             20 * time.Second,
		PongWait:                 60 * time.Second,
		HeartbeatInterval:        10 * time.Second,
		SubscribeTimeout:         10 * time.Second,
		AuthTimeout:              5 * time.Second,
		ReconnectMin:             100 * time.Millisecond,
		ReconnectMax:             5 * time.Second,
		ReadBufferSize:           1024,
		WriteBufferSize:          4096,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	positive := []struct {
		name string
		ok   bool
	}{
		{"MaxFrameBytes", c.MaxFrameBytes > 0},
		{"MaxSubscriptions", c.MaxSubscriptions > 0},
		{"SendQueue", c.SendQueue > 0},
		{"SendBytes", c.SendBytes > 0},
		{"MaxConnectionsPerAddress", c.MaxConnectionsPerAddress > 0},
		{"WriteTimeout", c.WriteTimeout > 0},
		{"PingInterval", c.PingInterval > 0},
		{"HeartbeatInterval", c.HeartbeatInterval > 0},
		{"SubscribeTimeout", c.SubscribeTimeout > 0},
		{"AuthTimeout", c.AuthTimeout > 0},
		{"ReconnectMin", c.ReconnectMin > 0},
		{"ReadBufferSize", c.ReadBufferSize > 0},
		{"WriteBufferSize", c.WriteBufferSize > 0},
	}
	for _, p := range positive {
		if !p.ok {
			return fmt.Errorf("wsfeed: %s must be positive", p.name)
		}
	}
	switch {
	case c.PongWait <= c.PingInterval:
		return errors.New("wsfeed: PongWait must exceed PingInterval")
	case c.ReconnectMax < c.ReconnectMin:
		return errors.New("wsfeed: ReconnectMax must be at least ReconnectMin")
	case c.SocketWriteBuffer < 0:
		return errors.New("wsfeed: SocketWriteBuffer must not be negative")
	}
	for _, o := range c.Origins {
		if o != "*" && !strings.Contains(o, "://") {
			return fmt.Errorf("wsfeed: origin %q is not scheme://host[:port] or *", o)
		}
	}
	return nil
}

// Deps are the feed's collaborators. MarketData is required; Orders,
// Wallet and Verifier are needed for the private channels (without them
// those channels answer unavailable).
type Deps struct {
	// MarketData serves the public channels (book, trades, ticker,
	// candles).
	MarketData MarketData
	// Orders serves the private orders channel.
	Orders Orders
	// Wallet serves the private balances channel.
	Wallet Wallet
	// Verifier checks the token of an auth frame.
	Verifier auth.Verifier
	// Logger receives the feed's logs; nil discards them.
	Logger *slog.Logger
}
