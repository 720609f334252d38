package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
)

// Publisher writes typed messages to catalog topics. It is safe for
// concurrent use.
type Publisher struct {
	js      jetstream.JetStream
	catalog *Catalog
	source  string
	now     func() time.Time
	retries int
	tracer  trace.Tracer
}

// PublisherOption configures a Publisher.
type PublisherOption func(*Publisher)

// WithSource sets the ce-source header, naming the producer ("tradex/order").
func WithSource(source string) PublisherOption {
	return func(p *Publisher) { p.source = source }
}

// WithClock sets the clock of the ce-time header (tests).
func WithClock(now func() time.Time) PublisherOption {
	return func(p *Publisher) { p.now = now }
}

// WithPublishRetries sets how many times a publish that found the broker
// unavailable is retried, with backoff, inside the caller's deadline (default
// 5). Retrying is safe: every attempt carries the same Nats-Msg-Id.
func WithPublishRetries(n int) PublisherOption {
	return func(p *Publisher) { p.retries = max(n, 0) }
}

// NewPublisher returns a publisher of catalog's topics over js.
func NewPublisher(js jetstream.JetStream, catalog *Catalog, opts ...PublisherOption) *Publisher {
	p := &Publisher{js: js, catalog: catalog, source: "tradex", now: time.Now, retries: 5, tracer: noTracer()}
	for _, o := range opts {
		o(p)
	}
	return p
}

// PublishOption changes one publish.
type PublishOption func(*publishOptions)

type publishOptions struct {
	msgID             string
	lastSubjSeq       *uint64
	headers           nats.Header
	duplicateConflict bool
}

// WithMsgID sets the message id (Nats-Msg-Id and ce-id). Derive it from the
// event's identity (an order id, an engine input sequence) so that a retried
// or replayed publish is stored once. Without it a random id is used, which
// still makes the library's own retries safe.
func WithMsgID(id string) PublishOption {
	return func(o *publishOptions) { o.msgID = id }
}

// WithDuplicateAsConflict makes Publish fail with ErrConcurrency when the
// broker answers that the message id is already stored, instead of
// returning that message's sequence. For writers whose message id names a
// position (a journal entry at an account sequence): the stored message may
// be another writer's, with other content, and a replicated stream checks
// the id before the expected sequence. The caller re-reads and plans again
// (and finds its own write, if it was the earlier attempt).
func WithDuplicateAsConflict() PublishOption {
	return func(o *publishOptions) { o.duplicateConflict = true }
}

// WithExpectedLastSubjectSequence makes the publish fail with ErrConcurrency
// unless the last message on the same subject (topic and key) has stream
// sequence seq; 0 means the subject must be empty. It is optimistic
// concurrency for event-sourced writers.
func WithExpectedLastSubjectSequence(seq uint64) PublishOption {
	return func(o *publishOptions) { o.lastSubjSeq = &seq }
}

// WithHeader adds a header to the message (it cannot replace the mesh's own).
func WithHeader(key, value string) PublishOption {
	return func(o *publishOptions) {
		if o.headers == nil {
			o.headers = nats.Header{}
		}
		o.headers.Add(key, value)
	}
}

// Record is one message of a batch.
type Record struct {
	Topic string
	Key   string
	Msg   proto.Message
	Opts  []PublishOption
	// Context, when set, is the context whose trace the record's message
	// continues, for a batch that carries the work of several requests
	// (the batch's ctx otherwise): the record gets a send span of its own
	// in that trace.
	Context context.Context //nolint:containedctx // a record's own trace, used only while publishing it
}

// Publish writes msg to topic under key, waits for JetStream's ack and
// returns the stream sequence. A duplicate (same message id inside the
// duplicate window) returns the sequence of the message already stored.
func (p *Publisher) Publish(ctx context.Context, topic, key string, msg proto.Message, opts ...PublishOption) (seq uint64, err error) {
	ctx, span := startPublish(ctx, p.tracer, topic, 1)
	defer func() { endSpan(span, err) }()
	return p.publish(ctx, topic, key, msg, opts)
}

