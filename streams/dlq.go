package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"golang.org/x/time/rate"
)

// ErrNoDeadLetter means the DLQ holds no dead letter with the requested
// sequence.
var ErrNoDeadLetter = errors.New("no such dead letter")

// HeaderRedrivenFrom is set on a redriven message: "<DLQ stream>:<sequence>"
// of the dead letter it came from. A redriven message that fails again
// carries it into its new dead letter, so an operator sees the history.
const HeaderRedrivenFrom = "X-Redriven-From"

// DLQ lets operators inspect, redrive and purge the dead letters of the
// catalog's topics (the streams dlq.<topic>). It reads with direct gets and
// creates no consumer, so looking at a dead-letter queue changes nothing.
// It is safe for concurrent use.
type DLQ struct {
	js      jetstream.JetStream
	catalog *Catalog
}

// NewDLQ returns the dead-letter queues of catalog's topics over js. The
// streams must exist (EnsureStreams creates them).
func NewDLQ(js jetstream.JetStream, catalog *Catalog) *DLQ {
	return &DLQ{js: js, catalog: catalog}
}

// DLQMessage is one message a consumer gave up on, as stored in dlq.<topic>.
type DLQMessage struct {
	// Topic is the original topic; Key and Subject ("<topic>.<key>") are
	// where the message was published. Key is empty when the subject is not
	// "<topic>.<one token>".
	Topic, Key, Subject string
	// Sequence is the dead letter's sequence in the DLQ stream: what Get,
	// DLQFilter.Sequence and the CLI's --seq take.
	Sequence uint64
	// OriginalSequence is the message's sequence in the topic's stream.
	OriginalSequence uint64
	// OriginalMsgID is the message's Nats-Msg-Id when it was published.
	OriginalMsgID string
	// Reason is the handler's last error; Handler the consumer that gave up;
	// Deliveries how many attempts it made.
	Reason, Handler string
	Deliveries      int
	// Time is when the message was dead-lettered, by the broker's clock
	// (the DLQ stream's timestamp).
	Time time.Time
	// Header holds the headers as stored: the original ones (ce-id, ce-type,
	// traceparent, ...), the X-Dlq-* ones and the dead letter's Nats-Msg-Id.
	Header nats.Header
	// Data is the original payload, byte for byte.
	Data []byte
}

// DLQFilter selects dead letters; its zero value selects every one. Set
// fields combine with AND.
type DLQFilter struct {
	// Key keeps the dead letters of one partition key.
	Key string
	// Handler keeps those of one consumer (X-Dlq-Handler).
	Handler string
	// ReasonContains keeps those whose reason contains it, ignoring case.
	ReasonContains string
	// Since and Until keep those dead-lettered at or after Since and before
	// Until.
	Since, Until time.Time
	// Sequence keeps only the dead letter with this DLQ sequence.
	Sequence uint64
	// Limit stops after this many matches, oldest first; 0 means no limit.
	Limit int
}

// onlyKey reports whether f selects at most by key, so that a whole
// subject of the stream can be purged at once. A new field of DLQFilter
// must be checked here.
func (f DLQFilter) onlyKey() bool {
	return f.Handler == "" && f.ReasonContains == "" && f.Since.IsZero() && f.Until.IsZero() &&
		f.Sequence == 0 && f.Limit == 0
}

func (f DLQFilter) validate() error {
	if f.Key != "" {
		if err := ValidateKey(f.Key); err != nil {
			return fmt.Errorf("filter: %w", err)
		}
	}
	switch {
	case f.Limit < 0:
		return fmt.Errorf("%w: filter limit %d is negative", ErrInvalidConfig, f.Limit)
	case !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since):
		return fmt.Errorf("%w: filter until %s is not after since %s", ErrInvalidConfig,
			f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	}
	return nil
}

