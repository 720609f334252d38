package wsfeed

import (
	"sync"

	"github.com/fasthttp/websocket"
)

// frame is one server text frame. A frame shared by many connections
// carries a prepared message (its wire form built once, written to every
// connection without copying); a frame of one connection carries its
// bytes only. size is its payload's length, what it counts against a
// connection's byte budget.
type frame struct {
	data []byte
	pm   *websocket.PreparedMessage
	size int
}

// sharedFrame prepares data for fan-out to many connections.
func sharedFrame(data []byte) *frame {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, data)
	if err != nil { // cannot happen for a text message without compression
		return &frame{data: data, size: len(data)}
	}
	return &frame{pm: pm, size: len(data)}
}

// ownFrame is a frame for one connection.
func ownFrame(data []byte) *frame { return &frame{data: data, size: len(data)} }

// write writes the frame to ws.
func (f *frame) write(ws *websocket.Conn) error {
	if f.pm != nil {
		return ws.WritePreparedMessage(f.pm)
	}
	return ws.WriteMessage(websocket.TextMessage, f.data)
}

// outbox is a connection's bounded send queue: producers (the fan-out,
// the connection's reader) append without ever blocking, the
// connection's writer takes everything queued at once. It is bounded in
// frames and in bytes: the bytes of the frames queued and of the batch
// being written count until that batch is written (a shared frame counts
// in full for every connection that holds it), except that one frame
// larger than the whole budget passes when nothing else is held. A
// connection that never received anything holds no buffer.
type outbox struct {
	mu       sync.Mutex
	queue    []*frame
	spare    []*frame
	limit    int // frames
	maxBytes int
	bytes    int // queued and being written
	closed   bool
	wake     chan struct{} // capacity 1: "something to do"
}

func newOutbox(limit, maxBytes int) *outbox {
	return &outbox{limit: limit, maxBytes: maxBytes, wake: make(chan struct{}, 1)}
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
	if len(o.queue) >= o.limit || (o.bytes > 0 && o.bytes+f.size > o.maxBytes) {
		o.closed, o.queue, o.bytes = true, nil, 0
		o.mu.Unlock()
		return overflowed
	}
	o.queue = append(o.queue, f)
	o.bytes += f.size
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return pushed
}

// take returns every queued frame; the slice is the caller's until the
// next take, and the caller calls written with it once done (so that its
// bytes leave the budget and it keeps no frame alive).
func (o *outbox) take() []*frame {
	o.mu.Lock()
	batch := o.queue
	o.queue, o.spare = o.spare[:0], batch
	o.mu.Unlock()
	return batch
}

// written releases a batch from take.
func (o *outbox) written(batch []*frame) {
	n := 0
	for _, f := range batch {
		n += f.size
	}
	clear(batch)
	o.mu.Lock()
	if !o.closed {
		o.bytes -= n
	}
	o.mu.Unlock()
}

// queued is how many bytes the outbox holds (queued and being written).
func (o *outbox) queued() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bytes
}

// close discards what is queued and refuses what comes.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed, o.queue, o.spare, o.bytes = true, nil, nil, 0
	o.mu.Unlock()
}
