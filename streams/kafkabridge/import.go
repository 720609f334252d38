package kafkabridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/streams"
)

// HeaderKafkaKey carries, on a dead letter of the import, the record's
// key as a quoted Go string (it may be no subject token).
const HeaderKafkaKey = "X-Kafka-Key"

// clockSlack is how much earlier than a Kafka record's timestamp the
// import looks for its message id after an assignment: producers' clocks
// and the broker's may differ.
const clockSlack = 10 * time.Minute

// invalidKey is the subject token of an import's dead letter whose key is
// no subject token.
const invalidKey = "invalid-key"

// runImport carries topics from Kafka to JetStream until ctx ends,
// starting a new group session after a failure.
func (b *Bridge) runImport(ctx context.Context, topics []string) error {
	return b.keepRunning(ctx, "import", topics, func(ctx context.Context) error { return b.importSession(ctx, topics) })
}

// topicPartition names a Kafka partition.
type topicPartition struct {
	topic     string
	partition int32
}

// importer is one consumer-group session of the import.
type importer struct {
	b  *Bridge
	mu sync.Mutex
	// fresh marks partitions assigned since their last record was
	// checked against the stream.
	fresh      map[topicPartition]bool
	maxPayload int64
	// stats are the measured store costs per topic (the writer's lanes').
	statsMu sync.Mutex
	stats   map[string]*storeStats
	// rebalance is set when the group waits for this member to let a
	// rebalance through.
	rebalance atomic.Bool
}

// The import is a pipeline: the session loop polls Kafka and prepares the
// records' messages (a flight) while a writer sends the previous flight to
// JetStream and an acker waits for the one before's acknowledgements and
// commits its offsets. A rebalance waits (BlockRebalanceOnPoll) until
// every polled record is stored and committed.
const (
	// maxInFlight is how many flights may be under way at once: one the
	// acker waits for, one the writer sends.
	maxInFlight = 2
	// busyPoll bounds a poll while polled records are not committed yet:
	// a rebalance must not wait for the next record to arrive.
	busyPoll = 50 * time.Millisecond
	// drainEvery is how many polls at most pass between two points where
	// everything polled is committed and a rebalance may go ahead.
	drainEvery = 64
)

func (b *Bridge) importSession(ctx context.Context, topics []string) error {
	imp := &importer{b: b, fresh: map[topicPartition]bool{}, stats: map[string]*storeStats{}, maxPayload: b.client.JetStream().Conn().MaxPayload()}
	cl, err := kgo.NewClient(append(b.kafkaOptions(),
		kgo.ConsumerGroup(b.cfg.Name),
		kgo.ConsumeTopics(topics...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { imp.rebalance.Store(true) }),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
			imp.mu.Lock()
			defer imp.mu.Unlock()
			for t, ps := range assigned {
				for _, p := range ps {
					imp.fresh[topicPartition{t, p}] = true
				}
			}
		}),
	)...)
	if err != nil {
		return fmt.Errorf("kafka consumer: %w", err)
	}
	defer cl.Close()
	// A rebalance blocked by the polls below must be let through on every
	// way out, or Close waits for it forever.
	defer cl.AllowRebalance()
	wctx, cancel := context.WithCancel(ctx)
	w := imp.startWriter(wctx, cl)
	defer func() { cancel(); w.stop() }() // what is not committed yet is polled again by the next session
	lagAt := time.Time{}
	var next *flight // records polled while the writer was busy
	for polls := 0; ctx.Err() == nil; polls++ {
		want := b.cfg.Batch
		if next != nil {
			want -= len(next.recs)
		}
		fetches := w.poll(ctx, cl, want, next != nil)
		if ctx.Err() != nil {
			return nil
		}
		if fetches.IsClientClosed() {
			return errors.New("kafka consumer closed")
		}
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				b.cfg.Logger.DebugContext(ctx, "kafka bridge: fetch", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
			}
		}
		recs := fetches.Records()
		if len(recs) > 0 {
			if next == nil {
				next = &flight{}
			}
			if err := imp.prepare(ctx, next, recs); err != nil {
				return err
			}
		}
		idle, err := w.idle()
		if err != nil {
			return err
		}
		// The records go to the writer once it is free or they fill a
		// batch; all of them, and a rebalance may go ahead, once the
		// records stop coming (or every drainEvery polls, or when the
		// group asks).
		drain := len(recs) == 0 || polls%drainEvery == 0 || imp.rebalance.Swap(false)
		if next != nil && (idle || drain || len(next.recs) >= b.cfg.Batch) {
			if err := w.submit(ctx, next); err != nil {
				return err
			}
			next = nil
		}
		if drain {
			if err := w.drain(ctx); err != nil {
				return err
			}
			cl.AllowRebalance()
		}
		if time.Since(lagAt) >= lagEvery {
			lagAt = time.Now()
			b.importLag(ctx, cl, topics)
		}
	}
	return nil
}

