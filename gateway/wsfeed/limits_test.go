package wsfeed_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/tradex-mesh/tradex/gateway/wsfeed"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
)

// Every bad frame gets an error frame naming its req_id, with the Connect
// code of the problem, and the connection keeps working.
func TestBadFramesKeepTheConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tests := []struct {
		name, frame, code, reqID string
	}{
		{"malformed JSON", `{"op":"subscribe","req_id":"m1","channels":[`, "invalid_argument", "m1"},
		{"not an object", `[1,2,3]`, "invalid_argument", ""},
		{"no op", `{"req_id":"n1"}`, "invalid_argument", "n1"},
		{"unknown op", `{"op":"dance","req_id":"u1"}`, "invalid_argument", "u1"},
		{"numeric req_id", `{"op":"dance","req_id":42}`, "invalid_argument", "42"},
		{"unknown channel", `{"op":"subscribe","channels":[{"name":"news","symbols":["BTCUSDT"]}],"req_id":"c1"}`, "invalid_argument", "c1"},
		{"channels of the wrong type", `{"op":"subscribe","channels":"book","req_id":"w1"}`, "invalid_argument", "w1"},
		{"no symbols", `{"op":"subscribe","channels":[{"name":"trades"}],"req_id":"y1"}`, "invalid_argument", "y1"},
		{"unknown book symbol", `{"op":"subscribe","channels":[{"name":"book","symbols":["NOPEUSDT"]}],"req_id":"s1"}`, "not_found", "s1"},
		{"unknown trades symbol", `{"op":"subscribe","channels":[{"name":"trades","symbols":["NOPEUSDT"]}],"req_id":"s2"}`, "not_found", "s2"},
		{"unknown ticker symbol", `{"op":"subscribe","channels":[{"name":"ticker","symbols":["NOPEUSDT"]}],"req_id":"s3"}`, "not_found", "s3"},
		{"unknown candles symbol", `{"op":"subscribe","channels":[{"name":"candles","symbols":["NOPEUSDT"]}],"req_id":"s4"}`, "not_found", "s4"},
		{"bad symbol", `{"op":"subscribe","channels":[{"name":"book","symbols":["BTC USDT"]}],"req_id":"s5"}`, "invalid_argument", "s5"},
		{"bad interval", `{"op":"subscribe","channels":[{"name":"candles","symbols":["BTCUSDT"],"interval":"2m"}],"req_id":"i1"}`, "invalid_argument", "i1"},
		{"negative depth", `{"op":"subscribe","channels":[{"name":"book","symbols":["BTCUSDT"],"depth":-1}],"req_id":"d1"}`, "invalid_argument", "d1"},
		{"orders before auth", `{"op":"subscribe","channels":[{"name":"orders"}],"req_id":"p1"}`, "unauthenticated", "p1"},
		{"balances before auth", `{"op":"subscribe","channels":[{"name":"balances"}],"req_id":"p2"}`, "unauthenticated", "p2"},
		{"invalid token", `{"op":"auth","token":"not a token!","req_id":"a1"}`, "unauthenticated", "a1"},
		{"no token", `{"op":"auth","req_id":"a2"}`, "invalid_argument", "a2"},
		{"unsubscribe what is not held", `{"op":"unsubscribe","channels":[{"name":"book","symbols":["BTCUSDT"]}],"req_id":"x1"}`, "not_found", "x1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := e.dial(t)
			c.send(tt.frame)
			if f := c.expect("error", tt.code, tt.reqID); f.Message == "" {
				t.Errorf("error frame without a message: %s", f)
			}
			c.send(`{"op":"ping","req_id":"after"}`)
			c.expect("pong", "", "after")
		})
	}
}

// One frame naming a known and an unknown symbol subscribes the known one
// (ack, snapshot) and reports the other.
func TestPartlyUnknownSymbols(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dial(t)
	c.send(`{"op":"subscribe","channels":[{"name":"book","symbols":["NOPEUSDT","ETHUSDT"]}],"req_id":"7"}`)
	if f := c.expect("error", "not_found", "7"); !strings.Contains(f.Message, "NOPEUSDT") {
		t.Errorf("error %s does not name the symbol", f)
	}
	if ack := c.expect("subscribed", "", "7"); len(ack.Channels) != 1 || len(ack.Channels[0].Symbols) != 1 || ack.Channels[0].Symbols[0] != "ETHUSDT" {
		t.Errorf("ack %s", ack)
	}
	if f := c.next(); f.Op != "book" || f.Type != "snapshot" || f.Symbol != "ETHUSDT" {
		t.Errorf("after the ack %s", f)
	}
	c.send(`{"op":"unsubscribe","channels":[{"name":"book","symbols":["ETHUSDT"]}],"req_id":"8"}`)
	c.expect("unsubscribed", "", "8")
	polltest.True(t, "the last subscriber's upstream to stop", func() bool { return e.feed.Stats().Upstreams == 0 })
}