// matches applies the filter's client-side conditions; key, sequence and
// since are also applied by the broker.
func (f DLQFilter) matches(dl DLQMessage) bool {
	switch {
	case f.Key != "" && dl.Key != f.Key,
		f.Sequence != 0 && dl.Sequence != f.Sequence,
		f.Handler != "" && dl.Handler != f.Handler,
		f.ReasonContains != "" && !strings.Contains(strings.ToLower(dl.Reason), strings.ToLower(f.ReasonContains)),
		!f.Since.IsZero() && dl.Time.Before(f.Since),
		!f.Until.IsZero() && !dl.Time.Before(f.Until):
		return false
	}
	return true
}

// List returns the dead letters of topic that match f, oldest first. topic
// is a catalog topic ("engine.event.v1"; "dlq.engine.event.v1" is accepted
// too). In a cluster any replica may answer, so a dead letter written a
// moment ago may not be listed yet.
func (d *DLQ) List(ctx context.Context, topic string, f DLQFilter) ([]DLQMessage, error) {
	q, err := d.open(ctx, topic, f)
	if err != nil {
		return nil, err
	}
	var out []DLQMessage
	err = q.scan(ctx, f, func(dl DLQMessage) error {
		out = append(out, dl)
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("list %s: %w", q.topic.DLQ(), err)
	}
	return out, nil
}

// Get returns the dead letter of topic with DLQ sequence seq, or an error
// wrapping ErrNoDeadLetter.
func (d *DLQ) Get(ctx context.Context, topic string, seq uint64) (DLQMessage, error) {
	q, err := d.open(ctx, topic, DLQFilter{})
	if err != nil {
		return DLQMessage{}, err
	}
	m, err := q.stream.GetMsg(ctx, seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return DLQMessage{}, fmt.Errorf("%w: sequence %d of %s", ErrNoDeadLetter, seq, q.topic.DLQ())
	case err != nil:
		return DLQMessage{}, brokerError(fmt.Sprintf("get dead letter %d of %s", seq, q.topic.DLQ()), err)
	}
	return deadLetterOf(q.topic, m), nil
}

// RedriveOption changes a Redrive.
type RedriveOption func(*redriveOptions)

type redriveOptions struct {
	perSecond float64
	keep      bool
	dryRun    bool
}

// WithRedriveRate republishes at most perSecond dead letters a second, so
// that a large redrive does not flood the consumers; 0 (the default) means
// no limit.
func WithRedriveRate(perSecond float64) RedriveOption {
	return func(o *redriveOptions) { o.perSecond = perSecond }
}

// WithRedriveKeep leaves the dead letters in the DLQ after republishing
// them.
func WithRedriveKeep() RedriveOption {
	return func(o *redriveOptions) { o.keep = true }
}

// WithRedriveDryRun only counts the dead letters a redrive would
// republish; it changes nothing.
func WithRedriveDryRun() RedriveOption {
	return func(o *redriveOptions) { o.dryRun = true }
}

// Redrive republishes the dead letters of topic that match f, oldest first,
// to their original subjects, and returns how many it redrove. Each one
// keeps its payload and original headers (ce-id included, so handlers that
// are idempotent on ce-id recognise the event) without the X-Dlq-* ones,
// gains X-Redriven-From, and gets a new Nats-Msg-Id,
// "<ce-id>:redrive:<original sequence>", so that the duplicate window does
// not drop it. Once the broker has acknowledged the republish, the dead
// letter is deleted (unless WithRedriveKeep).
//
// Every consumer of the topic receives a redriven message, not only the one
// that gave up on it, and a PerKey consumer receives it after the messages
// of its key that followed the original: handlers must be idempotent. The
// copy is a new entry of the topic's stream, so a reader that rebuilds state
// from the stream (an event-sourced journal) meets the event twice unless
// it skips a ce-id it has seen.
//
// Only the dead letters present when Redrive starts are considered, so one
// that fails again and returns to the DLQ is not redriven twice in the same
// call. On error, the dead letters already redriven stay redriven (the
// count says how many); calling Redrive again is safe.
//
// Crash safety: the redrive message id is derived from the stored original,
// so redriving the same dead letter again (after a crash between republish
// and delete, or after WithRedriveKeep), or redriving the dead letters that
// two consumers wrote for the same message, stores the event once, as long
// as it happens within the topic stream's duplicate window
// (WithDuplicateWindow, 2 minutes by default). Later than that, the event is
// stored again and consumers see it twice: then only their idempotency on
// ce-id protects them.
func (d *DLQ) Redrive(ctx context.Context, topic string, f DLQFilter, opts ...RedriveOption) (int, error) {
	var o redriveOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.perSecond < 0 || math.IsNaN(o.perSecond) || math.IsInf(o.perSecond, 0) {
		return 0, fmt.Errorf("%w: redrive rate %v: want a positive number of messages a second, or 0 for no limit", ErrInvalidConfig, o.perSecond)
	}
	q, err := d.open(ctx, topic, f)
	if err != nil {
		return 0, err
	}
	if q.topic.Journal && !o.dryRun {
		return 0, fmt.Errorf("%w: %s is an event-sourced journal: a redriven copy would be a second journal entry; fix the consumer and replay it from the stream instead",
			ErrInvalidConfig, q.topic.Name)
	}
	limiter := rate.NewLimiter(rate.Inf, 1)
	if o.perSecond > 0 {
		limiter = rate.NewLimiter(rate.Limit(o.perSecond), 1)
	}
	n := 0
	err = q.scan(ctx, f, func(dl DLQMessage) error {
		if o.dryRun {
			n++
			return nil
		}
		if err := limiter.Wait(ctx); err != nil {
			return fmt.Errorf("rate limit: %w", err)
		}
		if err := q.republish(ctx, dl); err != nil {
			return err
		}
		if !o.keep {
			if err := q.remove(ctx, dl.Sequence); err != nil {
				return err
			}
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("redrive %s: %w", q.topic.DLQ(), err)
	}
	return n, nil
}

// Purge deletes the dead letters of topic that match f for good and
// returns how many it deleted. With an empty filter, or one with only a
// key, it purges the stream (or the key's subject) in one request; dead
// letters written after Purge starts are kept either way.
func (d *DLQ) Purge(ctx context.Context, topic string, f DLQFilter) (int, error) {
	q, err := d.open(ctx, topic, f)
	if err != nil {
		return 0, err
	}
	if f.onlyKey() {
		subject := ""
		if f.Key != "" {
			subject = q.topic.DLQ() + "." + f.Key
		}
		return q.purge(ctx, subject)
	}
	n := 0
	err = q.scan(ctx, f, func(dl DLQMessage) error {
		if err := q.remove(ctx, dl.Sequence); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("purge %s: %w", q.topic.DLQ(), err)
	}
	return n, nil
}

// DLQSummary describes the dead-letter queue of one topic.
type DLQSummary struct {
	// Topic is the original topic.
	Topic string
	// Count is how many dead letters it holds.
	Count uint64
	// Oldest and Newest are when the first and last of them were written
	// (zero when Count is 0).
	Oldest, Newest time.Time
}

// Summaries describes the dead-letter queue of every catalog topic, in
// catalog order.
func (d *DLQ) Summaries(ctx context.Context) ([]DLQSummary, error) {
	out := make([]DLQSummary, 0, len(d.catalog.Topics()))
	for _, t := range d.catalog.Topics() {
		s, err := d.js.Stream(ctx, StreamName(t.DLQ()))
		if err != nil {
			return out, brokerError("stream "+StreamName(t.DLQ()), err)
		}
		st := s.CachedInfo().State
		sum := DLQSummary{Topic: t.Name, Count: st.Msgs}
		if st.Msgs > 0 {
			sum.Oldest, sum.Newest = st.FirstTime, st.LastTime
		}
		out = append(out, sum)
	}
	return out, nil
}

// queue is one topic's DLQ stream, looked up for one operation.
type queue struct {
	js     jetstream.JetStream
	topic  Topic
	stream jetstream.Stream
	// last is the stream's last sequence when the operation began; scans
	// and purges stop there.
	last uint64
}

// open checks topic and f and looks up the DLQ stream.
func (d *DLQ) open(ctx context.Context, topic string, f DLQFilter) (*queue, error) {
	t, err := d.catalog.Topic(strings.TrimPrefix(topic, dlqPrefix))
	if err != nil {
		return nil, err
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	name := StreamName(t.DLQ())
	s, err := d.js.Stream(ctx, name)
	if err != nil {
		return nil, brokerError(fmt.Sprintf("dead letters of %s: stream %s", t.Name, name), err)
	}
	return &queue{js: d.js, topic: t, stream: s, last: s.CachedInfo().State.LastSeq}, nil
}

// scanBatch is how many dead letters one direct get returns at most.
const scanBatch = 256

// scan calls fn with every dead letter matching f, oldest first, up to the
// stream's last sequence when the queue was opened. It reads a page before
// calling fn on any of it, so that a slow fn (rate limited) does not hold a
// request open.
func (q *queue) scan(ctx context.Context, f DLQFilter, fn func(DLQMessage) error) error {
	next, last := uint64(1), q.last
	if f.Sequence != 0 {
		next, last = f.Sequence, min(last, f.Sequence)
	}
	subject := q.topic.DLQ() + ".>"
	if f.Key != "" {
		subject = q.topic.DLQ() + "." + f.Key
	}
	byTime := f.Sequence == 0 && !f.Since.IsZero()
	matched := 0
	for next <= last {
		start := jetstreamext.GetBatchSeq(next)
		if byTime {
			start, byTime = jetstreamext.GetBatchStartTime(f.Since), false
		}
		page, err := q.page(ctx, subject, start)
		if err != nil || len(page) == 0 {
			return err
		}
		for _, m := range page {
			if m.Sequence > last {
				return nil
			}
			next = m.Sequence + 1
			dl := deadLetterOf(q.topic, m)
			if !f.matches(dl) {
				continue
			}
			if err := fn(dl); err != nil {
				return err
			}
			if matched++; f.Limit > 0 && matched >= f.Limit {
				return nil
			}
		}
	}
	return nil
}

// page reads up to scanBatch messages of subject from start on.
func (q *queue) page(ctx context.Context, subject string, start jetstreamext.GetBatchOpt) ([]*jetstream.RawStreamMsg, error) {
	name := q.stream.CachedInfo().Config.Name
	msgs, err := jetstreamext.GetBatch(ctx, q.js, name, scanBatch, jetstreamext.GetBatchSubject(subject), start)
	if err != nil {
		return nil, brokerError("read "+name, err)
	}
	var page []*jetstream.RawStreamMsg
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return nil, brokerError("read "+name, err)
		}
		page = append(page, m)
	}
	return page, nil
}

// republish writes a dead letter back to its original subject and waits
// for the broker's ack (a duplicate ack counts: it was republished before).
func (q *queue) republish(ctx context.Context, dl DLQMessage) error {
	m := &nats.Msg{Subject: dl.Subject, Data: dl.Data, Header: redriveHeader(q.stream.CachedInfo().Config.Name, dl)}
	_, err := q.js.PublishMsg(ctx, m, jetstream.WithExpectStream(q.topic.Stream()))
	return brokerError(fmt.Sprintf("republish dead letter %d to %s", dl.Sequence, dl.Subject), err)
}

// remove deletes one dead letter; one already gone (another redrive or
// purge took it) is not an error.
func (q *queue) remove(ctx context.Context, seq uint64) error {
	err := q.stream.DeleteMsg(ctx, seq)
	if err == nil {
		return nil
	}
	if _, gerr := q.stream.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
		return nil
	}
	return brokerError(fmt.Sprintf("delete dead letter %d", seq), err)
}

// purge removes every message of subject ("" for all) up to the last
// sequence when the queue was opened, and returns how many it removed. It
// calls the JetStream API directly because jetstream.Stream.Purge does not
// return the count.
func (q *queue) purge(ctx context.Context, subject string) (int, error) {
	name := q.stream.CachedInfo().Config.Name
	req, err := json.Marshal(jetstream.StreamPurgeRequest{Subject: subject, Sequence: q.last + 1})
	if err != nil {
		return 0, fmt.Errorf("purge %s: %w", name, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, q.js.Options().DefaultTimeout)
		defer cancel()
	}
	msg, err := q.js.Conn().RequestWithContext(ctx, apiSubject(q.js.Options(), "STREAM.PURGE."+name), req)
	if err != nil {
		return 0, brokerError("purge "+name, err)
	}
	var resp struct {
		Error  *jetstream.APIError `json:"error,omitempty"`
		Purged uint64              `json:"purged"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return 0, fmt.Errorf("purge %s: bad response: %w", name, err)
	}
	if resp.Error != nil {
		return 0, brokerError("purge "+name, resp.Error)
	}
	return int(min(resp.Purged, math.MaxInt32)), nil
}

// apiSubject is the JetStream API subject of op under the options' prefix
// or domain.
func apiSubject(o jetstream.JetStreamOptions, op string) string {
	switch {
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "." + op
	case o.Domain != "":
		return "$JS." + o.Domain + ".API." + op
	default:
		return jetstream.DefaultAPIPrefix + op
	}
}

// directGetHeaders are added by the broker to a direct get's answer; they
// are not part of the stored message.
var directGetHeaders = []string{
	jetstream.StreamHeader, jetstream.SequenceHeader, jetstream.TimeStampHeaer, jetstream.SubjectHeader,
	"Nats-Num-Pending", "Nats-Last-Sequence",
}

// deadLetterOf reads a stored dead letter of topic t.
func deadLetterOf(t Topic, m *jetstream.RawStreamMsg) DLQMessage {
	h := nats.Header{}
	for k, vs := range m.Header {
		if !slices.Contains(directGetHeaders, k) {
			h[k] = vs
		}
	}
	subject := strings.TrimPrefix(m.Subject, dlqPrefix)
	key, _ := KeyFromSubject(t.Name, subject)
	origSeq, _ := strconv.ParseUint(h.Get(HeaderDLQSequence), 10, 64)
	deliveries, _ := strconv.Atoi(h.Get(HeaderDLQDeliveries))
	return DLQMessage{
		Topic: t.Name, Key: key, Subject: subject,
		Sequence: m.Sequence, OriginalSequence: origSeq, OriginalMsgID: h.Get(HeaderDLQOriginalMsgID),
		Reason: h.Get(HeaderDLQReason), Handler: h.Get(HeaderDLQHandler), Deliveries: deliveries,
		Time: m.Time, Header: h, Data: m.Data,
	}
}

// dlqHeaderPrefix starts the headers a dead-letter write adds.
const dlqHeaderPrefix = "x-dlq-"

// redriveHeader is the header of a redriven message: the original headers
// without the dead letter's own, a new message id and the provenance.
func redriveHeader(dlqStream string, dl DLQMessage) nats.Header {
	h := nats.Header{}
	for k, vs := range dl.Header {
		lower := strings.ToLower(k)
		if !strings.HasPrefix(lower, dlqHeaderPrefix) && !strings.HasPrefix(lower, "nats-") {
			h[k] = slices.Clone(vs)
		}
	}
	h.Set(HeaderMsgID, redriveMsgID(dl))
	h.Set(HeaderRedrivenFrom, dlqStream+":"+strconv.FormatUint(dl.Sequence, 10))
	return h
}

// redriveMsgID is the Nats-Msg-Id of a redriven message: the event id
// (ce-id, else the original message id) and the sequence of the stored
// original, so that every redrive of the same stored message, from any of
// the dead letters consumers wrote for it, has the same id.
func redriveMsgID(dl DLQMessage) string {
	id := dl.Header.Get(HeaderCEID)
	if id == "" {
		id = dl.OriginalMsgID
	}
	if id == "" {
		id = dl.Topic
	}
	if dl.OriginalSequence == 0 { // no record of the original: fall back to the dead letter's identity
		return fmt.Sprintf("%s:redrive:dlq%d", id, dl.Sequence)
	}
	return fmt.Sprintf("%s:redrive:%d", id, dl.OriginalSequence)
}
