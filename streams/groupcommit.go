package streams

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// GroupCommit writes the records of concurrent callers of one topic
// together: whatever queued while a write was in flight goes out as the
// next write, one atomic batch (one fsync for all of them under
// fsync=always) of up to 1,000 records. There is no timer: an idle group
// writes a caller's records at once, alone, and a batch is exactly what
// queued meanwhile. Each caller's records stay together and in order, all
// or nothing.
//
// Sharing a batch shares its fate: when a shared batch is refused as a
// conflict (one caller's expected sequence or message id), nothing was
// stored and each caller is written again on its own, so a caller gets the
// outcome of its own records. Any other failure is every caller's.
type GroupCommit struct {
	pub     *Publisher
	topic   string
	timeout time.Duration

	mu      sync.Mutex
	queue   []*groupWrite
	writing bool
	// beforeWrite, when set (tests), runs before each write.
	beforeWrite func()
}

// groupWrite is one caller's records and, once written, their outcome.
type groupWrite struct {
	ctx     context.Context //nolint:containedctx // the caller's, read by the writer for values and cancellation
	records []Record
	first   uint64
	err     error
	done    chan struct{}
}

// GroupCommit returns a group commit of topic over p. Each shared write
// runs for at most timeout (it does not end with any one caller's
// context).
func (p *Publisher) GroupCommit(topic string, timeout time.Duration) *GroupCommit {
	return &GroupCommit{pub: p, topic: topic, timeout: timeout}
}

// Commit stores records (1 to 1,000, of the group's topic) all or nothing, contiguous
// and in order, and returns the stream sequence of the first. A single
// record keeps Publish's meaning of a duplicate message id (the stored
// message's sequence); in a batch of several a duplicate is a conflict
// (ErrConcurrency), as for PublishAtomic. A caller whose ctx ends before its
// write begins is not written (ctx's error); once the write began it waits
// for the outcome.
func (g *GroupCommit) Commit(ctx context.Context, records []Record) (uint64, error) {
	if len(records) == 0 || len(records) > maxAtomicBatch {
		return 0, fmt.Errorf("%w: group commit of %d records: want 1 to %d", ErrInvalidConfig, len(records), maxAtomicBatch)
	}
	for _, r := range records {
		if r.Topic != g.topic {
			return 0, fmt.Errorf("%w: group commit of %s given a record of %s", ErrInvalidConfig, g.topic, r.Topic)
		}
	}
	w := &groupWrite{ctx: ctx, records: records, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, w)
	if !g.writing {
		g.writing = true
		go g.drain() //nolint:contextcheck // each write runs under its callers' context (write, one)
	}
	g.mu.Unlock()
	<-w.done
	return w.first, w.err
}

// drain writes what queued, batch after batch, until the queue is empty.
func (g *GroupCommit) drain() {
	for {
		g.mu.Lock()
		hook := g.beforeWrite
		g.mu.Unlock()
		if hook != nil {
			hook()
		}
		batch := g.next()
		if len(batch) == 0 {
			return
		}
		g.write(batch)
	}
}

// next takes the callers of the next write off the queue: as many as fit
// in one atomic batch, skipping those whose context ended.
func (g *GroupCommit) next() []*groupWrite {
	g.mu.Lock()
	defer g.mu.Unlock()
	var batch []*groupWrite
	n := 0
	for len(g.queue) > 0 {
		w := g.queue[0]
		if err := w.ctx.Err(); err != nil {
			g.queue = g.queue[1:]
			w.err = err
			close(w.done)
			continue
		}
		if len(batch) > 0 && n+len(w.records) > maxAtomicBatch {
			break
		}
		g.queue = g.queue[1:]
		batch = append(batch, w)
		n += len(w.records)
	}
	if len(batch) == 0 {
		g.writing = false
		g.queue = nil
	}
	return batch
}

// write stores batch as one write and hands each caller its outcome.
func (g *GroupCommit) write(batch []*groupWrite) {
	defer func() {
		for _, w := range batch {
			close(w.done)
		}
	}()
	if len(batch) == 1 {
		batch[0].first, batch[0].err = g.one(batch[0])
		return
	}
	var records []Record
	for _, w := range batch {
		records = append(records, w.records...)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), g.timeout)
	first, _, err := g.pub.PublishAtomic(ctx, records)
	cancel()
	if errors.Is(err, ErrConcurrency) {
		for _, w := range batch {
			w.first, w.err = g.one(w)
		}
		return
	}
	for _, w := range batch {
		w.first, w.err = first, err
		first += uint64(len(w.records))
	}
}

// one writes one caller's records on their own.
func (g *GroupCommit) one(w *groupWrite) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), g.timeout)
	defer cancel()
	if len(w.records) == 1 {
		r := w.records[0]
		return g.pub.Publish(ctx, r.Topic, r.Key, r.Msg, r.Opts...)
	}
	first, _, err := g.pub.PublishAtomic(ctx, w.records)
	return first, err
}
