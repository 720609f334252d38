package streams

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// Message is one delivered message, decoded.
type Message[T proto.Message] struct {
	// Topic, Key and Subject locate the message.
	Topic, Key, Subject string
	// Payload is the decoded message.
	Payload T
	// Header holds every header as published (Nats-Msg-Id, ce-*, ...).
	Header nats.Header
	// ID is the message id (Nats-Msg-Id, also ce-id).
	ID string
	// Sequence is the message's stream sequence.
	Sequence uint64
	// Delivery counts attempts at this message, from 1: broker redeliveries
	// plus retries in place.
	Delivery int
	// Time is when the stream stored the message.
	Time time.Time

	raw jetstream.Msg
}

// InProgress tells the broker the handler is still working, resetting the
// ack deadline; call it periodically from handlers slower than AckWait. A
// message read for a catch-up (ConsumerConfig.Resume) has no delivery to
// extend, and InProgress does nothing.
func (m *Message[T]) InProgress() error {
	if m.raw == nil {
		return nil
	}
	if err := m.raw.InProgress(); err != nil {
		return brokerError("in progress", err)
	}
	return nil
}

// Handler processes one message. Returning nil acknowledges it; an error
// retries it with exponential backoff until MaxDeliver attempts, after which
// it is written to the dead-letter topic and terminated. Wrap an error with
// Permanent to skip the remaining retries. A panic is recovered and treated
// as an error. ErrInFlight (from Idempotent: the same event is being handled
// elsewhere) waits BackoffMax and tries again without spending an attempt.
type Handler[T proto.Message] func(ctx context.Context, m *Message[T]) error

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: the message goes to the
// dead-letter topic at once.
func Permanent(err error) error { return permanentError{err} }

// Ordering says how a consumer orders processing.
type Ordering int

const (
	// PerKey (the default) processes the messages of one key one at a time,
	// in stream order, and different keys in parallel. A failing message is
	// retried in place, holding back later messages of its key (as a Kafka
	// partition does) but no other key.
	PerKey Ordering = iota
	// Unordered processes messages in parallel regardless of key; a failing
	// message is negatively acknowledged with a backoff delay and may be
	// redelivered to any instance, after later messages.
	Unordered
)

// Start says where a new durable consumer begins; an existing one resumes
// where it stopped.
type Start struct {
	policy jetstream.DeliverPolicy
	seq    uint64
	time   time.Time
}

// StartNew begins with messages published after the consumer is created.
func StartNew() Start { return Start{policy: jetstream.DeliverNewPolicy} }

// StartAll begins with the first message of the topic (the default).
func StartAll() Start { return Start{policy: jetstream.DeliverAllPolicy} }

// StartAtSequence begins at stream sequence seq.
func StartAtSequence(seq uint64) Start {
	return Start{policy: jetstream.DeliverByStartSequencePolicy, seq: seq}
}

// StartAtTime begins with the first message stored at or after t.
func StartAtTime(t time.Time) Start {
	return Start{policy: jetstream.DeliverByStartTimePolicy, time: t}
}

// ConsumerConfig configures a durable consumer.
type ConsumerConfig struct {
	// Name is the durable consumer name, "<service>-<purpose>"
	// ("wallet-settlement"). Instances with the same name compete: each
	// message is processed by one of them. Required.
	Name string
	// Start is where a new durable begins; default StartAll.
	Start Start
	// Keys, when set, restricts the consumer to these partition keys.
	Keys []string
	// Ordering is PerKey (default) or Unordered.
	Ordering Ordering
	// Concurrency is how many messages are processed at once (for PerKey,
	// how many keys); default 1.
	Concurrency int
	// MaxDeliver bounds attempts per message before it is dead-lettered;
	// default 5.
	MaxDeliver int
	// BackoffBase and BackoffMax shape the retry delay: exponential from
	// base, capped at max, with jitter; defaults 100ms and 10s.
	BackoffBase, BackoffMax time.Duration
	// AckWait is how long the broker waits for an ack before redelivering;
	// default 30s. Handlers slower than that call Message.InProgress (the
	// library does so itself while it waits to retry).
	AckWait time.Duration
	// AckSync waits for the broker to confirm each ack, so that a processed
	// message is never redelivered because an ack was lost.
	AckSync bool
	// MaxAckPending bounds messages delivered but not yet acknowledged;
	// default 1000.
	MaxAckPending int
	// Resume, for a PerKey consumer, returns the stream sequence of the
	// last message of key that the handler has applied (0: none). When set,
	// the first message of each key that this instance receives is preceded
	// by the messages of that key stored after that sequence, before the
	// delivered one and up to the last message the consumer had delivered
	// when this instance started, read from the stream and handed to the
	// handler in order. Without it, the messages an instance that died had
	// fetched but not acknowledged come back only after AckWait, mixed with
	// later messages of their key: a handler that skips what is at or
	// before the last message it applied would skip them for good. The
	// handler must skip those redeliveries (they were applied in the
	// catch-up). Order per key across instances needs one instance per key
	// (Keys), as for any PerKey consumer.
	Resume func(ctx context.Context, key string) (uint64, error)
	// InactiveThreshold, when set, lets the broker delete the durable once
	// nothing has fetched from it for that long: for per-process consumers
	// (caches) that must not outlive a process that died without Stop.
	InactiveThreshold time.Duration
	// Logger receives the consumer's logs; nil discards them.
	Logger *slog.Logger
}

