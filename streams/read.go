package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// Stored is a message as its topic's stream stores it.
type Stored struct {
	// Subject is "<topic>.<key>"; Key is its key.
	Subject, Key string
	// Sequence is the message's stream sequence.
	Sequence uint64
	// Time is when the stream stored it.
	Time time.Time
	// Header holds every header as published.
	Header nats.Header
	// Data is the payload.
	Data []byte
	// Pending is how many messages of the follow were left after this one
	// when it was delivered (0 from the direct reads).
	Pending uint64
}

// LastSequence is the sequence of the last message of topic's stream (0
// when it is empty).
func (c *Client) LastSequence(ctx context.Context, topic string) (uint64, error) {
	st, err := c.topicStream(ctx, topic)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, brokerError("info of "+topic, err)
	}
	return info.State.LastSeq, nil
}

// Get reads the message of topic at stream sequence seq (ErrNotFound when
// there is none).
func (c *Client) Get(ctx context.Context, topic string, seq uint64) (Stored, error) {
	return c.get(ctx, topic, fmt.Sprintf("message %d", seq), func(st jetstream.Stream) (*jetstream.RawStreamMsg, error) {
		return st.GetMsg(ctx, seq)
	})
}

// Last reads the last message of topic under key (ErrNotFound when the key
// has none).
func (c *Client) Last(ctx context.Context, topic, key string) (Stored, error) {
	subject, err := Subject(topic, key)
	if err != nil {
		return Stored{}, err
	}
	return c.get(ctx, topic, "last message on "+subject, func(st jetstream.Stream) (*jetstream.RawStreamMsg, error) {
		return st.GetLastMsgForSubject(ctx, subject)
	})
}

// Next reads the first message of topic under key at or after stream
// sequence from (ErrNotFound when there is none).
func (c *Client) Next(ctx context.Context, topic, key string, from uint64) (Stored, error) {
	subject, err := Subject(topic, key)
	if err != nil {
		return Stored{}, err
	}
	return c.get(ctx, topic, fmt.Sprintf("next message on %s from %d", subject, from), func(st jetstream.Stream) (*jetstream.RawStreamMsg, error) {
		return st.GetMsg(ctx, from, jetstream.WithGetMsgSubject(subject))
	})
}

// Range reads up to limit messages of topic under key from stream sequence
// from on, in stream order, with one request (a batched direct get): what
// is stored now, possibly none. It is how a consumer reads ahead of its
// deliveries to handle a run of messages at once.
func (c *Client) Range(ctx context.Context, topic, key string, from uint64, limit int) ([]Stored, error) {
	subject, err := Subject(topic, key)
	if err != nil {
		return nil, err
	}
	t, err := c.catalog.Topic(topic)
	if err != nil {
		return nil, err
	}
	if from == 0 {
		from = 1
	}
	what := fmt.Sprintf("read %s from %d", subject, from)
	msgs, err := jetstreamext.GetBatch(ctx, c.js, t.Stream(), limit, jetstreamext.GetBatchSubject(subject), jetstreamext.GetBatchSeq(from))
	if err != nil {
		return nil, brokerError(what, err)
	}
	var out []Stored
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return nil, brokerError(what, err)
		}
		out = append(out, stored(m, key))
	}
	return out, nil
}

// FindMsgID reports whether topic holds a message with the message id id
// (Nats-Msg-Id) stored at or after since: it reads the stream from that
// time on, in pages (a batched direct get), so its cost is what was stored
// since. For rare checks (a sweeper's), never on a hot path.
func (c *Client) FindMsgID(ctx context.Context, topic, id string, since time.Time) (bool, error) {
	return found(c.findMsgID(ctx, topic, topic+".>", id, since, 0))
}

// FindMsgIDOfKey is FindMsgID reading only the messages of one key of
// topic: its cost is what that key stored since.
func (c *Client) FindMsgIDOfKey(ctx context.Context, topic, key, id string, since time.Time) (bool, error) {
	subject, err := Subject(topic, key)
	if err != nil {
		return false, err
	}
	return found(c.findMsgID(ctx, topic, subject, id, since, 0))
}

// MsgByID returns the message of topic with the message id id stored at or
// after since, of key when key is not empty (of every key otherwise),
// reading at most limit messages: ErrNotFound when there is none,
// ErrScanLimit when limit messages were read without finding it.
func (c *Client) MsgByID(ctx context.Context, topic, key, id string, since time.Time, limit int) (Stored, error) {
	subject := topic + ".>"
	if key != "" {
		var err error
		if subject, err = Subject(topic, key); err != nil {
			return Stored{}, err
		}
	}
	if limit <= 0 {
		return Stored{}, fmt.Errorf("%w: scan limit %d", ErrInvalidConfig, limit)
	}
	return c.findMsgID(ctx, topic, subject, id, since, limit)
}