// publish is Publish within its span.
func (p *Publisher) publish(ctx context.Context, topic, key string, msg proto.Message, opts []PublishOption) (uint64, error) {
	m, o, err := p.build(ctx, Record{Topic: topic, Key: key, Msg: msg, Opts: opts})
	if err != nil {
		return 0, err
	}
	var jsOpts []jetstream.PublishOpt
	if o.lastSubjSeq != nil {
		jsOpts = append(jsOpts, jetstream.WithExpectLastSequencePerSubject(*o.lastSubjSeq))
	}
	for attempt := 0; ; attempt++ {
		ack, err := p.js.PublishMsg(ctx, m, jsOpts...)
		if err == nil && ack.Duplicate && o.duplicateConflict {
			return 0, fmt.Errorf("publish to %s: %w: message id %s is already stored at %d", m.Subject, ErrConcurrency, o.msgID, ack.Sequence)
		}
		if err == nil {
			return ack.Sequence, nil
		}
		if !isUnavailable(err) || attempt >= p.retries || ctx.Err() != nil {
			return 0, brokerError("publish to "+m.Subject, err)
		}
		if err := sleep(ctx, backoff(attempt, 50*time.Millisecond, time.Second)); err != nil {
			return 0, brokerError("publish to "+m.Subject, err)
		}
	}
}

// PendingAck is the broker's answer to an asynchronous publish, to come.
type PendingAck struct {
	future  jetstream.PubAckFuture
	subject string
}

// Wait returns the stream sequence once the broker acknowledged the message.
func (a *PendingAck) Wait(ctx context.Context) (uint64, error) {
	select {
	case ack := <-a.future.Ok():
		return ack.Sequence, nil
	case err := <-a.future.Err():
		return 0, brokerError("publish to "+a.subject, err)
	case <-ctx.Done():
		return 0, brokerError("publish to "+a.subject, ctx.Err())
	}
}

// PublishAsync sends msg without waiting for the ack; Wait on the result
// for it. Many messages in flight share the broker's fsyncs, which is what
// makes throughput under fsync-always possible.
func (p *Publisher) PublishAsync(ctx context.Context, topic, key string, msg proto.Message, opts ...PublishOption) (_ *PendingAck, err error) {
	ctx, span := startPublish(ctx, p.tracer, topic, 1) // the send; the ack comes later
	defer func() { endSpan(span, err) }()
	return p.publishAsync(ctx, topic, key, msg, opts)
}

// publishAsync is PublishAsync within the span of its caller.
func (p *Publisher) publishAsync(ctx context.Context, topic, key string, msg proto.Message, opts []PublishOption) (*PendingAck, error) {
	m, o, err := p.build(ctx, Record{Topic: topic, Key: key, Msg: msg, Opts: opts})
	if err != nil {
		return nil, err
	}
	var jsOpts []jetstream.PublishOpt
	if o.lastSubjSeq != nil {
		jsOpts = append(jsOpts, jetstream.WithExpectLastSequencePerSubject(*o.lastSubjSeq))
	}
	f, err := p.js.PublishMsgAsync(m, jsOpts...)
	if err != nil {
		return nil, brokerError("publish to "+m.Subject, err)
	}
	return &PendingAck{future: f, subject: m.Subject}, nil
}

// PublishBatch publishes records asynchronously and waits for every ack,
// returning their stream sequences in order. It is not atomic: on error
// some records may be stored; retrying the whole batch is safe when every
// record has a message id (WithMsgID).
func (p *Publisher) PublishBatch(ctx context.Context, records []Record) (_ []uint64, err error) {
	if len(records) == 0 {
		return nil, nil
	}
	ctxs, end := p.startBatch(ctx, records)
	defer func() { end(err) }()
	pending := make([]*PendingAck, len(records))
	for i, r := range records {
		a, err := p.publishAsync(ctxs[i], r.Topic, r.Key, r.Msg, r.Opts) //nolint:contextcheck // the record's own trace (Record.Context)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		pending[i] = a
	}
	seqs := make([]uint64, len(records))
	var errs []error
	for i, a := range pending {
		seq, err := a.Wait(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("record %d: %w", i, err))
			continue
		}
		seqs[i] = seq
	}
	return seqs, errors.Join(errs...)
}