func (c ConsumerConfig) withDefaults() (ConsumerConfig, error) {
	if c.Name == "" {
		return c, fmt.Errorf("%w: consumer name is required", ErrInvalidConfig)
	}
	if c.Start == (Start{}) {
		c.Start = StartAll()
	}
	setDefault(&c.Concurrency, 1)
	setDefault(&c.MaxDeliver, 5)
	setDefault(&c.BackoffBase, 100*time.Millisecond)
	setDefault(&c.BackoffMax, 10*time.Second)
	setDefault(&c.AckWait, 30*time.Second)
	setDefault(&c.MaxAckPending, 1000)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Concurrency < 1 || c.MaxDeliver < 1 || c.MaxAckPending < 1:
		return c, fmt.Errorf("%w: consumer %s: concurrency, max deliver and max ack pending must be positive", ErrInvalidConfig, c.Name)
	case c.BackoffBase > c.BackoffMax:
		return c, fmt.Errorf("%w: consumer %s: backoff base %s above max %s", ErrInvalidConfig, c.Name, c.BackoffBase, c.BackoffMax)
	case c.Ordering != PerKey && c.Ordering != Unordered:
		return c, fmt.Errorf("%w: consumer %s: unknown ordering %d", ErrInvalidConfig, c.Name, c.Ordering)
	case c.Resume != nil && c.Ordering != PerKey:
		return c, fmt.Errorf("%w: consumer %s: Resume needs PerKey ordering", ErrInvalidConfig, c.Name)
	}
	for _, k := range c.Keys {
		if err := ValidateKey(k); err != nil {
			return c, fmt.Errorf("consumer %s: %w", c.Name, err)
		}
	}
	return c, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// A pull request lost on its way (sent while a replicated consumer has no
// leader yet, or across a leader change: the broker answers "no
// responders") leaves nats.go waiting for messages it will never get
// until two heartbeats are missed; then it pulls again. With nats.go's
// defaults (30 s expiry, 15 s heartbeat) such a consumer stalled 30 s on a
// fresh 3-node cluster; these bound the stall to 4 s for a heartbeat from
// each idle consumer every 2 s.
const (
	pullExpiry    = 10 * time.Second
	pullHeartbeat = 2 * time.Second
)

// Consumer is a running durable consumer; Stop it to drain.
type Consumer struct {
	name    string
	iter    jetstream.MessagesContext
	stopped chan struct{} // closed when Stop begins
	done    chan struct{} // closed when the dispatcher and workers have ended
	hard    context.CancelFunc
	once    sync.Once
	// exists asks the broker for the consumer (after heartbeats stayed
	// missing for long: deleted, it never delivers again).
	exists func(ctx context.Context) error
}