// flight is a batch of polled records on their way through the writer.
type flight struct {
	recs   []*kgo.Record // to commit once stored
	groups []*storeGroup // the records to store, by topic, in order
	dead   []deadLetter  // the records that go to a DLQ
	done   chan error    // the writer's outcome
}

// deadLetter is the dlq.<topic> message of a record of topic.
type deadLetter struct {
	topic string
	msg   *nats.Msg
}

// writer stores flights in order and commits their offsets.
type writer struct {
	work     chan *flight
	inFlight []*flight // submitted, outcome not yet taken
	exited   chan struct{}
}

// startWriter starts the writer of a session; stop ends it. The writer
// sends each flight's messages and hands it to an acker, which waits for
// the acknowledgements and commits, so that a flight is sent while the
// previous one's acknowledgements are still coming.
func (imp *importer) startWriter(ctx context.Context, cl *kgo.Client) *writer {
	w := &writer{work: make(chan *flight, maxInFlight), exited: make(chan struct{})}
	acks := make(chan *sent, maxInFlight)
	var failed atomic.Pointer[error] // the first failure; nothing is sent or committed after it
	fail := func(err error) error {
		failed.CompareAndSwap(nil, &err)
		return *failed.Load()
	}
	go func() {
		defer close(acks)
		for f := range w.work {
			if err := failed.Load(); err != nil {
				f.done <- *err
				continue
			}
			s, err := imp.send(ctx, f)
			if err != nil {
				f.done <- fail(err)
				continue
			}
			acks <- s
		}
	}()
	go func() {
		defer close(w.exited)
		for s := range acks {
			if err := failed.Load(); err != nil {
				s.f.done <- *err
				continue
			}
			if err := imp.finish(ctx, cl, s); err != nil {
				s.f.done <- fail(err)
				continue
			}
			s.f.done <- nil
		}
	}()
	return w
}

// sent is a flight whose messages are sent: what needs no waiting was
// stored, the lanes' async publishes may still wait for their acks.
type sent struct {
	f     *flight
	lanes []*lane
}

// finish waits for s's acknowledgements and commits its records.
func (imp *importer) finish(ctx context.Context, cl *kgo.Client, s *sent) error {
	for _, l := range s.lanes {
		err := l.waitAll(ctx)
		l.count()
		if err != nil {
			return err
		}
	}
	if err := imp.b.crash(crashImportStored); err != nil {
		return err
	}
	if err := cl.CommitRecords(ctx, s.f.recs...); err != nil {
		return fmt.Errorf("commit offsets: %w", err)
	}
	return nil
}

// poll polls up to n records. While polled records are not committed
// (busy, or a flight is in the writer) it waits at most busyPoll for more.
func (w *writer) poll(ctx context.Context, cl *kgo.Client, n int, busy bool) kgo.Fetches {
	if !busy && len(w.inFlight) == 0 {
		return cl.PollRecords(ctx, n)
	}
	pctx, cancel := context.WithTimeout(ctx, busyPoll)
	defer cancel()
	return cl.PollRecords(pctx, n)
}

// submit hands f to the writer, first waiting for the oldest flight when
// maxInFlight are under way.
func (w *writer) submit(ctx context.Context, f *flight) error {
	if len(w.inFlight) == maxInFlight {
		if err := w.take(ctx); err != nil {
			return err
		}
	}
	f.done = make(chan error, 1)
	w.inFlight = append(w.inFlight, f)
	w.work <- f
	return nil
}