// found turns findMsgID's answer into FindMsgID's.
func found(_ Stored, err error) (bool, error) {
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// findMsgID scans subject of topic from since for the message id id,
// reading at most limit messages (0: no limit).
func (c *Client) findMsgID(ctx context.Context, topic, subject, id string, since time.Time, limit int) (Stored, error) {
	t, err := c.catalog.Topic(topic)
	if err != nil {
		return Stored{}, err
	}
	const page = 256
	start := jetstreamext.GetBatchStartTime(since)
	for read := 0; ; {
		size := page
		if limit > 0 {
			if size = min(page, limit-read); size == 0 {
				return Stored{}, fmt.Errorf("%w: message id %s not among %d messages of %s", ErrScanLimit, id, limit, subject)
			}
		}
		msgs, err := jetstreamext.GetBatch(ctx, c.js, t.Stream(), size, jetstreamext.GetBatchSubject(subject), start)
		if err != nil {
			return Stored{}, brokerError("scan "+topic, err)
		}
		var last uint64
		n := 0
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				return Stored{}, brokerError("scan "+topic, err)
			}
			if m.Header.Get(HeaderMsgID) == id {
				key, _ := KeyFromSubject(topic, m.Subject)
				return stored(m, key), nil
			}
			last, n = m.Sequence, n+1
		}
		read += n
		if n < size {
			return Stored{}, fmt.Errorf("%w: message id %s on %s", ErrNotFound, id, subject)
		}
		start = jetstreamext.GetBatchSeq(last + 1)
	}
}

func (c *Client) get(ctx context.Context, topic, what string, read func(jetstream.Stream) (*jetstream.RawStreamMsg, error)) (Stored, error) {
	st, err := c.topicStream(ctx, topic)
	if err != nil {
		return Stored{}, err
	}
	m, err := read(st)
	if err != nil {
		return Stored{}, brokerError(fmt.Sprintf("read %s of %s", what, topic), err)
	}
	key, _ := KeyFromSubject(topic, m.Subject)
	return stored(m, key), nil
}

// stored is m of key as a Stored.
func stored(m *jetstream.RawStreamMsg, key string) Stored {
	return Stored{Subject: m.Subject, Key: key, Sequence: m.Sequence, Time: m.Time, Header: m.Header, Data: m.Data}
}

// Follow is what Client.Follow reads.
type Follow struct {
	// Topic is the catalog topic to read.
	Topic string
	// Key limits the follow to one key's messages; empty for all.
	Key string
	// From is the first stream sequence to deliver (0 or 1: the start).
	From uint64
	// ToEnd stops the follow (with nil) once it has delivered every
	// message stored when it began; otherwise it follows new messages
	// until ctx ends.
	ToEnd bool
}

// Follow hands fn every message of f.Topic (of f.Key) from f.From on, in
// stream order with no gap (an ordered consumer: it re-creates itself where
// it was when a message goes missing), until ctx ends (nil), fn fails (fn's
// error), or the broker goes away (an error wrapping ErrUnavailable). Many
// follows may run at once; each costs one ephemeral consumer.
func (c *Client) Follow(ctx context.Context, f Follow, fn func(context.Context, Stored) error) error {
	t, err := c.catalog.Topic(f.Topic)
	if err != nil {
		return err
	}
	filter := t.Name + ".>"
	if f.Key != "" {
		if filter, err = Subject(t.Name, f.Key); err != nil {
			return err
		}
	}
	end := uint64(0)
	if f.ToEnd {
		if end, err = c.LastSequence(ctx, f.Topic); err != nil {
			return err
		}
		if end < max(f.From, 1) {
			return nil
		}
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if f.From > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, f.From
	}
	cons, err := c.js.OrderedConsumer(ctx, t.Stream(), cfg)
	if err != nil {
		return brokerError("follow "+filter, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return brokerError("follow "+filter, err)
	}
	defer c.dropFollower(ctx, t.Stream(), cons)
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				err = nats.ErrConnectionClosed
			}
			return brokerError("follow "+filter, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("follow %s: %w", filter, err)
		}
		key, _ := KeyFromSubject(t.Name, m.Subject())
		s := Stored{Subject: m.Subject(), Key: key, Sequence: meta.Sequence.Stream, Time: meta.Timestamp,
			Header: m.Headers(), Data: m.Data(), Pending: meta.NumPending}
		if err := fn(ctx, s); err != nil {
			return err
		}
		if f.ToEnd && (s.Sequence >= end || s.Pending == 0) {
			return nil
		}
	}
}

// dropFollowerTimeout bounds the deletion of a follow's consumer.
const dropFollowerTimeout = 2 * time.Second

// dropFollower deletes a follow's ephemeral consumer once the follow
// ends: a stopped ordered consumer otherwise stays on the server until it
// has been inactive for five minutes, so that followers coming and going
// (a client's stream per page view) would pile up.
func (c *Client) dropFollower(ctx context.Context, stream string, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dropFollowerTimeout)
	defer cancel()
	_ = c.js.DeleteConsumer(ctx, stream, info.Name) // else the server drops it once inactive
}

// ConsumerLag is how many messages of topic the durable consumer named
// durable has not yet acknowledged: pending delivery plus delivered and
// unacknowledged.
func (c *Client) ConsumerLag(ctx context.Context, topic, durable string) (uint64, error) {
	st, err := c.topicStream(ctx, topic)
	if err != nil {
		return 0, err
	}
	cons, err := st.Consumer(ctx, durable)
	if err != nil {
		return 0, brokerError(fmt.Sprintf("consumer %s of %s", durable, topic), err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, brokerError(fmt.Sprintf("consumer %s of %s", durable, topic), err)
	}
	return info.NumPending + uint64(max(info.NumAckPending, 0)), nil
}

// DeadLetter writes m, a message of topic read by a follow or a direct
// read, to dlq.<topic> with why handler could not use it, as a consumer
// does with a poison message: the reader skips it and goes on, and an
// operator finds it with `tradex dlq`. Writing it twice stores it once.
func (c *Client) DeadLetter(ctx context.Context, topic string, m Stored, handler string, cause error) error {
	t, err := c.catalog.Topic(topic)
	if err != nil {
		return err
	}
	return writeDeadLetter(ctx, c.js, t, m, handler, 1, cause)
}
