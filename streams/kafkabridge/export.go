package kafkabridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
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
		// A record not delivered within half the ack wait fails (and its
		// message is redelivered, then looked up) before JetStream would
		// redeliver it while it is still on its way.
		kgo.RecordDeliveryTimeout(max(b.cfg.AckWait/2, time.Second)), // franz-go takes 1 s at least
	)...)
	if err != nil {
		return fmt.Errorf("kafkabridge: export %s: %w", topic, err)
	}
	defer producer.Close()
	return b.keepRunning(ctx, "export", []string{topic}, func(ctx context.Context) error {
		e := &exporter{b: b, topic: topic, stream: streams.StreamName(topic), producer: producer,
			partitioner: kgo.StickyKeyPartitioner(nil).ForTopic(topic), tails: map[int32]*partitionTail{},
			exported: b.metrics.messages.WithLabelValues(topic, "export")}
		err := e.run(ctx)
		if e.crashed.Load() {
			return errCrash
		}
		return err
	})
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
	// redelivered messages; ends the partitions' offsets listed for the
	// look-ups of the current fetch.
	tails map[int32]*partitionTail
	ends  *offsetsListed
	// inflight counts records produced and not yet answered; err is the
	// run's first failure; crashed says a test's crash stopped it.
	exported prometheus.Counter
	inflight sync.WaitGroup
	err      atomic.Pointer[error]
	crashed  atomic.Bool
	lagAt    time.Time
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
	defer e.settle(ctx)
	for ctx.Err() == nil {
		if err := e.failure(); err != nil {
			return err
		}
		batch, err := cons.Fetch(e.b.cfg.Batch, jetstream.FetchMaxWait(e.fetchWait()), jetstream.FetchPriorityGroup(priorityGroup))
		if err != nil {
			return fmt.Errorf("fetch from %s: %w", e.stream, err)
		}
		e.ends = nil // offsets listed for look-ups are good for one fetch
		got := 0
		for m := range batch.Messages() {
			got++
			if err := e.carry(ctx, m); err != nil {
				return err
			}
		}
		switch err := batch.Error(); {
		case err == nil, errors.Is(err, nats.ErrTimeout), got > 0:
		case errors.Is(err, jetstream.ErrPinIDMismatch):
			// Another replica holds the pin (or ours expired): the next
			// fetch asks for it again and waits its turn.
			continue
		default:
			return fmt.Errorf("fetch from %s: %w", e.stream, err)
		}
		e.refreshLag(ctx, cons)
	}
	e.settle(ctx) // the records on their way may still fail the run
	return e.failure()
}