// ping answers pong (with the req_id when given); heartbeats come every
// interval with a counter that grows by one.
func TestPingAndHeartbeats(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *wsfeed.Config) { c.HeartbeatInterval = 20 * time.Millisecond })
	c := e.dial(t)
	c.send(`{"op":"ping"}`)
	c.expect("pong", "", "")
	c.send(`{"op":"ping","req_id":"p"}`)
	c.expect("pong", "", "p")
	// The first heartbeat may have come before the pongs (and been passed
	// over by expect): count from the first one seen.
	last := c.until("a heartbeat", func(f frame) bool { return f.Op == "heartbeat" }).Counter
	if last < 1 {
		t.Fatalf("first heartbeat counter %d, want 1 or more", last)
	}
	for range 3 {
		f := c.until("a heartbeat", func(f frame) bool { return f.Op == "heartbeat" })
		if f.Counter != last+1 {
			t.Fatalf("heartbeat %s after counter %d", f, last)
		}
		last = f.Counter
	}
	// The server answers a WebSocket ping with a pong.
	pong := make(chan string, 1)
	c.ws.SetPongHandler(func(data string) error { pong <- data; return nil })
	if err := c.ws.WriteControl(websocket.PingMessage, []byte("hello"), time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	c.until("the pong", func(frame) bool { return len(pong) > 0 }) // the handler runs inside reads
	if got := <-pong; got != "hello" {
		t.Errorf("pong %q", got)
	}
}

// A connection that sends nothing, not even pongs, is dropped after
// PongWait; a client that answers the server's pings stays.
func TestDeadClientIsDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *wsfeed.Config) {
		c.PingInterval, c.PongWait = 20*time.Millisecond, 200*time.Millisecond
	})
	live := e.dial(t)
	liveFrames := make(chan frame, 1024)
	go func() { // reads all along, so it answers the server's pings
		defer close(liveFrames)
		for {
			f, err := live.tryRead(waitFor)
			if err != nil {
				return
			}
			liveFrames <- f
		}
	}()
	dead := dialURL(t, e.url, nil, nil)
	dead.ws.SetPingHandler(func(string) error { return nil }) // never answers
	start := time.Now()
	_, err := dead.tryRead(waitFor)
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) && !isEOF(err) {
		t.Fatalf("dead client: %v; want it dropped", err)
	}
	if d := time.Since(start); d >= waitFor {
		t.Fatalf("dead client dropped after %s", d)
	}
	live.send(`{"op":"ping","req_id":"still"}`)
	for f := range liveFrames {
		if f.Op == "pong" && f.reqID() == "still" {
			return
		}
	}
	t.Fatal("the live client was dropped")
}

func isEOF(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset")
}

// A connection holds at most MaxSubscriptions; a frame asking for more is
// refused whole (resource_exhausted) and the connection stays.
func TestMaxSubscriptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *wsfeed.Config) { c.MaxSubscriptions = 2 })
	c := e.dial(t)
	c.send(`{"op":"subscribe","channels":[{"name":"trades","symbols":["BTCUSDT","ETHUSDT"]}],"req_id":"1"}`)
	c.expect("subscribed", "", "1")
	c.send(`{"op":"subscribe","channels":[{"name":"ticker","symbols":["BTCUSDT"]}],"req_id":"2"}`)
	c.expect("error", "resource_exhausted", "2")
	c.send(`{"op":"subscribe","channels":[{"name":"trades","symbols":["BTCUSDT"]}],"req_id":"3"}`) // held already: no more
	c.expect("subscribed", "", "3")
	c.send(`{"op":"unsubscribe","channels":[{"name":"trades","symbols":["ETHUSDT"]}],"req_id":"4"}`)
	c.expect("unsubscribed", "", "4")
	c.send(`{"op":"subscribe","channels":[{"name":"ticker","symbols":["BTCUSDT"]}],"req_id":"5"}`)
	c.expect("subscribed", "", "5")
}

