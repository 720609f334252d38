package wsfeed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/fasthttp/websocket"

	"github.com/tradex-mesh/tradex/gateway/auth"
	"github.com/tradex-mesh/tradex/services/auth/signature"
)

// closeReason is why a connection ends: its close frame and the notice
// (an error frame) sent before it, if any.
type closeReason struct {
	code   int
	text   string
	notice []byte
}

// conn is one client connection. Its reader goroutine (the handler's)
// reads and answers frames; its writer goroutine drains the outbox, and
// sends heartbeats and pings.
type conn struct {
	f    *Feed
	ws   *websocket.Conn
	addr string // the client address it counts against
	out  *outbox
	wmu  sync.Mutex // held by whoever writes data frames (the writer)

	quit       chan struct{}
	quitOnce   sync.Once
	quitting   atomic.Bool
	reason     closeReason // set before quit is closed
	writerDone chan struct{}

	// Reader goroutine only.
	subs      map[key]*topic
	authed    bool
	principal auth.Principal
}

func newConn(f *Feed, ws *websocket.Conn, addr string) *conn {
	return &conn{
		f: f, ws: ws, addr: addr, out: newOutbox(f.cfg.SendQueue, f.cfg.SendBytes),
		quit: make(chan struct{}), writerDone: make(chan struct{}),
		subs: map[key]*topic{},
	}
}

// serve runs the connection until it ends.
func (c *conn) serve() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.writeLoop()
	c.ws.SetReadLimit(c.f.cfg.MaxFrameBytes)
	c.extendRead()
	c.ws.SetPongHandler(func(string) error { c.extendRead(); return nil })
	c.shutdown(c.readLoop(ctx))
	<-c.writerDone
	for k, t := range c.subs {
		t.detach(c)
		c.f.hub.release(t)
		delete(c.subs, k)
	}
}

func (c *conn) extendRead() {
	_ = c.ws.SetReadDeadline(time.Now().Add(c.f.cfg.PongWait))
}

// readLoop handles the client's frames until the connection fails.
func (c *conn) readLoop(ctx context.Context) closeReason {
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			return readFailure(err)
		}
		c.extendRead()
		if typ != websocket.TextMessage {
			c.reply(encodeError(errorf(connect.CodeInvalidArgument, "frames are JSON text frames"), nil))
			continue
		}
		c.handle(ctx, data)
	}
}

// readFailure is the close of a connection whose read failed.
func readFailure(err error) closeReason {
	var ce *websocket.CloseError
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		return closeReason{code: websocket.CloseMessageTooBig, text: "frame too large"}
	case errors.As(err, &ce):
		return closeReason{code: websocket.CloseNormalClosure}
	}
	return closeReason{code: websocket.CloseGoingAway, text: "read failed"}
}

// handle answers one client frame.
func (c *conn) handle(ctx context.Context, data []byte) {
	req, err := parseRequest(data)
	if err != nil {
		c.reply(encodeError(err, req.ReqID))
		return
	}
	switch req.Op {
	case "subscribe":
		c.subscribe(ctx, req)
	case "unsubscribe":
		c.unsubscribe(req)
	case "ping":
		c.reply(encodePong(time.Now(), req.ReqID))
	case "auth":
		c.authenticate(ctx, req)
	default:
		c.reply(encodeError(errorf(connect.CodeInvalidArgument, "unknown op %q: want subscribe, unsubscribe, auth or ping", req.Op), req.ReqID))
	}
}

