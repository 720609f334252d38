package kafkabridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tradex-mesh/tradex/streams"
)

// priorityGroup is the priority group of the export consumers: JetStream
// pins it to one replica of the bridge at a time.
const priorityGroup = "bridge"

// headerPinID is set by JetStream on each delivery of a pinned consumer:
// it says who fetched, not what the message is, so it is not exported.
const headerPinID = "Nats-Pin-Id"

// lagEvery is how often the export and import lag gauges are refreshed.
const lagEvery = 5 * time.Second

// runExport carries topic from JetStream to Kafka until ctx ends,
// starting over after a failure.
func (b *Bridge) runExport(ctx context.Context, topic string) error {
	producer, err := kgo.NewClient(append(b.kafkaOptions(),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // the idempotent producer's default, said aloud
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	)...)
	if err != nil {
		return fmt.Errorf("kafkabridge: export %s: %w", topic, err)
	}
	defer producer.Close()
	for attempt := 0; ; attempt++ {
		e := &exporter{b: b, topic: topic, stream: streams.StreamName(topic), producer: producer,
			partitioner: kgo.StickyKeyPartitioner(nil).ForTopic(topic), tails: map[int32]*partitionTail{}}
		err := e.run(ctx)
		switch {
		case errors.Is(err, errCrash):
			return err
		case ctx.Err() != nil:
			return nil
		}
		b.metrics.errs.WithLabelValues(topic, "export").Inc()
		b.cfg.Logger.WarnContext(ctx, "kafka bridge: export failed, starting over", "topic", topic, "err", err)
		if err := streams.Sleep(ctx, streams.Backoff(min(attempt, 6))); err != nil {
			return nil
		}
	}
}

// errCrash marks an error the test hook asked for.
var errCrash = errors.New("kafkabridge: crashed (test)")

// exporter is one run of an export: what it knows of its Kafka
// partitions lasts as long as the run.
type exporter struct {
	b           *Bridge
	topic       string
	stream      string
	producer    *kgo.Client
	partitioner kgo.TopicPartitioner
	partitions  int
	// tails are what the run read of each Kafka partition to look up
	// redelivered messages.
	tails map[int32]*partitionTail
	lagAt time.Time
}

func (e *exporter) run(ctx context.Context) error {
	n, err := e.partitionCount(ctx)
	if err != nil {
		return err
	}
	e.partitions = n
	st, err := e.b.client.JetStream().Stream(ctx, e.stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", e.stream, err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:        e.b.cfg.Name + "-export",
		Description:    "Kafka bridge: " + e.topic + " to Kafka",
		FilterSubject:  e.topic + ".>",
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        e.b.cfg.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  4 * e.b.cfg.Batch,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{priorityGroup},
		PinnedTTL:      e.b.cfg.PinnedTTL,
	})
	if err != nil {
		return fmt.Errorf("export consumer on %s: %w", e.stream, err)
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(e.b.cfg.Batch, jetstream.FetchMaxWait(e.fetchWait()), jetstream.FetchPriorityGroup(priorityGroup))
		if err != nil {
			return fmt.Errorf("fetch from %s: %w", e.stream, err)
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		switch err := batch.Error(); {
		case err == nil, errors.Is(err, nats.ErrTimeout), len(msgs) > 0:
		case errors.Is(err, jetstream.ErrPinIDMismatch):
			// Another replica holds the pin (or ours expired): the next
			// fetch asks for it again and waits its turn.
			continue
		default:
			return fmt.Errorf("fetch from %s: %w", e.stream, err)
		}
		if len(msgs) > 0 {
			if err := e.carry(ctx, msgs); err != nil {
				return err
			}
		}
		e.refreshLag(ctx, cons)
	}
	return nil
}

// fetchWait is how long a fetch waits for messages: well inside the
// pinned TTL, so an idle replica keeps its pin.
func (e *exporter) fetchWait() time.Duration {
	return min(time.Second, e.b.cfg.PinnedTTL/2)
}

