package streams

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
)

// processor turns one delivery into a handler call and an ack decision:
// success -> Ack; error -> retry with backoff (in place for PerKey, Nak with
// delay for Unordered); attempts exhausted or permanent -> dead letter, then
// Term; stopping -> Nak so another instance takes it.
type processor[T proto.Message] struct {
	tracer  trace.Tracer
	js      jetstream.JetStream
	topic   Topic
	cfg     ConsumerConfig
	handler Handler[T]
	stopped <-chan struct{}

	// caughtUp holds the subjects whose catch-up (ConsumerConfig.Resume)
	// is done in this instance.
	mu       sync.Mutex
	caughtUp map[string]bool
	// horizon is the last stream sequence the consumer had delivered
	// (to any instance) when this one started, ackFloor the sequence at or
	// below which every message was acknowledged or terminated.
	horizon, ackFloor uint64
}

func (p *processor[T]) process(ctx context.Context, raw jetstream.Msg) {
	if p.stopping() {
		p.settle(ctx, raw, "nak", raw.Nak())
		return
	}
	meta, err := raw.Metadata()
	if err != nil {
		p.cfg.Logger.ErrorContext(ctx, "message without metadata", "consumer", p.cfg.Name, "subject", raw.Subject(), "err", err)
		p.settle(ctx, raw, "term", raw.TermWithReason("no metadata"))
		return
	}
	m, err := p.decode(raw, meta)
	if err != nil {
		p.deadLetter(ctx, raw, meta, deliveries(meta), err)
		return
	}
	if deliveries(meta) > p.cfg.MaxDeliver {
		p.deadLetter(ctx, raw, meta, deliveries(meta), fmt.Errorf("delivered %d times, over max deliver %d", meta.NumDelivered, p.cfg.MaxDeliver))
		return
	}
	hctx, span := startProcess(extractContext(ctx, m.Header), p.tracer, p.topic.Name, p.cfg.Name,
		msgInfo{id: m.Header.Get(HeaderMsgID), seq: m.Sequence, delivery: m.Delivery})
	defer span.End()
	if !p.catchUp(ctx, raw, m) {
		p.settle(ctx, raw, "nak", raw.Nak())
		return
	}
	for {
		err := p.call(hctx, m)
		if err == nil {
			p.ack(ctx, raw)
			return
		}
		if errors.Is(err, ErrInFlight) {
			// Another delivery of the same event is running (Idempotent):
			// wait for it without spending an attempt.
			if !p.waitInPlace(ctx, raw, p.cfg.BackoffMax) {
				p.settle(ctx, raw, "nak", raw.Nak())
				return
			}
			continue
		}
		p.cfg.Logger.WarnContext(hctx, "handler failed", "consumer", p.cfg.Name, "subject", m.Subject,
			"seq", m.Sequence, "delivery", m.Delivery, "err", err)
		span.RecordError(err)
		var permanent permanentError
		if m.Delivery >= p.cfg.MaxDeliver || errors.As(err, &permanent) {
			span.SetStatus(codes.Error, "dead-lettered: "+err.Error())
			p.deadLetter(ctx, raw, meta, m.Delivery, err)
			return
		}
		delay := backoff(m.Delivery-1, p.cfg.BackoffBase, p.cfg.BackoffMax)
		if p.cfg.Ordering == Unordered {
			p.settle(ctx, raw, "nak", raw.NakWithDelay(delay))
			return
		}
		if !p.waitInPlace(ctx, raw, delay) {
			p.settle(ctx, raw, "nak", raw.Nak())
			return
		}
		m.Delivery++
	}
}

// decode builds the handler's message; an undecodable payload is poison.
func (p *processor[T]) decode(raw jetstream.Msg, meta *jetstream.MsgMetadata) (*Message[T], error) {
	m, err := p.decodeData(raw.Subject(), raw.Headers(), raw.Data())
	if err != nil {
		return nil, err
	}
	m.Sequence, m.Delivery, m.Time, m.raw = meta.Sequence.Stream, deliveries(meta), meta.Timestamp, raw
	return m, nil
}

// decodeData decodes a message's payload and headers.
func (p *processor[T]) decodeData(subject string, h nats.Header, data []byte) (*Message[T], error) {
	var zero T
	payload, ok := zero.ProtoReflect().New().Interface().(T)
	if !ok {
		return nil, Permanent(fmt.Errorf("%w: cannot instantiate %T", ErrWrongType, zero))
	}
	if ct := h.Get(HeaderCEType); ct != "" && ct != string(p.topic.MessageName()) {
		return nil, Permanent(fmt.Errorf("%w: ce-type %s, topic %s carries %s", ErrWrongType, ct, p.topic.Name, p.topic.MessageName()))
	}
	if err := proto.Unmarshal(data, payload); err != nil {
		return nil, Permanent(fmt.Errorf("decode %s: %w", p.topic.MessageName(), err))
	}
	key, _ := KeyFromSubject(p.topic.Name, subject)
	id := h.Get(HeaderMsgID)
	if id == "" {
		id = h.Get(HeaderCEID)
	}
	return &Message[T]{Topic: p.topic.Name, Key: key, Subject: subject, Payload: payload, Header: h, ID: id}, nil
}

// call runs the handler, turning a panic into an error.
func (p *processor[T]) call(ctx context.Context, m *Message[T]) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
		}
	}()
	return p.handler(ctx, m)
}