// Consume starts a durable consumer of topic, on client's connection, that
// hands each message to h.
// It returns once the consumer exists on the broker; processing runs until
// ctx is cancelled or Stop is called.
func Consume[T proto.Message](ctx context.Context, client *Client, topic string, cfg ConsumerConfig, h Handler[T]) (*Consumer, error) {
	js, catalog := client.js, client.catalog
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	t, err := catalog.Topic(topic)
	if err != nil {
		return nil, err
	}
	var zero T
	if got := zero.ProtoReflect().Descriptor().FullName(); got != t.MessageName() {
		return nil, fmt.Errorf("%w: handler of %s takes %s, the topic carries %s", ErrWrongType, topic, got, t.MessageName())
	}
	jc, err := ensureConsumer(ctx, js, t, cfg)
	if err != nil {
		return nil, err
	}
	var horizon, ackFloor uint64
	if cfg.Resume != nil {
		info, err := jc.Info(ctx)
		if err != nil {
			return nil, brokerError("consumer info "+cfg.Name, err)
		}
		horizon, ackFloor = info.Delivered.Stream, info.AckFloor.Stream
	}
	iter, err := jc.Messages(jetstream.PullMaxMessages(min(cfg.MaxAckPending, 256)),
		jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return nil, brokerError("consume "+cfg.Name, err)
	}
	// Handlers run on a context that survives Stop (in-flight work finishes)
	// and ends only when Stop's own deadline passes.
	hctx, hard := context.WithCancel(context.WithoutCancel(ctx))
	c := &Consumer{name: cfg.Name, iter: iter, stopped: make(chan struct{}), done: make(chan struct{}), hard: hard,
		exists: func(ctx context.Context) error { _, err := jc.Info(ctx); return err }}
	p := &processor[T]{tracer: client.tracer, js: js, topic: t, cfg: cfg, handler: h, stopped: c.stopped, caughtUp: map[string]bool{}, horizon: horizon, ackFloor: ackFloor}
	go c.run(hctx, p, cfg)
	go func() {
		select {
		case <-ctx.Done():
			c.beginStop()
		case <-c.done:
		}
	}()
	return c, nil
}

// Stop drains the consumer: it stops fetching, lets handlers in flight
// finish and acknowledges their messages, and hands back (Nak) the messages
// fetched but not started, so that nothing is lost or processed twice. If
// ctx ends first, handlers are cancelled and their messages are redelivered
// later.
func (c *Consumer) Stop(ctx context.Context) error {
	c.beginStop()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.hard()
		<-c.done
		return fmt.Errorf("stop consumer %s: %w", c.name, ctx.Err())
	}
}

// Done is closed when the consumer has stopped.
func (c *Consumer) Done() <-chan struct{} { return c.done }

func (c *Consumer) beginStop() {
	c.once.Do(func() {
		close(c.stopped)
		c.iter.Drain()
	})
}

// missesBeforeCheck is how many heartbeats missed in a row (4 s each)
// make the consumer ask the broker whether it still exists.
const missesBeforeCheck = 15

// existsTimeout bounds that question.
const existsTimeout = 5 * time.Second

// gone reports whether the broker says the consumer (or its stream) no
// longer exists; any other answer, or none, is not proof of it.
func (c *Consumer) gone(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, existsTimeout)
	defer cancel()
	err := c.exists(ctx)
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
}

// messageProcessor handles one fetched message to its ack decision.
type messageProcessor interface {
	process(ctx context.Context, m jetstream.Msg)
}

// run dispatches fetched messages to workers until the iterator closes.
func (c *Consumer) run(ctx context.Context, p messageProcessor, cfg ConsumerConfig) {
	defer close(c.done)
	defer c.hard()
	lanes := make([]chan jetstream.Msg, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan jetstream.Msg, 64)
		if cfg.Ordering == Unordered && i > 0 {
			lanes[i] = lanes[0] // one shared queue, many workers
		}
		wg.Go(func() {
			for m := range lanes[i] {
				p.process(ctx, m)
			}
		})
	}
	seed := maphash.MakeSeed()
	misses := 0 // heartbeats missed in a row
	for {
		m, err := c.iter.Next()
		if errors.Is(err, jetstream.ErrNoHeartbeat) {
			// Not the end: nats.go has pulled again and goes on, unless
			// the consumer is gone from the broker (deleted meanwhile).
			misses++
			cfg.Logger.WarnContext(ctx, "consumer heard no heartbeat from the broker; pulling again", "consumer", c.name, "misses", misses)
			if misses%missesBeforeCheck == 0 && c.gone(ctx) {
				cfg.Logger.ErrorContext(ctx, "consumer stopped fetching: it no longer exists on the broker", "consumer", c.name)
				break
			}
			continue
		}
		misses = 0
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				cfg.Logger.ErrorContext(ctx, "consumer stopped fetching", "consumer", c.name, "err", err)
			}
			break
		}
		lane := uint64(0)
		if cfg.Ordering == PerKey {
			lane = maphash.String(seed, m.Subject()) % uint64(len(lanes))
		}
		lanes[lane] <- m
	}
	closed := map[chan jetstream.Msg]bool{}
	for _, l := range lanes {
		if !closed[l] {
			closed[l] = true
			close(l)
		}
	}
	wg.Wait()
}
