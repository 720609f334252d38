package wsfeed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1/marketdatav1connect"
)

// Fan-out and idle-connection benchmarks (docs/benchmarks.md, "WebSocket
// fan-out"). The upstream is an in-process fake of the market data
// service's StreamBook, served over real Connect (HTTP/1.1 loopback): the
// point is the cost of the fan-out, so the deltas come from the benchmark,
// not from the matching engine. Both cases read the same fake stream and
// reach the same clients over loopback WebSockets.

const (
	benchConns  = 1000
	benchSymbol = "BENCH"
)

// fakeBook serves StreamBook: an empty snapshot, then whatever the
// benchmark sends to the stream's channel. Each call registers its
// channel on streams.
type fakeBook struct {
	marketdatav1connect.UnimplementedMarketDataServiceHandler
	streams chan chan *marketdatav1.BookDelta
}

func (f *fakeBook) StreamBook(ctx context.Context, req *marketdatav1.StreamBookRequest, s *connect.ServerStream[marketdatav1.StreamBookResponse]) error {
	ch := make(chan *marketdatav1.BookDelta, 1024)
	snap := &marketdatav1.BookSnapshot{InstrumentId: req.GetInstrumentId()}
	if err := s.Send(&marketdatav1.StreamBookResponse{Event: &marketdatav1.StreamBookResponse_Snapshot{Snapshot: snap}}); err != nil {
		return err
	}
	f.streams <- ch
	for {
		select {
		case <-ctx.Done():
			return nil
		case d := <-ch:
			if err := s.Send(&marketdatav1.StreamBookResponse{Event: &marketdatav1.StreamBookResponse_Delta{Delta: d}}); err != nil {
				return err
			}
		}
	}
}

// fanoutEnv is the feed with benchConns subscribed clients.
type fanoutEnv struct {
	feed    *Feed
	md      marketdatav1connect.MarketDataServiceClient
	hubFeed chan *marketdatav1.BookDelta // the hub's upstream stream
	fake    *fakeBook
	conns   []*conn // the server side of every client
	cur     atomic.Pointer[round]
	seq     uint64 // last seq published (any case)
	hubSeq  uint64 // last seq the hub's book holds
}

// round is one measured run: b.N messages to every client.
type round struct {
	base      uint64         // seq of message 0
	sent      []atomic.Int64 // publish time (ns) by message
	remaining []atomic.Int32 // clients yet to receive it
	lat       [][]int64      // receipt - publish (ns), by client
	window    chan struct{}  // messages in flight: published, not yet received by every client
	done      chan struct{}
	left      atomic.Int64 // messages not yet received by everyone
}

func newRound(base uint64, n, window int) *round {
	r := &round{base: base, sent: make([]atomic.Int64, n), remaining: make([]atomic.Int32, n),
		lat: make([][]int64, benchConns), window: make(chan struct{}, window), done: make(chan struct{})}
	for i := range r.remaining {
		r.remaining[i].Store(benchConns)
	}
	for i := range r.lat {
		r.lat[i] = make([]int64, 0, n)
	}
	r.left.Store(int64(n))
	return r
}

// received records client c's receipt of seq.
func (r *round) received(c int, seq uint64, now int64) {
	if seq < r.base || seq >= r.base+uint64(len(r.sent)) {
		return
	}
	i := seq - r.base
	r.lat[c] = append(r.lat[c], now-r.sent[i].Load())
	if r.remaining[i].Add(-1) == 0 {
		<-r.window
		if r.left.Add(-1) == 0 {
			close(r.done)
		}
	}
}