// A frame larger than MaxFrameBytes closes the connection with 1009.
func TestOversizeFrame(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *wsfeed.Config) { c.MaxFrameBytes = 1024 })
	c := e.dial(t)
	c.send(`{"op":"ping","req_id":"` + strings.Repeat("x", 900) + `"}`) // under the limit: an error (req_id too long), kept
	c.expect("error", "invalid_argument", "")
	c.send(`{"op":"ping","pad":"` + strings.Repeat("x", 2000) + `"}`)
	_, err := c.tryRead(waitFor)
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("after an oversize frame: %v; want close 1009", err)
	}
}

// Browsers' origins are checked at the upgrade: none (a non-browser
// client), the same origin and listed ones pass, others get 403; a plain
// GET gets 426.
func TestOrigins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *wsfeed.Config) { c.Origins = []string{"https://app.example"} })
	host := strings.TrimSuffix(strings.TrimPrefix(e.url, "ws://"), "/ws")
	tests := []struct {
		origin string
		status int
	}{
		{"", http.StatusSwitchingProtocols},
		{"https://app.example", http.StatusSwitchingProtocols},
		{"HTTPS://APP.EXAMPLE", http.StatusSwitchingProtocols},
		{"http://" + host, http.StatusSwitchingProtocols},
		{"https://evil.example", http.StatusForbidden},
		{"https://app.example.evil.example", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("origin %q", tt.origin), func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			ws, resp, err := (&websocket.Dialer{HandshakeTimeout: waitFor}).DialContext(t.Context(), e.url, h)
			if ws != nil {
				ws.Close()
			}
			if resp == nil {
				t.Fatalf("dial: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d (%v); want %d", resp.StatusCode, err, tt.status)
			}
		})
	}
	t.Run("plain GET", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+host+"/ws", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired {
			t.Errorf("status %d; want 426", resp.StatusCode)
		}
	})
}

// A client that stops reading (tiny queue and socket buffers) is dropped
// with a resource_exhausted notice and close 1008, while another
// subscriber of the same feeds gets every frame, its book chain unbroken.
func TestSlowConsumerIsDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *wsfeed.Config) { c.SendQueue, c.SocketWriteBuffer = 64, 4096 })
	fund(t, e.p, "maker")
	slow := dialURL(t, e.url, nil, smallDialer())
	fast := e.dial(t)
	const sub = `{"op":"subscribe","channels":[{"name":"book","symbols":["BTCUSDT"]},{"name":"trades","symbols":["BTCUSDT"]}]}`
	for _, c := range []*client{slow, fast} {
		c.send(sub)
		c.expect("subscribed", "", "")
	}
	frames := make(chan frame, 100_000)
	readErr := make(chan error, 1)
	go func() { // the fast client reads all along
		for {
			f, err := fast.tryRead(waitFor)
			if err != nil {
				readErr <- err
				return
			}
			frames <- f
		}
	}()

	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	orders := 0
	for e.feed.Stats().SlowConsumers == 0 { // resting asks, one delta each, until the slow client's queue is full
		if ctx.Err() != nil || orders == 3000 {
			t.Fatalf("slow client not dropped after %d orders", orders)
		}
		place(t, e.p, "maker", sell, "0.00100", fmt.Sprintf("%d.00", 60000+orders))
		orders++
	}
	place(t, e.p, "maker", sell, "0.00100", "59000.00") // one more after the drop
	e.p.WaitSettled(t)
	var book *marketdatav1.GetBookResponse
	polltest.True(t, "GetBook to show every order", func() bool {
		var err error
		book, err = e.p.MarketData.GetBook(t.Context(), &marketdatav1.GetBookRequest{InstrumentId: "BTCUSDT"})
		return err == nil && len(book.GetBook().GetAsks()) == orders+1
	})

	// The slow client, reading at last: what the socket held, the notice, the close.
	var last frame
	for {
		f, err := slow.tryRead(waitFor)
		if err != nil {
			if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
				t.Errorf("slow client ended with %v; want close 1008", err)
			}
			break
		}
		last = f
	}
	if last.Op != "error" || last.Code != "resource_exhausted" {
		t.Errorf("slow client's last frame %s; want the resource_exhausted notice", last)
	}

	// The fast client got everything, in order.
	kept := &l2{}
	for kept.seq < book.GetBook().GetSeq() {
		select {
		case f := <-frames:
			if f.Op == "book" {
				kept.apply(t, f)
			}
		case err := <-readErr:
			t.Fatalf("fast client: %v at seq %d of %d", err, kept.seq, book.GetBook().GetSeq())
		}
	}
	if got, want := kept.String(), fromSnapshot(book.GetBook()); got != want {
		t.Errorf("fast client's book %s; GetBook %s", got, want)
	}
	if n := e.feed.Stats().SlowConsumers; n != 1 {
		t.Errorf("%d slow consumers dropped; want 1", n)
	}
	t.Logf("dropped after %d orders", orders)
}

