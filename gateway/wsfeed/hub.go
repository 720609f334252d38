package wsfeed

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"connectrpc.com/connect"
)

// sink receives a topic's frames. deliver must never block: it queues the
// frame or drops the receiver.
type sink interface {
	deliver(f *frame)
}

// member is a sink attached to a topic, with what it asked for.
type member struct {
	s     sink
	depth int
}

// source is the upstream of a topic's channel.
type source interface {
	// session runs one upstream session: it opens the stream, hands the
	// topic its first state with t.live, then every change with t.fanout,
	// and returns when the stream ends (or ctx is done).
	session(ctx context.Context, t *topic) error
	// greet returns the frames a new member gets first (the book
	// snapshot at its depth, the current ticker, ...). It is called with
	// t.mu held.
	greet(depth int) []*frame
}

// hub shares one upstream per key between every connection of the
// process: a topic starts with its first member and stops after its
// last one leaves.
type hub struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	mu     sync.Mutex
	topics map[key]*topic
	closed bool
	wg     sync.WaitGroup // topic goroutines
}

func newHub(cfg Config, deps Deps, log *slog.Logger) *hub {
	return &hub{cfg: cfg, deps: deps, log: log, topics: map[key]*topic{}}
}

// errClosed is a feed that is shutting down.
var errClosed = connect.NewError(connect.CodeUnavailable, errors.New("the feed is shutting down; reconnect"))

// acquire returns the topic of k with one more reference, starting it if
// it is new. Every acquire is paired with a release. A new topic runs
// until its last release, whatever becomes of ctx (it keeps only ctx's
// values).
func (h *hub) acquire(ctx context.Context, k key) (*topic, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errClosed
	}
	if t, ok := h.topics[k]; ok {
		t.refs++
		return t, nil
	}
	src, err := h.source(k)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t := &topic{h: h, key: k, src: src, refs: 1, cancel: cancel, ready: make(chan struct{}), index: map[sink]int{}}
	h.topics[k] = t
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t.run(ctx)
	}()
	return t, nil
}

// release drops a reference; the last one stops the topic.
func (h *hub) release(t *topic) {
	h.mu.Lock()
	t.refs--
	last := t.refs == 0
	if last && h.topics[t.key] == t {
		delete(h.topics, t.key)
	}
	h.mu.Unlock()
	if last {
		t.cancel()
	}
}

// forget removes a failed topic so that the next subscription starts
// afresh.
func (h *hub) forget(t *topic) {
	h.mu.Lock()
	if h.topics[t.key] == t {
		delete(h.topics, t.key)
	}
	h.mu.Unlock()
}

// close stops every topic and waits for them.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	for _, t := range h.topics {
		t.cancel()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// count is how many topics are running.
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.topics)
}

// topic is one upstream feed and its members.
type topic struct {
	h      *hub
	key    key
	src    source
	refs   int // under h.mu
	cancel context.CancelFunc
	ready  chan struct{} // closed on the first state, or on failure (err set)
	err    error

	mu      sync.Mutex
	members []member
	index   map[sink]int
	isLive  bool
}

// wait waits until the topic has its first state (nil) or failed.
func (t *topic) wait(ctx context.Context, timeout time.Duration, quit <-chan struct{}) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-t.ready:
		return t.err
	case <-timer.C:
		return errorf(connect.CodeUnavailable, "%s: no answer from upstream within %s; retry", t.key, timeout)
	case <-quit:
		return errClosed
	case <-ctx.Done():
		return errClosed
	}
}

// attach adds s (or changes its depth) and sends it the topic's first
// frames, so that it gets the current state followed by every change
// after it. Attaching a member again sends it the state again (a client
// resubscribing after a gap gets a fresh snapshot).
func (t *topic) attach(s sink, depth int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.index[s]; ok {
		t.members[i].depth = depth
	} else {
		t.index[s] = len(t.members)
		t.members = append(t.members, member{s: s, depth: depth})
	}
	for _, f := range t.src.greet(depth) {
		s.deliver(f)
	}
}

// detach removes s.
func (t *topic) detach(s sink) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.index[s]
	if !ok {
		return
	}
	last := len(t.members) - 1
	t.members[i] = t.members[last]
	t.index[t.members[i].s] = i
	t.members[last] = member{}
	t.members = t.members[:last]
	delete(t.index, s)
}

// live installs the upstream's first state of a session with set (under
// t.mu). The first time it makes the topic ready; after a reconnect every
// member is greeted again (a fresh snapshot).
func (t *topic) live(set func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	set()
	if !t.isLive {
		t.isLive = true
		close(t.ready)
		return
	}
	for _, m := range t.members {
		for _, f := range t.src.greet(m.depth) {
			m.s.deliver(f)
		}
	}
}

// fanout applies a change with apply (under t.mu, may be nil) and sends f
// to every member. apply's error ends the session.
func (t *topic) fanout(f *frame, apply func() error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if apply != nil {
		if err := apply(); err != nil {
			return err
		}
	}
	if f == nil {
		return nil
	}
	for _, m := range t.members {
		m.s.deliver(f)
	}
	return nil
}

// run runs sessions until the topic is stopped. An upstream that fails
// before its first state fails the topic (its waiting subscribers get the
// error); after that a lost upstream is reopened with backoff, for as long
// as the topic has members.
func (t *topic) run(ctx context.Context) {
	backoff := t.h.cfg.ReconnectMin
	for {
		start := time.Now()
		err := t.src.session(ctx, t)
		if ctx.Err() != nil {
			return
		}
		t.mu.Lock()
		live := t.isLive
		t.mu.Unlock()
		if !live {
			t.err = upstreamError(t.key, err)
			t.h.forget(t)
			close(t.ready)
			return
		}
		if time.Since(start) > 10*t.h.cfg.ReconnectMax {
			backoff = t.h.cfg.ReconnectMin // it ran well for a while: retry at once
		}
		t.h.log.WarnContext(ctx, "upstream lost; reopening", "topic", t.key.String(), "backoff", backoff, "err", err)
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		backoff = min(2*backoff, t.h.cfg.ReconnectMax)
	}
}

// upstreamError is what a subscriber is told of an upstream that failed
// before its first state: the upstream's Connect code (not_found for an
// unknown symbol, unavailable, ...) with the topic named.
func upstreamError(k key, err error) error {
	code := connect.CodeOf(err)
	switch code {
	case connect.CodeNotFound:
		return errorf(code, "%s: unknown symbol %s", k, k.name)
	case connect.CodeInvalidArgument, connect.CodePermissionDenied, connect.CodeUnauthenticated,
		connect.CodeUnavailable, connect.CodeResourceExhausted, connect.CodeFailedPrecondition:
		var ce *connect.Error
		if errors.As(err, &ce) {
			return errorf(code, "%s: %s", k, ce.Message())
		}
	}
	return errorf(connect.CodeUnavailable, "%s: upstream unavailable; retry", k)
}