func newFanoutEnv(b *testing.B) *fanoutEnv {
	b.Helper()
	fake := &fakeBook{streams: make(chan chan *marketdatav1.BookDelta, 4)}
	mux := http.NewServeMux()
	mux.Handle(marketdatav1connect.NewMarketDataServiceHandler(fake))
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	md := marketdatav1connect.NewMarketDataServiceClient(srv.Client(), srv.URL)

	cfg := Default()
	cfg.HeartbeatInterval, cfg.PingInterval, cfg.PongWait = time.Hour, time.Hour, 2*time.Hour
	feed, err := New(cfg, Deps{MarketData: md})
	if err != nil {
		b.Fatal(err)
	}
	e := &fanoutEnv{feed: feed, md: md, fake: fake}
	url := serveBench(b, feed.Handler())
	dialer := &fws.Dialer{HandshakeTimeout: time.Minute, ReadBufferSize: 4096, WriteBufferSize: 512}
	var wg sync.WaitGroup
	for i := range benchConns {
		ws, resp, err := dialer.DialContext(b.Context(), url, nil)
		if err != nil {
			b.Fatalf("dial %d: %v", i, err)
		}
		resp.Body.Close()
		b.Cleanup(func() { ws.Close() })
		if err := ws.WriteMessage(fws.TextMessage, []byte(`{"op":"subscribe","channels":[{"name":"book","symbols":["`+benchSymbol+`"]}]}`)); err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			e.hubFeed = <-fake.streams // the hub opened its one upstream
		}
		wg.Add(1)
		go e.read(i, ws, &wg)
	}
	wg.Wait() // every client has its ack and snapshot
	feed.mu.Lock()
	for c := range feed.conns {
		e.conns = append(e.conns, c)
	}
	feed.mu.Unlock()
	if len(e.conns) != benchConns {
		b.Fatalf("%d server connections; want %d", len(e.conns), benchConns)
	}
	return e
}

// read is client i: it reads every frame (into one reused buffer) and
// records the receipt of each delta.
func (e *fanoutEnv) read(i int, ws *fws.Conn, ready *sync.WaitGroup) {
	buf := make([]byte, 0, 4096)
	for n := 0; ; n++ {
		if n == 2 { // the ack and the snapshot
			ready.Done()
		}
		_, r, err := ws.NextReader()
		if err != nil {
			return
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = slices.Grow(buf, 4096)
			}
			m, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+m]
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return
			}
		}
		if seq, ok := deltaSeq(buf); ok {
			if rd := e.cur.Load(); rd != nil {
				rd.received(i, seq, time.Now().UnixNano())
			}
		}
	}
}

// deltaSeq reads the seq of a book delta frame.
func deltaSeq(frame []byte) (uint64, bool) {
	if !bytes.Contains(frame[:min(len(frame), 40)], []byte(`"delta"`)) {
		return 0, false
	}
	i := bytes.Index(frame, []byte(`"seq":`))
	if i < 0 {
		return 0, false
	}
	rest := frame[i+len(`"seq":`):]
	j := bytes.IndexByte(rest, ',')
	if j < 0 {
		return 0, false
	}
	seq, err := strconv.ParseUint(string(rest[:j]), 10, 64)
	return seq, err == nil
}

// delta is the benchmark's change: one bid level of twenty.
func delta(seq, prev uint64) *marketdatav1.BookDelta {
	return &marketdatav1.BookDelta{InstrumentId: benchSymbol, Seq: seq, PrevSeq: prev, Bids: []*marketdatav1.BookLevel{
		{Price: strconv.FormatUint(1000+seq%20, 10) + ".00", Quantity: strconv.FormatUint(1+seq%7, 10) + ".000"},
	}}
}

// run publishes b.N deltas through send, at most window in flight, and
// reports deliveries/s and latency percentiles.
func (e *fanoutEnv) run(b *testing.B, window int, send func(*marketdatav1.BookDelta)) {
	r := newRound(e.seq+1, b.N, window)
	e.cur.Store(r)
	defer e.cur.Store(nil)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		r.window <- struct{}{}
		e.seq++
		r.sent[i].Store(time.Now().UnixNano())
		send(delta(e.seq, e.hubSeq))
	}
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d messages not delivered to every client", r.left.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	var all []int64
	for _, l := range r.lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	deliveries := float64(b.N) * benchConns
	b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(all[len(all)*50/100])/1e3, "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100])/1e3, "p99-µs")
	b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
}