// idle takes the outcomes of the flights the writer has finished, without
// waiting, and reports whether it has none left.
func (w *writer) idle() (bool, error) {
	for len(w.inFlight) > 0 {
		select {
		case err := <-w.inFlight[0].done:
			w.inFlight = w.inFlight[1:]
			if err != nil {
				return false, err
			}
		default:
			return false, nil
		}
	}
	return true, nil
}

// take waits for the oldest flight's outcome.
func (w *writer) take(ctx context.Context) error {
	f := w.inFlight[0]
	select {
	case err := <-f.done:
		w.inFlight = w.inFlight[1:]
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain waits until every submitted flight is stored and committed.
func (w *writer) drain(ctx context.Context) error {
	for len(w.inFlight) > 0 {
		if err := w.take(ctx); err != nil {
			return err
		}
	}
	return nil
}

// stop waits for the writer to finish what it was given (quickly once its
// context is done).
func (w *writer) stop() {
	close(w.work)
	<-w.exited
}

// prepare adds recs to f: their messages per topic, in order (a record
// stored before an assignment left out), and the dead letters of those
// that cannot be stored.
func (imp *importer) prepare(ctx context.Context, f *flight, recs []*kgo.Record) error {
	b := imp.b
	f.recs = append(f.recs, recs...)
	for _, rec := range recs {
		if header(rec, streams.HeaderOrigin) == OriginNATS {
			b.metrics.skipped.WithLabelValues(rec.Topic, "import", "origin").Inc()
			continue
		}
		id := importID(rec)
		msg, reason := imp.message(rec, id)
		if reason != nil {
			f.dead = append(f.dead, deadLetter{topic: rec.Topic, msg: imp.deadLetter(rec, id, reason)})
			continue
		}
		dup, err := imp.storedBefore(ctx, rec, id)
		if err != nil {
			return err
		}
		if dup {
			b.metrics.skipped.WithLabelValues(rec.Topic, "import", "duplicate").Inc()
			continue
		}
		g := groupOf(&f.groups, rec.Topic, int(rec.Partition)%writeLanes)
		g.msgs = append(g.msgs, msg)
	}
	return nil
}

// importID is the message id of a record: kafka/<topic>/<partition>/<offset>.
func importID(rec *kgo.Record) string {
	return "kafka/" + rec.Topic + "/" + strconv.FormatInt(int64(rec.Partition), 10) + "/" + strconv.FormatInt(rec.Offset, 10)
}

// writeLanes is how many lanes a flight is stored in at once. A record's
// lane is its partition modulo writeLanes, so a key's records keep their
// order, and one lane's atomic batch is sent while another's commits.
const writeLanes = 2

// send stores f's messages (and dead letters): atomic batches and
// measured publishes are waited for, the async publishes of a group
// stored the usual way are only sent.
func (imp *importer) send(ctx context.Context, f *flight) (*sent, error) {
	byLane := make([][]*storeGroup, writeLanes)
	for _, g := range f.groups {
		byLane[g.lane] = append(byLane[g.lane], g)
	}
	s := &sent{f: f}
	eg, ectx := errgroup.WithContext(ctx)
	if len(f.dead) > 0 {
		l := imp.newLane()
		s.lanes = append(s.lanes, l)
		for _, dl := range f.dead {
			if err := l.publishAsync(dl.topic, dl.msg, true); err != nil {
				return nil, err
			}
		}
	}
	for _, groups := range byLane {
		if len(groups) > 0 {
			l := imp.newLane()
			s.lanes = append(s.lanes, l)
			eg.Go(func() error { return imp.sendLane(ectx, l, groups) })
		}
	}
	if err := eg.Wait(); err != nil {
		for _, l := range s.lanes {
			l.count()
		}
		return nil, err
	}
	return s, nil
}

// sendLane stores one lane's groups, in order, leaving the acks of the
// last groups' plain async publishes to wait for.
func (imp *importer) sendLane(ctx context.Context, l *lane, groups []*storeGroup) error {
	for _, g := range groups {
		async, atomic := imp.plan(ctx, g)
		msgs := g.msgs
		if async == len(msgs) && !atomic { // the usual way while async is the cheaper
			for _, msg := range msgs {
				if err := l.publishAsync(g.topic, msg, false); err != nil {
					return err
				}
			}
			continue
		}
		// What is measured or batched comes after what the lane sent.
		if err := l.waitAll(ctx); err != nil {
			return err
		}
		if err := l.publish(ctx, g.topic, msgs[:async]); err != nil {
			return err
		}
		msgs = msgs[async:]
		if atomic {
			n, err := imp.storeAtomic(ctx, g.topic, msgs)
			if err != nil {
				return err
			}
			l.stored[g.topic] += n
			msgs = msgs[n:] // left: a batch the server refused for a duplicate id
		}
		if err := l.publish(ctx, g.topic, msgs); err != nil {
			return err
		}
	}
	return nil
}

// lane is one writer lane's async publishes and what it stored.
type lane struct {
	imp    *importer
	waits  []pending
	waited int // waits[:waited] are acknowledged
	// stored and dead count the messages stored per topic, in their
	// stream or their DLQ.
	stored, dead map[string]int
}

// pending is an async publish of a message of topic.
type pending struct {
	topic  string
	future jetstream.PubAckFuture
	dead   bool
}

func (imp *importer) newLane() *lane {
	return &lane{imp: imp, stored: map[string]int{}, dead: map[string]int{}}
}

// count adds what the lane stored to the metrics: once a flight, as a
// counter per record costs a label look-up each.
func (l *lane) count() {
	m := l.imp.b.metrics
	for t, n := range l.stored {
		m.messages.WithLabelValues(t, "import").Add(float64(n))
	}
	for t, n := range l.dead {
		m.deadLetters.WithLabelValues(t).Add(float64(n))
	}
}

// publishAsync publishes msg of topic (to its DLQ if dead) without
// waiting for its acknowledgement.
func (l *lane) publishAsync(topic string, msg *nats.Msg, dead bool) error {
	fut, err := l.imp.b.client.JetStream().PublishMsgAsync(msg, jetstream.WithStallWait(ackTimeout))
	if err != nil {
		return fmt.Errorf("store %s: %w", msg.Header.Get(streams.HeaderMsgID), err)
	}
	l.waits = append(l.waits, pending{topic: topic, future: fut, dead: dead})
	return nil
}

// publish publishes msgs of topic one by one and waits for them,
// measuring what a message cost (the round trip included: the server may
// hold its acknowledgements back until it has stored them all).
func (l *lane) publish(ctx context.Context, topic string, msgs []*nats.Msg) error {
	start := time.Now()
	for _, msg := range msgs {
		if err := l.publishAsync(topic, msg, false); err != nil {
			return err
		}
	}
	if err := l.waitAll(ctx); err != nil {
		return err
	}
	l.imp.observe(topic, storeAsync, len(msgs), time.Since(start))
	return nil
}

// ackTimeout bounds the wait for JetStream's acknowledgements.
const ackTimeout = 30 * time.Second

// waitAll waits for every publish's acknowledgement.
func (l *lane) waitAll(ctx context.Context) error { return l.waitUpTo(ctx, len(l.waits)) }

// waitUpTo waits for the acknowledgements of the first n publishes, for
// at most ackTimeout.
func (l *lane) waitUpTo(ctx context.Context, n int) error {
	timeout := time.NewTimer(ackTimeout)
	defer timeout.Stop()
	for ; l.waited < min(n, len(l.waits)); l.waited++ {
		if l.waited == len(l.waits)/2 && l.waited > 0 {
			if err := l.imp.b.crash(crashImportPartly); err != nil {
				return err
			}
		}
		w := l.waits[l.waited]
		id := w.future.Msg().Header.Get(streams.HeaderMsgID)
		select {
		case <-w.future.Ok():
		case err := <-w.future.Err():
			return fmt.Errorf("store %s: %w", id, err)
		case <-timeout.C:
			return fmt.Errorf("store %s: no acknowledgement within %v", id, ackTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
		if w.dead {
			l.dead[w.topic]++
		} else {
			l.stored[w.topic]++
		}
	}
	return nil
}

// storeGroup is a flight's messages for one topic and lane.
type storeGroup struct {
	topic string
	lane  int
	msgs  []*nats.Msg
}

// groupOf is the group of (topic, lane) in *groups, added when missing.
func groupOf(groups *[]*storeGroup, topic string, lane int) *storeGroup {
	for _, g := range *groups {
		if g.topic == topic && g.lane == lane {
			return g
		}
	}
	g := &storeGroup{topic: topic, lane: lane}
	*groups = append(*groups, g)
	return g
}

// How a group is stored: async publishes (one acknowledgement, and under
// fsync "always" one fsync, per message) or atomic batches (one per batch,
// but staged on the server first). Which is faster depends on the
// server's fsync policy, which a client cannot read, so the import
// measures both on each topic and keeps to the cheaper. Async publishes
// are first tried on a small sample (the start of a group, the rest in
// atomic batches): under fsync "always" a group published async costs ten
// times its atomic batch. A small sample overstates the async cost (its
// round trip is shared by few messages), so while the two are close the
// sample grows, up to a whole group. The first large group measures both
// ways; every probeEvery large groups the other way is measured again.
const (
	storeAsync = iota
	storeAtomic
	// atomicMin is the smallest group worth an atomic batch; atomicMax
	// the largest batch the server takes.
	atomicMin = 64
	atomicMax = 1000
	// probeSize is the first async sample; closeCosts how many times
	// the atomic cost the async one may be for the sample to grow (4x).
	probeSize  = 64
	closeCosts = 3
	probeEvery = 64
)

// storeStats are one topic's measured costs per message of each way.
type storeStats struct {
	allowed bool       // the stream takes atomic batches
	cost    [2]float64 // seconds per message, smoothed; 0: not measured
	sample  int        // the async sample size cost[storeAsync] comes from
	groups  int        // large groups stored
}

// plan says how g is stored: its first async messages published one by
// one, then the rest in atomic batches if atomic, else one by one too.
func (imp *importer) plan(ctx context.Context, g *storeGroup) (async int, atomic bool) {
	if imp.b.cfg.storeWay != nil {
		return 0, *imp.b.cfg.storeWay == storeAtomic
	}
	imp.statsMu.Lock()
	defer imp.statsMu.Unlock()
	st := imp.statsOf(ctx, g.topic)
	n := len(g.msgs)
	if n < atomicMin || !st.allowed {
		return n, false
	}
	st.groups++
	probe := st.groups%probeEvery == 0
	asyncCost, atomicCost := st.cost[storeAsync], st.cost[storeAtomic]
	switch {
	case asyncCost == 0: // the first group measures both ways
		return min(probeSize, n), true
	case atomicCost == 0:
		return 0, true
	case atomicCost < asyncCost && asyncCost < closeCosts*atomicCost && st.sample < n:
		return min(4*st.sample, n), true // close: a larger sample tells
	case atomicCost < asyncCost && probe:
		return min(st.sample, n), true
	case atomicCost < asyncCost:
		return 0, true
	case probe:
		return 0, true
	}
	return n, false
}

// statsOf returns topic's store costs, created on first use; statsMu is
// held.
func (imp *importer) statsOf(ctx context.Context, topic string) *storeStats {
	st := imp.stats[topic]
	if st == nil {
		st = &storeStats{}
		if s, err := imp.b.client.JetStream().Stream(ctx, streams.StreamName(topic)); err == nil {
			st.allowed = s.CachedInfo().Config.AllowAtomicPublish
		}
		imp.stats[topic] = st
	}
	return st
}

// observe folds a measured store of n messages of topic into its costs;
// an async sample much larger than the last replaces its cost.
func (imp *importer) observe(topic string, way, n int, took time.Duration) {
	imp.statsMu.Lock()
	defer imp.statsMu.Unlock()
	st := imp.stats[topic]
	if st == nil || n < atomicMin {
		return
	}
	per := took.Seconds() / float64(n)
	switch {
	case way == storeAsync && n >= 2*st.sample:
		st.cost[way], st.sample = per, n
	case st.cost[way] == 0:
		st.cost[way] = per
	default:
		st.cost[way] = 0.7*st.cost[way] + 0.3*per
	}
}

// storeAtomic stores msgs of topic in atomic batches, in order, and
// returns how many it stored: fewer than all when the server refused a
// batch for a message id it has already (a replay within the duplicate
// window), which the caller then publishes one by one.
func (imp *importer) storeAtomic(ctx context.Context, topic string, msgs []*nats.Msg) (int, error) {
	start, n := time.Now(), 0
	for n < len(msgs) {
		chunk := msgs[n:min(n+atomicMax, len(msgs))]
		if _, err := jetstreamext.PublishMsgBatch(ctx, imp.b.client.JetStream(), chunk); err != nil {
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeBatchDuplicate {
				break
			}
			return n, fmt.Errorf("store an atomic batch of %d on %s: %w", len(chunk), topic, err)
		}
		n += len(chunk)
		if err := imp.b.crash(crashImportPartly); err != nil {
			return n, err
		}
	}
	imp.observe(topic, storeAtomic, n, time.Since(start))
	return n, nil
}

// errCodeBatchDuplicate is the server's "atomic publish batch contains
// duplicate message id".
const errCodeBatchDuplicate = 10201

// storedBefore reports, for the first records of a partition after an
// assignment, whether the stream holds the record's message id already
// (stored before a crash, possibly longer ago than the duplicate window).
// Records are stored in partition order, so the first one not found ends
// the checks of its partition.
func (imp *importer) storedBefore(ctx context.Context, rec *kgo.Record, id string) (bool, error) {
	tp := topicPartition{rec.Topic, rec.Partition}
	imp.mu.Lock()
	fresh := imp.fresh[tp]
	imp.mu.Unlock()
	if !fresh {
		return false, nil
	}
	found, err := imp.b.client.FindMsgIDOfKey(ctx, rec.Topic, string(rec.Key), id, rec.Timestamp.Add(-clockSlack))
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", id, err)
	}
	if !found {
		imp.mu.Lock()
		imp.fresh[tp] = false
		imp.mu.Unlock()
	}
	return found, nil
}

// message builds the JetStream message of a record, or says why the
// record cannot be stored.
func (imp *importer) message(rec *kgo.Record, id string) (*nats.Msg, error) {
	t, err := imp.b.client.Catalog().Topic(rec.Topic)
	if err != nil {
		return nil, err
	}
	subject, err := streams.Subject(rec.Topic, string(rec.Key))
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if ct := header(rec, streams.HeaderContentType); ct != "" && ct != streams.ContentTypeProtobuf {
		return nil, fmt.Errorf("content type %q: %s carries %s", ct, rec.Topic, streams.ContentTypeProtobuf)
	}
	if ce := header(rec, streams.HeaderCEType); ce != "" && ce != string(t.MessageName()) {
		return nil, fmt.Errorf("ce-type %q: %s carries %s", ce, rec.Topic, t.MessageName())
	}
	payload := rec.Value
	if len(payload) > 0 && payload[0] == 0 { // no protobuf message starts with field 0: Confluent's wire format
		if imp.b.schemas == nil {
			return nil, errors.New("value in Confluent's wire format, and the bridge has no schema registry to check its schema id")
		}
		if payload, err = imp.b.schemas.Current().Strip(rec.Topic, payload); err != nil {
			return nil, fmt.Errorf("value in Confluent's wire format: %w", err)
		}
	}
	if err := proto.Unmarshal(payload, t.Payload.ProtoReflect().New().Interface()); err != nil {
		return nil, fmt.Errorf("payload is not a %s: %w", t.MessageName(), err)
	}
	h := nats.Header{}
	size := len(payload)
	for _, rh := range rec.Headers {
		if skipImportedHeader(rh.Key) {
			continue
		}
		if err := checkHeader(rh.Key, rh.Value); err != nil {
			return nil, err
		}
		h.Add(rh.Key, string(rh.Value))
		size += len(rh.Key) + len(rh.Value) + 4
	}
	if int64(size)+1024 > imp.maxPayload {
		return nil, fmt.Errorf("record of %d bytes: JetStream takes at most %d", size, imp.maxPayload)
	}
	setDefault(h, streams.HeaderCEType, string(t.MessageName()))
	setDefault(h, streams.HeaderContentType, streams.ContentTypeProtobuf)
	setDefault(h, streams.HeaderCEID, id)
	setDefault(h, streams.HeaderCESource, "kafka/"+rec.Topic)
	setDefault(h, streams.HeaderCESpecVersion, "1.0")
	setDefault(h, streams.HeaderCETime, rec.Timestamp.UTC().Format(time.RFC3339Nano))
	h.Set(streams.HeaderMsgID, id)
	h.Set(streams.HeaderOrigin, OriginKafka)
	h.Set(HeaderKafkaPartition, strconv.FormatInt(int64(rec.Partition), 10))
	h.Set(HeaderKafkaOffset, strconv.FormatInt(rec.Offset, 10))
	return &nats.Msg{Subject: subject, Data: payload, Header: h}, nil
}

// deadLetter builds the dlq.<topic> message of a record that cannot be
// stored. A payload too large for JetStream is left out (the record's
// partition and offset say where it is).
func (imp *importer) deadLetter(rec *kgo.Record, id string, reason error) *nats.Msg {
	key := string(rec.Key)
	if streams.ValidateKey(key) != nil {
		key = invalidKey
	}
	h := nats.Header{}
	for _, rh := range rec.Headers {
		if !skipImportedHeader(rh.Key) && checkHeader(rh.Key, rh.Value) == nil {
			h.Add(rh.Key, string(rh.Value))
		}
	}
	quoted := strconv.Quote(string(rec.Key))
	if len(quoted) > 256 {
		quoted = quoted[:256] + "..."
	}
	h.Set(streams.HeaderOrigin, OriginKafka)
	h.Set(HeaderKafkaKey, quoted)
	h.Set(HeaderKafkaPartition, strconv.FormatInt(int64(rec.Partition), 10))
	h.Set(HeaderKafkaOffset, strconv.FormatInt(rec.Offset, 10))
	data := rec.Value
	if int64(len(data))+4096 > imp.maxPayload {
		data = nil
	}
	src := streams.DeadLetterSource{Stream: "kafka:" + rec.Topic, Subject: rec.Topic + "." + key, Sequence: uint64(rec.Offset), MsgID: id} //nolint:gosec // an offset is not negative
	dl := streams.DeadLetterMsg(src, data, h, imp.b.cfg.Name+"-import", 1, errors.New(oneLine(reason.Error())))
	dl.Header.Set(streams.HeaderMsgID, "dlq:"+id)
	return dl
}

// importLag sets the import lag gauge: per topic, the group's distance
// from the end of every partition it holds.
func (b *Bridge) importLag(ctx context.Context, cl *kgo.Client, topics []string) {
	lags, err := groupLag(ctx, cl, b.cfg.Name, topics)
	if err != nil {
		return
	}
	for t, n := range lags {
		b.metrics.lag.WithLabelValues(t, "import").Set(float64(n))
	}
}

// skipImportedHeader reports whether a Kafka header stays behind: the
// broker's own (Nats-*: ids and expectations would steer JetStream), and
// those the bridge sets itself.
func skipImportedHeader(key string) bool {
	return len(key) >= 5 && strings.EqualFold(key[:5], "nats-") ||
		key == streams.HeaderOrigin || key == HeaderNatsStream || key == HeaderNatsSequence ||
		key == HeaderKafkaPartition || key == HeaderKafkaOffset
}

// checkHeader refuses a header NATS cannot carry: a name that is no
// token, a value with control characters.
func checkHeader(key string, value []byte) error {
	if key == "" || len(key) > 256 || strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r == ':' || r >= 0x7f }) {
		return fmt.Errorf("header name %q: not a NATS header name", key)
	}
	if len(value) > 4096 || strings.ContainsFunc(string(value), func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return fmt.Errorf("header %s: a value NATS cannot carry (control characters, or over 4096 bytes)", key)
	}
	return nil
}

// setDefault sets h[key] when it has no value.
func setDefault(h nats.Header, key, value string) {
	if h.Get(key) == "" {
		h.Set(key, value)
	}
}

// oneLine keeps a reason to one header line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' {
			return ' '
		}
		return r
	}, s)
}

// groupLag is the consumer group's lag per topic.
func groupLag(ctx context.Context, cl *kgo.Client, group string, topics []string) (map[string]int64, error) {
	lags, err := kadm.NewClient(cl).Lag(ctx, group)
	if err != nil {
		return nil, err
	}
	l, ok := lags[group]
	if !ok {
		return nil, fmt.Errorf("group %s: no lag", group)
	}
	if err := l.Error(); err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(topics))
	for _, t := range topics {
		out[t] = l.Lag.TotalByTopic()[t].Lag
	}
	return out, nil
}