// subscribe adds the frame's subscriptions. A frame that names an
// unknown channel, a bad symbol, a private channel before auth, or more
// subscriptions than allowed changes nothing and gets one error frame;
// otherwise every subscription whose upstream fails (an unknown symbol)
// gets an error frame, the rest one subscribed ack, and then each its
// first data frames.
func (c *conn) subscribe(ctx context.Context, req request) {
	ws, err := wants(req.Channels, c.principal.AccountID, c.authed, true)
	if err != nil {
		c.reply(encodeError(err, req.ReqID))
		return
	}
	added := 0
	for _, w := range ws {
		if c.subs[w.key] == nil {
			added++
		}
	}
	if limit := c.f.cfg.MaxSubscriptions; len(c.subs)+added > limit {
		c.reply(encodeError(errorf(connect.CodeResourceExhausted,
			"at most %d subscriptions per connection: %d held, %d more asked", limit, len(c.subs), added), req.ReqID))
		return
	}
	type pending struct {
		w     wanted
		t     *topic
		fresh bool
	}
	var ok []pending
	var failed []error
	for _, w := range ws {
		if t := c.subs[w.key]; t != nil {
			ok = append(ok, pending{w: w, t: t})
			continue
		}
		t, err := c.f.hub.acquire(ctx, w.key)
		if err != nil {
			failed = append(failed, err)
			continue
		}
		ok = append(ok, pending{w: w, t: t, fresh: true})
	}
	deadline := time.Now().Add(c.f.cfg.SubscribeTimeout)
	kept := ok[:0]
	for _, p := range ok { // the topics start at once: this waits for the slowest
		if p.fresh {
			if err := p.t.wait(ctx, time.Until(deadline), c.quit); err != nil {
				c.f.hub.release(p.t)
				failed = append(failed, err)
				continue
			}
		}
		kept = append(kept, p)
	}
	for _, err := range failed {
		c.reply(encodeError(err, req.ReqID))
	}
	if len(kept) == 0 {
		return
	}
	acked := make([]wanted, len(kept))
	for i, p := range kept {
		acked[i] = p.w
	}
	c.reply(encodeAck("subscribed", ackSpecs(acked), "", req.ReqID))
	for _, p := range kept {
		c.subs[p.w.key] = p.t
		p.t.attach(c, p.w.depth)
	}
}

// unsubscribe drops the frame's subscriptions; naming one the connection
// does not hold is a not_found error frame (the others are still
// dropped).
func (c *conn) unsubscribe(req request) {
	ws, err := wants(req.Channels, c.principal.AccountID, c.authed, false)
	if err != nil {
		c.reply(encodeError(err, req.ReqID))
		return
	}
	var done []wanted
	var missing []string
	for _, w := range ws {
		t := c.subs[w.key]
		if t == nil {
			missing = append(missing, w.key.String())
			continue
		}
		t.detach(c)
		c.f.hub.release(t)
		delete(c.subs, w.key)
		done = append(done, w)
	}
	if len(missing) > 0 {
		c.reply(encodeError(errorf(connect.CodeNotFound, "not subscribed to %v", missing), req.ReqID))
	}
	if len(done) > 0 {
		c.reply(encodeAck("unsubscribed", ackSpecs(done), "", req.ReqID))
	}
}

// authenticate verifies the frame's token, or its API-key signature; the
// principal's account is then the one of the private channels.
func (c *conn) authenticate(ctx context.Context, req request) {
	var p auth.Principal
	var err error
	if req.APIKey != "" {
		p, err = c.verifySigned(ctx, req)
	} else {
		p, err = c.verify(ctx, req.Token)
	}
	if err == nil && c.authed && p.AccountID != c.principal.AccountID && c.holdsPrivate() {
		err = errorf(connect.CodeFailedPrecondition, "unsubscribe orders and balances before acting for another account")
	}
	if err != nil {
		c.reply(encodeError(err, req.ReqID))
		return
	}
	c.principal, c.authed = p, true
	c.reply(encodeAck("authenticated", nil, p.AccountID, req.ReqID))
}

func (c *conn) verify(ctx context.Context, token string) (auth.Principal, error) {
	if c.f.deps.Verifier == nil {
		return auth.Principal{}, errorf(connect.CodeUnavailable, "authentication is not configured")
	}
	if token == "" {
		return auth.Principal{}, errorf(connect.CodeInvalidArgument, "token is required")
	}
	ctx, cancel := context.WithTimeout(ctx, c.f.cfg.AuthTimeout)
	defer cancel()
	p, err := c.f.deps.Verifier.Verify(ctx, token)
	switch {
	case errors.Is(err, auth.ErrInvalidCredential):
		return auth.Principal{}, errorf(connect.CodeUnauthenticated, "invalid token")
	case err != nil:
		c.f.log.WarnContext(ctx, "verify token", "err", err)
		return auth.Principal{}, errorf(connect.CodeUnavailable, "cannot verify the token now; retry")
	}
	return p, nil
}

// wsSignedPath is what an auth frame signed with an API key signs, after
// its timestamp: "GET" + "/ws".
const wsSignedPath = "/ws"

