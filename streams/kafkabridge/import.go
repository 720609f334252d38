package kafkabridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
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
	// stats are the measured store costs per topic.
	stats map[string]*storeStats
}

func (b *Bridge) importSession(ctx context.Context, topics []string) error {
	imp := &importer{b: b, fresh: map[topicPartition]bool{}, stats: map[string]*storeStats{}, maxPayload: b.client.JetStream().Conn().MaxPayload()}
	cl, err := kgo.NewClient(append(b.kafkaOptions(),
		kgo.ConsumerGroup(b.cfg.Name),
		kgo.ConsumeTopics(topics...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
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
	// A rebalance blocked by the poll below must be let through on every
	// way out, or Close waits for it forever.
	defer cl.AllowRebalance()
	lagAt := time.Time{}
	for ctx.Err() == nil {
		fetches := cl.PollRecords(ctx, b.cfg.Batch)
		if ctx.Err() != nil {
			return nil
		}
		if fetches.IsClientClosed() {
			return errors.New("kafka consumer closed")
		}
		for _, fe := range fetches.Errors() {
			b.cfg.Logger.DebugContext(ctx, "kafka bridge: fetch", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		}
		recs := fetches.Records()
		if len(recs) > 0 {
			if err := imp.store(ctx, recs); err != nil {
				return err
			}
			if err := b.crash(crashImportStored); err != nil {
				return err
			}
			if err := cl.CommitRecords(ctx, recs...); err != nil {
				return fmt.Errorf("commit offsets: %w", err)
			}
		}
		cl.AllowRebalance()
		if time.Since(lagAt) >= lagEvery {
			lagAt = time.Now()
			b.importLag(ctx, cl, topics)
		}
	}
	return nil
}

// store writes recs to their streams (or to their DLQ) and returns once
// JetStream acknowledged every one.
func (imp *importer) store(ctx context.Context, recs []*kgo.Record) error {
	b := imp.b
	js := b.client.JetStream()
	type pending struct {
		topic  string
		future jetstream.PubAckFuture
		dead   bool
	}
	var (
		waits  []pending
		waited int // waits[:waited] are acknowledged
	)
	stored, dead := map[string]int{}, map[string]int{}
	defer func() { // counted once a poll: a counter per record costs a label look-up each
		for t, n := range stored {
			b.metrics.messages.WithLabelValues(t, "import").Add(float64(n))
		}
		for t, n := range dead {
			b.metrics.deadLetters.WithLabelValues(t).Add(float64(n))
		}
	}()
	waitAll := func() error {
		timeout := time.NewTimer(30 * time.Second)
		defer timeout.Stop()
		for ; waited < len(waits); waited++ {
			if waited == len(waits)/2 && waited > 0 {
				if err := b.crash(crashImportPartly); err != nil {
					return err
				}
			}
			w := waits[waited]
			id := w.future.Msg().Header.Get(streams.HeaderMsgID)
			select {
			case <-w.future.Ok():
			case err := <-w.future.Err():
				return fmt.Errorf("store %s: %w", id, err)
			case <-timeout.C:
				return fmt.Errorf("store %s: no acknowledgement within 30s", id)
			case <-ctx.Done():
				return ctx.Err()
			}
			if w.dead {
				dead[w.topic]++
			} else {
				stored[w.topic]++
			}
		}
		return nil
	}
	var groups []*storeGroup // the records to store, by topic, in order
	for _, rec := range recs {
		if header(rec, streams.HeaderOrigin) == OriginNATS {
			b.metrics.skipped.WithLabelValues(rec.Topic, "import", "origin").Inc()
			continue
		}
		id := fmt.Sprintf("kafka/%s/%d/%d", rec.Topic, rec.Partition, rec.Offset)
		msg, reason := imp.message(rec, id)
		if reason != nil {
			f, err := js.PublishMsgAsync(imp.deadLetter(rec, id, reason))
			if err != nil {
				return fmt.Errorf("store %s: %w", id, err)
			}
			waits = append(waits, pending{topic: rec.Topic, future: f, dead: true})
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
		g := groupOf(&groups, rec.Topic)
		g.msgs = append(g.msgs, msg)
	}
	for _, g := range groups {
		if imp.atomic(ctx, g) {
			n, err := imp.storeAtomic(ctx, g)
			if err != nil {
				return err
			}
			stored[g.topic] += n
			g.msgs = g.msgs[n:] // left: a batch the server refused for a duplicate id
		}
		start := time.Now()
		for _, msg := range g.msgs {
			f, err := js.PublishMsgAsync(msg)
			if err != nil {
				return fmt.Errorf("store %s: %w", msg.Header.Get(streams.HeaderMsgID), err)
			}
			waits = append(waits, pending{topic: g.topic, future: f})
		}
		if err := waitAll(); err != nil {
			return err
		}
		imp.observe(g, storeAsync, len(g.msgs), time.Since(start))
	}
	return waitAll()
}

// storeGroup is one poll's messages for one topic.
type storeGroup struct {
	topic string
	msgs  []*nats.Msg
}

// groupOf is the group of topic in *groups, added when missing.
func groupOf(groups *[]*storeGroup, topic string) *storeGroup {
	for _, g := range *groups {
		if g.topic == topic {
			return g
		}
	}
	g := &storeGroup{topic: topic}
	*groups = append(*groups, g)
	return g
}

// How a group is stored: async publishes (one acknowledgement, and under
// fsync "always" one fsync, per message) or atomic batches (one per batch,
// but staged on the server first). Which is faster depends on the
// server's fsync policy, which a client cannot read, so the import
// measures both on each topic and keeps to the cheaper, trying the other
// now and then.
const (
	storeAsync = iota
	storeAtomic
	// atomicMin is the smallest group worth an atomic batch; atomicMax
	// the largest batch the server takes; probeEvery how often (in large
	// groups) the other way is tried.
	atomicMin  = 64
	atomicMax  = 1000
	probeEvery = 16
)

// storeStats are one topic's measured costs per message of each way.
type storeStats struct {
	allowed bool       // the stream takes atomic batches
	cost    [2]float64 // seconds per message, smoothed; 0: not measured
	groups  int        // large groups stored
}

// atomic reports whether g is stored in atomic batches.
func (imp *importer) atomic(ctx context.Context, g *storeGroup) bool {
	if imp.b.cfg.storeWay != nil {
		return *imp.b.cfg.storeWay == storeAtomic
	}
	if len(g.msgs) < atomicMin {
		return false
	}
	st := imp.stats[g.topic]
	if st == nil {
		st = &storeStats{}
		if s, err := imp.b.client.JetStream().Stream(ctx, streams.StreamName(g.topic)); err == nil {
			st.allowed = s.CachedInfo().Config.AllowAtomicPublish
		}
		imp.stats[g.topic] = st
	}
	if !st.allowed {
		return false
	}
	st.groups++
	switch {
	case st.cost[storeAsync] == 0:
		return false
	case st.cost[storeAtomic] == 0:
		return true
	}
	best := st.cost[storeAtomic] < st.cost[storeAsync]
	if st.groups%probeEvery == 0 {
		return !best
	}
	return best
}

// observe folds a measured store into the topic's costs.
func (imp *importer) observe(g *storeGroup, way, n int, took time.Duration) {
	st := imp.stats[g.topic]
	if st == nil || n < atomicMin {
		return
	}
	per := took.Seconds() / float64(n)
	if st.cost[way] == 0 {
		st.cost[way] = per
	} else {
		st.cost[way] = 0.7*st.cost[way] + 0.3*per
	}
}

// storeAtomic stores g's messages in atomic batches, in order, and
// returns how many it stored: fewer than all when the server refused a
// batch for a message id it has already (a replay within the duplicate
// window), which the caller then publishes one by one.
func (imp *importer) storeAtomic(ctx context.Context, g *storeGroup) (int, error) {
	start, n := time.Now(), 0
	for n < len(g.msgs) {
		chunk := g.msgs[n:min(n+atomicMax, len(g.msgs))]
		if _, err := jetstreamext.PublishMsgBatch(ctx, imp.b.client.JetStream(), chunk); err != nil {
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeBatchDuplicate {
				break
			}
			return n, fmt.Errorf("store an atomic batch of %d on %s: %w", len(chunk), g.topic, err)
		}
		n += len(chunk)
		if err := imp.b.crash(crashImportPartly); err != nil {
			return n, err
		}
	}
	imp.observe(g, storeAtomic, n, time.Since(start))
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