// waitInPlace waits delay before a retry in place, telling the broker the
// message is still in progress; false means the consumer is stopping.
func (p *processor[T]) waitInPlace(ctx context.Context, raw jetstream.Msg, delay time.Duration) bool {
	tick := time.NewTicker(max(p.cfg.AckWait/3, time.Millisecond))
	defer tick.Stop()
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return true
		case <-tick.C:
			_ = raw.InProgress() // a lost one only risks an early redelivery
		case <-p.stopped:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func (p *processor[T]) ack(ctx context.Context, raw jetstream.Msg) {
	if p.cfg.AckSync {
		p.settle(ctx, raw, "ack", raw.DoubleAck(ctx))
		return
	}
	p.settle(ctx, raw, "ack", raw.Ack())
}

// deadLetter writes the message with its failure to dlq.<topic>, and only
// then terminates it; if the dead-letter write fails the message is handed
// back for redelivery, so it is never lost.
func (p *processor[T]) deadLetter(ctx context.Context, raw jetstream.Msg, meta *jetstream.MsgMetadata, deliveries int, cause error) {
	if err := p.writeDeadLetter(ctx, raw.Subject(), raw.Data(), raw.Headers(), meta.Sequence.Stream, deliveries, cause); err != nil {
		p.cfg.Logger.ErrorContext(ctx, "dead-letter write failed; message handed back", "consumer", p.cfg.Name,
			"subject", raw.Subject(), "seq", meta.Sequence.Stream, "err", err)
		p.settle(ctx, raw, "nak", raw.NakWithDelay(p.cfg.BackoffMax))
		return
	}
	p.settle(ctx, raw, "term", raw.TermWithReason("dead-lettered: "+truncate(cause.Error(), 200)))
}

// writeDeadLetter writes a message of the topic's stream at seq, with its
// failure, to dlq.<topic>, and logs it.
func (p *processor[T]) writeDeadLetter(ctx context.Context, subject string, data []byte, h nats.Header, seq uint64, deliveries int, cause error) error {
	if err := writeDeadLetter(ctx, p.js, p.topic, Stored{Subject: subject, Data: data, Header: h, Sequence: seq}, p.cfg.Name, deliveries, cause); err != nil {
		return err
	}
	p.cfg.Logger.WarnContext(ctx, "message dead-lettered", "consumer", p.cfg.Name, "subject", subject,
		"seq", seq, "deliveries", deliveries, "reason", cause.Error())
	return nil
}

// writeDeadLetter writes m, a message of topic's stream, with its failure
// in handler to dlq.<topic>. The dead letter's id is derived from the
// original's position and the handler, so writing it twice stores it once.
func writeDeadLetter(ctx context.Context, js jetstream.JetStream, topic Topic, m Stored, handler string, deliveries int, cause error) error {
	stream := topic.Stream()
	dl := DeadLetterMsg(DeadLetterSource{Stream: stream, Subject: m.Subject, Sequence: m.Sequence, MsgID: m.Header.Get(HeaderMsgID)},
		m.Data, m.Header, handler, deliveries, cause)
	dl.Header.Set(HeaderMsgID, fmt.Sprintf("dlq:%s:%d:%s", stream, m.Sequence, handler))
	if _, err := js.PublishMsg(ctx, dl); err != nil {
		return brokerError("dead-letter "+m.Subject, err)
	}
	return nil
}

// DeadLetterSource says where a dead letter's message was: its stream (or
// another source, such as a Kafka topic), subject, sequence there, and
// message id.
type DeadLetterSource struct {
	Stream, Subject string
	Sequence        uint64
	MsgID           string
}

// DeadLetterMsg is the dlq.<subject> message of a message a handler gave up
// on after deliveries attempts: its payload, its headers but the broker's
// own (Nats-*: id, expectations and batch apply to the original), and the
// X-Dlq-* headers that tradex dlq reads. The caller sets its message id.
func DeadLetterMsg(src DeadLetterSource, data []byte, header nats.Header, handler string, deliveries int, cause error) *nats.Msg {
	dl := &nats.Msg{Subject: DLQTopic(src.Subject), Data: data, Header: nats.Header{}}
	for k, vs := range header {
		if !strings.HasPrefix(k, "Nats-") {
			dl.Header[k] = vs
		}
	}
	dl.Header.Set(HeaderDLQReason, cause.Error())
	dl.Header.Set(HeaderDLQHandler, handler)
	dl.Header.Set(HeaderDLQDeliveries, strconv.Itoa(deliveries))
	dl.Header.Set(HeaderDLQStream, src.Stream)
	dl.Header.Set(HeaderDLQSubject, src.Subject)
	dl.Header.Set(HeaderDLQSequence, strconv.FormatUint(src.Sequence, 10))
	dl.Header.Set(HeaderDLQOriginalMsgID, src.MsgID)
	dl.Header.Set(HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	return dl
}

// settle logs a failed ack decision; the broker redelivers after AckWait,
// so the message is not lost.
func (p *processor[T]) settle(ctx context.Context, raw jetstream.Msg, what string, err error) {
	if err != nil {
		p.cfg.Logger.WarnContext(ctx, "ack decision not delivered", "consumer", p.cfg.Name, "decision", what,
			"subject", raw.Subject(), "err", err)
	}
}

func (p *processor[T]) stopping() bool {
	select {
	case <-p.stopped:
		return true
	default:
		return false
	}
}

// deliveries is the broker's delivery count as an int, saturated.
func deliveries(meta *jetstream.MsgMetadata) int {
	return int(min(meta.NumDelivered, math.MaxInt32))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
