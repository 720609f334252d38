package wsfeed

import (
	"sync"

	"github.com/fasthttp/websocket"
)

// frame is one server text frame. A frame shared by many connections
// carries a prepared message (its wire form built once, written to every
// connection without copying); a frame of one connection carries its
// bytes only.
type frame struct {
	data []byte
	pm   *websocket.PreparedMessage
}

// sharedFrame prepares data for fan-out to many connections.
func sharedFrame(data []byte) *frame {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, data)
	if err != nil { // cannot happen for a text message without compression
		return &frame{data: data}
	}
	return &frame{pm: pm}
}

// ownFrame is a frame for one connection.
func ownFrame(data []byte) *frame { return &frame{data: data} }

// write writes the frame to ws.
func (f *frame) write(ws *websocket.Conn) error {
	if f.pm != nil {
		return ws.WritePreparedMessage(f.pm)
	}
	return ws.WriteMessage(websocket.TextMessage, f.data)
}

// outbox is a connection's bounded send queue: producers (the fan-out,
// the connection's reader) append without ever blocking, the
// connection's writer takes everything queued at once. A connection that
// never received anything holds no buffer.
type outbox struct {
	mu     sync.Mutex
	queue  []*frame
	spare  []*frame
	limit  int
	closed bool
	wake   chan struct{} // capacity 1: "something to do"
}

func newOutbox(limit int) *outbox {
	return &outbox{limit: limit, wake: make(chan struct{}, 1)}
}

// pushResult says what push did.
type pushResult uint8

const (
	pushed     pushResult = iota
	overflowed            // the queue was full: the outbox closed, drop the connection
	refused               // the outbox was closed already
)

// push queues f without blocking.
func (o *outbox) push(f *frame) pushResult {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return refused
	}
	if len(o.queue) >= o.limit {
		o.closed, o.queue = true, nil
		o.mu.Unlock()
		return overflowed
	}
	o.queue = append(o.queue, f)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return pushed
}

// take returns every queued frame; the slice is the caller's until the
// next take, and the caller clears it once written (so that it does not
// keep the frames alive).
func (o *outbox) take() []*frame {
	o.mu.Lock()
	batch := o.queue
	o.queue, o.spare = o.spare[:0], batch
	o.mu.Unlock()
	return batch
}

// close discards what is queued and refuses what comes.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed, o.queue, o.spare = true, nil, nil
	o.mu.Unlock()
}