// maxAtomicBatch is JetStream's limit on messages in one atomic batch.
const maxAtomicBatch = 1000

// PublishAtomic stores records all or nothing, with JetStream's atomic
// batch publish: either every record is stored, contiguously and in order,
// or none is. Every record must be of the same topic (one stream). It
// returns the stream sequence of the first and last record. A record whose
// message id is already stored refuses the whole batch with an error
// wrapping ErrConcurrency (a batch has no duplicate-as-success): the caller
// re-reads and plans again, as after a failed expected-sequence check.
func (p *Publisher) PublishAtomic(ctx context.Context, records []Record) (first, last uint64, err error) {
	if len(records) == 0 || len(records) > maxAtomicBatch {
		return 0, 0, fmt.Errorf("%w: atomic batch of %d records: want 1 to %d", ErrInvalidConfig, len(records), maxAtomicBatch)
	}
	ctxs, end := p.startBatch(ctx, records)
	defer func() { end(err) }()
	msgs := make([]*nats.Msg, len(records))
	for i, r := range records {
		if r.Topic != records[0].Topic {
			return 0, 0, fmt.Errorf("%w: atomic batch mixes topics %s and %s", ErrInvalidConfig, records[0].Topic, r.Topic)
		}
		m, o, err := p.build(ctxs[i], r) //nolint:contextcheck // the record's own trace (Record.Context)
		if err != nil {
			return 0, 0, fmt.Errorf("record %d: %w", i, err)
		}
		if o.lastSubjSeq != nil {
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(*o.lastSubjSeq, 10))
		}
		msgs[i] = m
	}
	ack, err := jetstreamext.PublishMsgBatch(ctx, p.js, msgs)
	if err != nil {
		return 0, 0, brokerError(fmt.Sprintf("atomic batch of %d to %s", len(msgs), records[0].Topic), err)
	}
	return ack.Sequence - ack.BatchSize + 1, ack.Sequence, nil
}

// build checks a record against the catalog and makes its NATS message.
func (p *Publisher) build(ctx context.Context, r Record) (*nats.Msg, publishOptions, error) {
	var o publishOptions
	for _, opt := range r.Opts {
		opt(&o)
	}
	t, err := p.catalog.Topic(r.Topic)
	if err != nil {
		return nil, o, err
	}
	if r.Msg == nil {
		return nil, o, fmt.Errorf("%w: nil message for %s", ErrWrongType, r.Topic)
	}
	if got, want := r.Msg.ProtoReflect().Descriptor().FullName(), t.MessageName(); got != want {
		return nil, o, fmt.Errorf("%w: %s carries %s, got %s", ErrWrongType, r.Topic, want, got)
	}
	subject, err := Subject(r.Topic, r.Key)
	if err != nil {
		return nil, o, fmt.Errorf("topic %s: %w", r.Topic, err)
	}
	data, err := proto.Marshal(r.Msg)
	if err != nil {
		return nil, o, fmt.Errorf("encode %s: %w", t.MessageName(), err)
	}
	if o.msgID == "" {
		o.msgID = nuid.Next()
	}
	h := make(nats.Header, 10+len(o.headers)) // 7 below, trace context, correlation
	for k, vs := range o.headers {
		h[k] = vs
	}
	// One backing array for the mesh's values: one allocation, not one per
	// header. Each slice is capped so an Add cannot overwrite its neighbour.
	v := [...]string{
		o.msgID, string(t.MessageName()), p.source,
		p.now().UTC().Format(time.RFC3339Nano), cloudEventsSpecVersion, ContentTypeProtobuf,
	}
	h[HeaderMsgID] = v[0:1:1]
	h[HeaderCEID] = v[0:1:1]
	h[HeaderCEType] = v[1:2:2]
	h[HeaderCESource] = v[2:3:3]
	h[HeaderCETime] = v[3:4:4]
	h[HeaderCESpecVersion] = v[4:5:5]
	h[HeaderContentType] = v[5:6:6]
	injectContext(ctx, h)
	return &nats.Msg{Subject: subject, Header: h, Data: data}, o, nil
}