// settle waits (a bounded time) for the records still on their way to
// Kafka, so that their messages are acknowledged before the run ends,
// unless the run crashed (a test's kill: nothing more happens).
func (e *exporter) settle(ctx context.Context) {
	if e.crashed.Load() {
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { e.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-fctx.Done():
	}
}

// failure is the first failure of a write or an ack, if any.
func (e *exporter) failure() error {
	if err := e.err.Load(); err != nil {
		return *err
	}
	return nil
}

// fail records the run's first failure; the run ends at its next check.
func (e *exporter) fail(err error) {
	e.err.CompareAndSwap(nil, &err)
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

// carry writes m to Kafka and acknowledges it once Kafka has (in the
// produce's callback, so writes overlap the next fetch): a message that
// came from Kafka, or a redelivered one already in its partition, is
// acknowledged without a write. The idempotent producer keeps each
// partition in the order of the calls.
func (e *exporter) carry(ctx context.Context, m jetstream.Msg) error {
	meta, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("metadata of a message on %s: %w", m.Subject(), err)
	}
	if m.Headers().Get(streams.HeaderOrigin) == OriginKafka {
		e.b.metrics.skipped.WithLabelValues(e.topic, "export", "origin").Inc()
		return e.ack(m)
	}
	rec, err := e.record(m, meta.Sequence.Stream)
	if err != nil {
		return err
	}
	rec.Partition = int32(e.partitioner.Partition(rec, e.partitions)) //nolint:gosec // an index below the partition count
	if meta.NumDelivered > 1 {
		there, err := e.alreadyThere(ctx, rec, meta.Sequence.Stream)
		if err != nil {
			return err
		}
		if there {
			e.b.metrics.skipped.WithLabelValues(e.topic, "export", "duplicate").Inc()
			return e.ack(m)
		}
	}
	e.inflight.Add(1)
	e.producer.Produce(ctx, rec, func(_ *kgo.Record, err error) {
		defer e.inflight.Done()
		if e.crashed.Load() {
			return
		}
		if err != nil {
			_ = m.Nak() // best effort: AckWait redelivers anyway
			e.fail(fmt.Errorf("produce to Kafka %s: %w", e.topic, err))
			return
		}
		e.exported.Inc()
		if err := e.crashAt(crashExportProduced); err != nil {
			return
		}
		if err := e.ack(m); err != nil {
			e.fail(err)
			return
		}
		_ = e.crashAt(crashExportAcked)
	})
	return nil
}

// ack acknowledges m to JetStream.
func (e *exporter) ack(m jetstream.Msg) error {
	if err := m.Ack(); err != nil {
		return fmt.Errorf("ack %s: %w", m.Subject(), err)
	}
	return nil
}

// crashAt asks the test hook whether to crash at point; a crash fails the
// run and stops every later ack of it, as a killed process would.
func (e *exporter) crashAt(point string) error {
	err := e.b.crash(point)
	if err != nil {
		e.fail(err) // before crashed: whoever sees crashed sees the failure
		e.crashed.Store(true)
	}
	return err
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

// offsetsListed are a topic's partitions' start and end offsets.
type offsetsListed struct {
	starts, ends kadm.ListedOffsets
}

// alreadyThere reports whether a redelivered record (of stream sequence
// seq) is in its Kafka partition already: written before a crash, or by a
// replica that lost its pin. The partition is read up to its end (listed
// once per fetch), from where the last look-up stopped (at most LookBack
// records back). JetStream redelivers out of order (a message handed to a
// run that died comes back after later ones were written), so each
// sequence is looked up exactly, never compared with a high mark.
func (e *exporter) alreadyThere(ctx context.Context, rec *kgo.Record, seq uint64) (bool, error) {
	if e.ends == nil {
		adm := kadm.NewClient(e.producer)
		ends, err := adm.ListEndOffsets(ctx, e.topic)
		if err != nil {
			return false, fmt.Errorf("end offsets of %s: %w", e.topic, err)
		}
		starts, err := adm.ListStartOffsets(ctx, e.topic)
		if err != nil {
			return false, fmt.Errorf("start offsets of %s: %w", e.topic, err)
		}
		e.ends = &offsetsListed{starts: starts, ends: ends}
	}
	p := rec.Partition
	end, ok := e.ends.ends.Lookup(e.topic, p)
	begin, ok2 := e.ends.starts.Lookup(e.topic, p)
	if !ok || !ok2 {
		return false, fmt.Errorf("offsets of %s/%d: not listed", e.topic, p)
	}
	if err := errors.Join(end.Err, begin.Err); err != nil {
		return false, fmt.Errorf("offsets of %s/%d: %w", e.topic, p, err)
	}
	t := e.tails[p]
	if t == nil || t.next < end.Offset-e.b.cfg.LookBack || len(t.seqs) > 2*int(e.b.cfg.LookBack) {
		t = &partitionTail{seqs: map[uint64]bool{}, next: max(begin.Offset, end.Offset-e.b.cfg.LookBack)}
		e.tails[p] = t
	}
	if t.next < end.Offset {
		if err := e.readTail(ctx, p, t, end.Offset); err != nil {
			return false, err
		}
	}
	return t.seqs[seq], nil
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