// verifySigned checks an auth frame signed with an API key: fresh within
// the default window, and signed by the key (checked by the verifier,
// with the connection's client address for the key's allow-list).
func (c *conn) verifySigned(ctx context.Context, req request) (auth.Principal, error) {
	sv, ok := c.f.deps.Verifier.(auth.SignedVerifier)
	if !ok {
		return auth.Principal{}, errorf(connect.CodeUnauthenticated, "this feed accepts no API keys")
	}
	sr := signature.Request{KeyID: req.APIKey, Timestamp: req.Timestamp, Window: signature.DefaultWindow, Signature: req.Signature}
	if err := sr.Fresh(time.Now()); err != nil {
		return auth.Principal{}, errorf(connect.CodeUnauthenticated, "%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.f.cfg.AuthTimeout)
	defer cancel()
	p, err := sv.VerifySigned(ctx, auth.SignedRequest{KeyID: req.APIKey, Signature: req.Signature,
		Message: signature.Message(req.Timestamp, "GET", wsSignedPath, nil), ClientIP: c.addr})
	switch {
	case errors.Is(err, auth.ErrInvalidCredential):
		return auth.Principal{}, errorf(connect.CodeUnauthenticated, "invalid API key signature")
	case err != nil:
		c.f.log.WarnContext(ctx, "verify API key", "err", err)
		return auth.Principal{}, errorf(connect.CodeUnavailable, "cannot verify the key now; retry")
	}
	return p, nil
}

func (c *conn) holdsPrivate() bool {
	for k := range c.subs {
		if k.ch.private() {
			return true
		}
	}
	return false
}

// reply queues a frame of this connection.
func (c *conn) reply(b []byte) { c.deliver(ownFrame(b)) }

// deliver implements sink: it queues f, and drops the connection when its
// queue is full. It never blocks.
func (c *conn) deliver(f *frame) {
	if c.out.push(f) == overflowed {
		c.f.slow.Add(1)
		c.shutdown(closeReason{
			code: websocket.ClosePolicyViolation, text: "slow consumer",
			notice: encodeError(errorf(connect.CodeResourceExhausted,
				"slow consumer: more than %d frames or %d bytes waiting; closing", c.f.cfg.SendQueue, c.f.cfg.SendBytes), nil),
		})
	}
}

// shutdown ends the connection: the writer sends the reason's notice and
// close frame, then closes the socket (which ends the reader). Only the
// first reason counts.
func (c *conn) shutdown(r closeReason) {
	c.quitOnce.Do(func() {
		c.reason = r
		c.quitting.Store(true)
		c.out.close()
		close(c.quit)
	})
}

// writeLoop writes queued frames, heartbeats and pings until the
// connection ends.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	cfg := c.f.cfg
	heartbeat := time.NewTicker(cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	ping := time.NewTicker(cfg.PingInterval)
	defer ping.Stop()
	var beats uint64
	for {
		var err error
		select {
		case <-c.quit:
			c.finish()
			return
		case <-c.out.wake:
			err = c.flush()
		case now := <-heartbeat.C:
			beats++
			err = c.writeNow(ownFrame(encodeHeartbeat(beats, now)))
		case <-ping.C:
			err = c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout))
		}
		if err != nil {
			c.shutdown(closeReason{code: websocket.CloseGoingAway, text: "write failed"})
		}
	}
}

// flush writes everything queued.
func (c *conn) flush() error {
	batch := c.out.take()
	defer c.out.written(batch)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, f := range batch {
		if c.quitting.Load() {
			return nil
		}
		_ = c.ws.SetWriteDeadline(time.Now().Add(c.f.cfg.WriteTimeout))
		if err := f.write(c.ws); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return nil
}

// writeNow writes one frame now, ahead of the queue.
func (c *conn) writeNow(f *frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.f.cfg.WriteTimeout))
	return f.write(c.ws)
}

// finish sends the notice and the close frame (both bounded by
// WriteTimeout; they fail at once on a broken socket) and closes the
// socket.
func (c *conn) finish() {
	deadline := time.Now().Add(c.f.cfg.WriteTimeout)
	c.wmu.Lock()
	if c.reason.notice != nil {
		_ = c.ws.SetWriteDeadline(deadline)
		_ = c.ws.WriteMessage(websocket.TextMessage, c.reason.notice)
	}
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.reason.code, c.reason.text), deadline)
	c.wmu.Unlock()
	_ = socket(c.ws.NetConn()).Close() // ends the reader's read at once
}