// partitionCount is how many partitions the Kafka topic has.
func (e *exporter) partitionCount(ctx context.Context) (int, error) {
	details, err := kadm.NewClient(e.producer).ListTopics(ctx, e.topic)
	if err != nil {
		return 0, fmt.Errorf("kafka topic %s: %w", e.topic, err)
	}
	d, ok := details[e.topic]
	switch {
	case !ok:
		return 0, fmt.Errorf("kafka topic %s: not found", e.topic)
	case d.Err != nil:
		return 0, fmt.Errorf("kafka topic %s: %w", e.topic, d.Err)
	case len(d.Partitions) == 0:
		return 0, fmt.Errorf("kafka topic %s: no partitions", e.topic)
	}
	return len(d.Partitions), nil
}

// carry writes msgs to Kafka in order and acknowledges them once Kafka
// has: messages that came from Kafka, and redelivered ones already in
// their partition, are acknowledged without a write.
func (e *exporter) carry(ctx context.Context, msgs []jetstream.Msg) error {
	recs := make([]*kgo.Record, 0, len(msgs))
	redelivered := map[*kgo.Record]uint64{}
	for _, m := range msgs {
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("metadata of a message on %s: %w", m.Subject(), err)
		}
		if m.Headers().Get(streams.HeaderOrigin) == OriginKafka {
			e.b.metrics.skipped.WithLabelValues(e.topic, "export", "origin").Inc()
			continue
		}
		rec, err := e.record(m, meta.Sequence.Stream)
		if err != nil {
			return err
		}
		rec.Partition = int32(e.partitioner.Partition(rec, e.partitions)) //nolint:gosec // an index below the partition count
		if meta.NumDelivered > 1 {
			redelivered[rec] = meta.Sequence.Stream
		}
		recs = append(recs, rec)
	}
	if len(redelivered) > 0 {
		there, err := e.alreadyThere(ctx, redelivered)
		if err != nil {
			return err
		}
		recs = slices.DeleteFunc(recs, func(r *kgo.Record) bool { return there[r] })
		e.b.metrics.skipped.WithLabelValues(e.topic, "export", "duplicate").Add(float64(len(there)))
	}
	if len(recs) > 0 {
		if err := e.producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			nakAll(msgs)
			return fmt.Errorf("produce to Kafka %s: %w", e.topic, err)
		}
		e.b.metrics.messages.WithLabelValues(e.topic, "export").Add(float64(len(recs)))
	}
	if err := e.b.crash(crashExportProduced); err != nil {
		return err
	}
	for i, m := range msgs {
		if i == len(msgs)/2 {
			if err := e.b.crash(crashExportAcked); err != nil {
				return err
			}
		}
		if err := m.Ack(); err != nil {
			return fmt.Errorf("ack %s: %w", m.Subject(), err)
		}
	}
	return nil
}

