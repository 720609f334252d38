package gateway

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// maxPipelined bounds the bytes a client may send on a connection while a
// server stream is written to it before it counts as gone.
const maxPipelined = 64 << 10

// peerWatch notices that the client of a server stream left. fasthttp
// learns that a connection closed only when a write to it fails, and a
// quiet stream (no balance change for an hour) may not write for as long,
// holding its NATS consumer all the while. So the watch reads the
// connection, which the server does not do while it writes a response: a
// read that ends (EOF, reset, a TLS close) means the client closed it. The
// stream's response says Connection: close, so the server never reads the
// connection again and whatever the client sent meanwhile (a pipelined
// request) is discarded, up to maxPipelined.
type peerWatch struct {
	conn net.Conn
	done chan struct{}

	mu      sync.Mutex
	stopped bool
}

// watchPeer calls gone once if the client closes conn before stop is
// called. stop ends the watch and waits for it.
func watchPeer(conn net.Conn, gone func()) (stop func()) {
	w := &peerWatch{conn: conn, done: make(chan struct{})}
	go w.run(gone)
	return w.stop
}

func (w *peerWatch) run(gone func()) {
	defer close(w.done)
	buf := make([]byte, 4096)
	read := 0
	for {
		n, err := w.conn.Read(buf)
		read += n
		timeout := errors.Is(err, os.ErrDeadlineExceeded)
		w.mu.Lock()
		stopped := w.stopped
		if timeout && !stopped { // the server's read deadline from the request, not stop's
			_ = w.conn.SetReadDeadline(time.Time{})
		}
		w.mu.Unlock()
		switch {
		case stopped:
			return
		case (err != nil && !timeout) || read > maxPipelined:
			gone()
			return
		}
	}
}

func (w *peerWatch) stop() {
	w.mu.Lock()
	w.stopped = true
	_ = w.conn.SetReadDeadline(time.Now()) // ends the read under way
	w.mu.Unlock()
	<-w.done
}