// smallDialer dials with a 4 KiB socket receive buffer, so that a client
// that does not read stalls the server's writes at once.
func smallDialer() *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: waitFor, NetDialContext: (&net.Dialer{
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			return errors.Join(err, serr)
		},
	}).DialContext}
}

// Clients that never read and ask for the book again and again at every
// depth (each answer a fresh snapshot of up to 300 levels) are dropped
// once their byte budget is full, and the server never holds more than
// the budgets: by its own count and on the heap. Not parallel: it reads
// the process's heap.
func TestDepthCyclingStaysWithinTheByteBudget(t *testing.T) {
	const (
		levels  = 300
		clients = 20
		budget  = 64 << 10
	)
	e := newEnv(t, func(c *wsfeed.Config) {
		c.SendBytes, c.SocketWriteBuffer, c.WriteTimeout = budget, 4096, 5*time.Second
	})
	fund(t, e.p, "maker")
	for i := range levels {
		place(t, e.p, "maker", sell, "0.00100", fmt.Sprintf("%d.00", 60000+i))
	}
	polltest.True(t, "the book to hold every level", func() bool {
		b, err := e.p.MarketData.GetBook(t.Context(), &marketdatav1.GetBookRequest{InstrumentId: "BTCUSDT"})
		return err == nil && len(b.GetBook().GetAsks()) == levels
	})
	cs := make([]*client, clients)
	for i := range cs {
		cs[i] = dialURL(t, e.url, nil, smallDialer())
	}
	heapBefore := liveHeap()
	for _, c := range cs { // never read: each subscribe queues one more snapshot
		for depth := 1; depth <= levels; depth++ {
			_ = c.ws.SetWriteDeadline(time.Now().Add(waitFor))
			frame := fmt.Sprintf(`{"op":"subscribe","channels":[{"name":"book","symbols":["BTCUSDT"],"depth":%d}]}`, depth)
			if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
				break // dropped already
			}
		}
	}
	var held int
	var grew uint64
	polltest.True(t, "every client to be dropped", func() bool {
		st := e.feed.Stats()
		held = max(held, st.QueuedBytes)
		if now := liveHeap(); now > heapBefore {
			grew = max(grew, now-heapBefore)
		}
		return st.Connections == 0
	})
	t.Logf("at most %d KiB queued at once; the live heap grew by at most %d KiB", held>>10, grew>>10)
	if n := e.feed.Stats().SlowConsumers; n != clients {
		t.Errorf("%d slow consumers; want %d", n, clients)
	}
	if limit := clients * budget; held > limit {
		t.Errorf("%d bytes queued at once; the budgets are %d", held, limit)
	}
	if grew > 16<<20 { // without budgets the queues held about 40 MB here
		t.Errorf("the live heap grew by %d MB", grew>>20)
	}
}

// liveHeap is the bytes of live heap objects after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// One client address holds at most MaxConnectionsPerAddress connections;
// one more is refused with 429 until one closes.
func TestConnectionsPerAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *wsfeed.Config) { c.MaxConnectionsPerAddress = 3 })
	cs := make([]*client, 3)
	for i := range cs {
		cs[i] = e.dial(t)
	}
	// A connection counts once its goroutine registered it, just after the
	// upgrade (one upgraded meanwhile is closed with 1013 instead of a 429).
	polltest.True(t, "three connections counted", func() bool { return e.feed.Stats().Connections == 3 })
	ws, resp, err := (&websocket.Dialer{HandshakeTimeout: waitFor}).DialContext(t.Context(), e.url, nil)
	if ws != nil {
		ws.Close()
	}
	if resp == nil {
		t.Fatalf("fourth dial: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fourth connection: status %d; want 429", resp.StatusCode)
	}
	cs[0].ws.Close()
	polltest.True(t, "a connection to be let in once one closed", func() bool {
		ws, resp, err := (&websocket.Dialer{HandshakeTimeout: waitFor}).DialContext(t.Context(), e.url, nil)
		if resp != nil {
			resp.Body.Close()
		}
		if err != nil {
			return false
		}
		t.Cleanup(func() { ws.Close() })
		return true
	})
	polltest.True(t, "three connections again", func() bool { return e.feed.Stats().Connections == 3 })
}