// BenchmarkFanout sends book deltas of one symbol to 1,000 subscribers:
// through the hub (impl=hub), and with a bare loop (impl=bare) that reads
// its own stream from the same fake, encodes each delta once the same way
// and writes it (the same prepared message) straight to every one of the
// same connections, one after the other. window=1 publishes a message
// once the previous one reached every client (the latency of one
// fan-out); window=32 keeps 32 in flight (throughput).
func BenchmarkFanout(b *testing.B) {
	e := newFanoutEnv(b)
	bare, err := e.md.StreamBook(b.Context(), &marketdatav1.StreamBookRequest{InstrumentId: benchSymbol})
	if err != nil {
		b.Fatal(err)
	}
	defer bare.Close()
	if !bare.Receive() { // the snapshot
		b.Fatal(bare.Err())
	}
	bareFeed := <-e.fake.streams
	k := key{ch: chBook, name: benchSymbol}
	bareDone := make(chan struct{})
	go func() { // the bare broadcast loop
		defer close(bareDone)
		for bare.Receive() {
			f := dataFrame(k, typeDelta, bare.Msg().GetDelta())
			for _, c := range e.conns {
				c.wmu.Lock()
				_ = c.ws.SetWriteDeadline(time.Now().Add(e.feed.cfg.WriteTimeout))
				_ = f.write(c.ws)
				c.wmu.Unlock()
			}
		}
	}()
	for _, window := range []int{1, 32} {
		b.Run(fmt.Sprintf("window=%d/impl=bare", window), func(b *testing.B) {
			e.run(b, window, func(d *marketdatav1.BookDelta) { bareFeed <- d })
		})
		b.Run(fmt.Sprintf("window=%d/impl=hub", window), func(b *testing.B) {
			e.run(b, window, func(d *marketdatav1.BookDelta) { e.hubSeq = d.GetSeq(); e.hubFeed <- d })
		})
	}
	if n := e.feed.Stats().SlowConsumers; n != 0 {
		b.Errorf("%d slow consumers dropped", n)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.Context()), time.Minute)
	defer cancel()
	if err := e.feed.Shutdown(ctx); err != nil {
		b.Error(err)
	}
	_ = bare.Close()
	<-bareDone
}

// BenchmarkIdleConn measures the memory (heap and goroutine stacks) each
// idle connection costs the server: through the feed (impl=feed: a
// connection with its writer, queue and tickers, no subscription) and
// through a bare contrib/websocket handler that only reads (impl=bare).
// The clients are raw TCP connections after a hand-written handshake (no
// buffers, no goroutines: a few hundred bytes each, counted in both).
func BenchmarkIdleConn(b *testing.B) {
	b.Run("impl=bare", func(b *testing.B) {
		var open atomic.Int64
		h := websocket.New(func(c *websocket.Conn) {
			open.Add(1)
			defer open.Add(-1)
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		})
		idleConns(b, serveBench(b, h), func() int { return int(open.Load()) })
	})
	b.Run("impl=feed", func(b *testing.B) {
		feed, err := New(Default(), Deps{MarketData: marketdatav1connect.NewMarketDataServiceClient(http.DefaultClient, "http://127.0.0.1:1")})
		if err != nil {
			b.Fatal(err)
		}
		idleConns(b, serveBench(b, feed.Handler()), func() int { return feed.Stats().Connections })
		ctx, cancel := context.WithTimeout(context.WithoutCancel(b.Context()), time.Minute)
		defer cancel()
		if err := feed.Shutdown(ctx); err != nil {
			b.Error(err)
		}
	})
}

func idleConns(b *testing.B, url string, open func() int) {
	host := url[len("ws://") : len(url)-len("/ws")]
	before := inUse()
	conns := make([]net.Conn, 0, benchConns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range benchConns {
		conns = append(conns, rawHandshake(b, host))
	}
	deadline := time.Now().Add(time.Minute)
	for open() < benchConns { // the handlers run on their own goroutines
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d connections open", open(), benchConns)
		}
		runtime.Gosched()
	}
	after := inUse()
	b.ReportMetric(float64(after-before)/benchConns, "B/conn")
	b.ReportMetric(0, "ns/op")
}

// inUse is the heap and stack memory in use after a collection.
func inUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse) //nolint:gosec // far below 2^63 bytes
}

func rawHandshake(b *testing.B, host string) net.Conn {
	c, err := (&net.Dialer{}).DialContext(b.Context(), "tcp", host)
	if err != nil {
		b.Fatal(err)
	}
	req := "GET /ws HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		b.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
	if err != nil {
		b.Fatalf("handshake: %v", err)
	}
	resp.Body.Close() // a 101 has no body: the connection is the client's from here
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b.Fatalf("handshake: %s", resp.Status)
	}
	return c
}

// serveBench serves h at /ws on a loopback Fiber app until b ends.
func serveBench(b *testing.B, h fiber.Handler) string {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/ws", h)
	ln, err := (&net.ListenConfig{}).Listen(b.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	b.Cleanup(func() {
		_ = app.ShutdownWithTimeout(time.Minute)
		if err := <-served; err != nil {
			b.Error(err)
		}
	})
	return fmt.Sprintf("ws://%s/ws", ln.Addr())
}

// cpuTime is the process's CPU time (user and system).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