// record builds the Kafka record of a JetStream message: its key, its
// payload (in the configured wire format), every header, and where it
// came from.
func (e *exporter) record(m jetstream.Msg, seq uint64) (*kgo.Record, error) {
	key, _ := streams.KeyFromSubject(e.topic, m.Subject())
	h := m.Headers()
	headers := make([]kgo.RecordHeader, 0, len(h)+4)
	for k, vs := range h {
		if k == streams.HeaderOrigin || k == headerPinID {
			continue
		}
		for _, v := range vs {
			headers = append(headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	headers = append(headers,
		kgo.RecordHeader{Key: streams.HeaderCEPartitionKey, Value: []byte(key)},
		kgo.RecordHeader{Key: HeaderNatsStream, Value: []byte(e.stream)},
		kgo.RecordHeader{Key: HeaderNatsSequence, Value: []byte(strconv.FormatUint(seq, 10))},
		kgo.RecordHeader{Key: streams.HeaderOrigin, Value: []byte(OriginNATS)},
	)
	value := m.Data()
	if e.b.cfg.WireFormat == WireConfluent {
		var err error
		if value, err = e.b.schemas.Current().Encode(e.topic, value); err != nil {
			return nil, fmt.Errorf("confluent wire format of %s: %w", e.topic, err)
		}
	}
	return &kgo.Record{Topic: e.topic, Key: []byte(key), Value: value, Headers: headers}, nil
}

// partitionTail is the stream sequences found in a Kafka partition's
// records from some offset up to next.
type partitionTail struct {
	seqs map[uint64]bool
	next int64
}

// alreadyThere returns which of the redelivered records (with their
// stream sequences) are in their Kafka partition already: written before
// a crash, or by a replica that lost its pin. Each partition involved is
// read up to its end now, from where the last look-up stopped (at most
// LookBack records back). JetStream redelivers out of order (a message
// handed to a run that died comes back after later ones were written), so
// each sequence is looked up exactly, never compared with a high mark.
func (e *exporter) alreadyThere(ctx context.Context, redelivered map[*kgo.Record]uint64) (map[*kgo.Record]bool, error) {
	adm := kadm.NewClient(e.producer)
	ends, err := adm.ListEndOffsets(ctx, e.topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", e.topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, e.topic)
	if err != nil {
		return nil, fmt.Errorf("start offsets of %s: %w", e.topic, err)
	}
	there := map[*kgo.Record]bool{}
	for rec, seq := range redelivered {
		p := rec.Partition
		end, ok := ends.Lookup(e.topic, p)
		begin, ok2 := starts.Lookup(e.topic, p)
		if !ok || !ok2 {
			return nil, fmt.Errorf("offsets of %s/%d: not listed", e.topic, p)
		}
		if err := errors.Join(end.Err, begin.Err); err != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", e.topic, p, err)
		}
		t := e.tails[p]
		if t == nil || t.next < end.Offset-e.b.cfg.LookBack || len(t.seqs) > 2*int(e.b.cfg.LookBack) {
			t = &partitionTail{seqs: map[uint64]bool{}, next: max(begin.Offset, end.Offset-e.b.cfg.LookBack)}
			e.tails[p] = t
		}
		if t.next < end.Offset {
			if err := e.readTail(ctx, p, t, end.Offset); err != nil {
				return nil, err
			}
		}
		if t.seqs[seq] {
			there[rec] = true
		}
	}
	return there, nil
}

// readTail reads partition p from t.next up to end, adding the stream
// sequences of this stream it finds to t.
func (e *exporter) readTail(ctx context.Context, p int32, t *partitionTail, end int64) error {
	cl, err := kgo.NewClient(append(e.b.kafkaOptions(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{e.topic: {p: kgo.NewOffset().At(t.next)}}))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for t.next < end {
		fetches := cl.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return fmt.Errorf("read back %s/%d: %w", e.topic, p, err)
		}
		for _, fe := range fetches.Errors() {
			return fmt.Errorf("read back %s/%d: %w", e.topic, p, fe.Err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			t.next = r.Offset + 1
			if header(r, HeaderNatsStream) != e.stream {
				return
			}
			if s, err := strconv.ParseUint(header(r, HeaderNatsSequence), 10, 64); err == nil {
				t.seqs[s] = true
			}
		})
	}
	return nil
}

// refreshLag sets the export's lag gauge every lagEvery.
func (e *exporter) refreshLag(ctx context.Context, cons jetstream.Consumer) {
	if time.Since(e.lagAt) < lagEvery {
		return
	}
	e.lagAt = time.Now()
	info, err := cons.Info(ctx)
	if err != nil {
		return
	}
	e.b.metrics.lag.WithLabelValues(e.topic, "export").Set(float64(info.NumPending + uint64(info.NumAckPending))) //nolint:gosec // a count
}

// nakAll asks JetStream to redeliver msgs now rather than after AckWait.
func nakAll(msgs []jetstream.Msg) {
	for _, m := range msgs {
		_ = m.Nak() // best effort: AckWait redelivers anyway
	}
}

// header is the last value of a record header, or "".
func header(r *kgo.Record, key string) string {
	v := ""
	for _, h := range r.Headers {
		if h.Key == key {
			v = string(h.Value)
		}
	}
	return v
}
