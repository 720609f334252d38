package kafkabridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
)

const (
	exportTopic = streams.TopicEngineEvent
	importTopic = streams.TopicOrderCommand
)

// fixture is a broker with the catalog's streams and an in-process Kafka.
type fixture struct {
	client *streams.Client
	js     jetstream.JetStream
	pub    *streams.Publisher
	kafka  *kfake.Cluster
	// kcl reads and writes Kafka as a user of the bridged topics would.
	kcl *kgo.Client
	// kopts are what a Kafka client needs to reach kafka (TLS, SASL).
	kopts []kgo.Opt
	// log is the bridges' log: the test's output.
	log *slog.Logger
}

func newFixture(t *testing.T, provision ...streams.ProvisionOption) *fixture {
	t.Helper()
	js := embeddedtest.New(t).JetStream()
	return newFixtureOn(t, js, newKafka(t), nil, provision...)
}

func newFixtureOn(t *testing.T, js jetstream.JetStream, kafka *kfake.Cluster, kopts []kgo.Opt, provision ...streams.ProvisionOption) *fixture {
	t.Helper()
	cat := streams.DefaultCatalog()
	if err := streams.EnsureStreams(t.Context(), js, cat, provision...); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	kcl, err := kgo.NewClient(append(slices.Clone(kopts), kgo.SeedBrokers(kafka.ListenAddrs()...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kcl.Close)
	return &fixture{client: streams.NewClient(js, cat), js: js, pub: streams.NewPublisher(js, cat), kafka: kafka, kcl: kcl, kopts: kopts,
		log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
}

func newKafka(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// config is a bridge of the fixture's Kafka with test-sized timings.
func (f *fixture) config(routes ...Route) Config {
	return Config{
		Brokers: f.kafka.ListenAddrs(), Routes: routes, Partitions: 3, ReplicationFactor: 1,
		AckWait: time.Second, PinnedTTL: time.Second, Batch: 64,
		Logger: f.log,
	}
}

// run starts a bridge; stop ends it and returns Run's error.
func (f *fixture) run(t *testing.T, cfg Config) (b *Bridge, stop func() error) {
	t.Helper()
	b, err := New(f.client, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return b, stop
}

// runUntilCrash runs a bridge until Run returns by itself (a crash hook
// ends it), for at most a minute.
func (f *fixture) runUntilCrash(t *testing.T, cfg Config) error {
	t.Helper()
	b, err := New(f.client, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	return b.Run(ctx)
}

// event is an engine event as the catalog carries it.
func event(key string, i int) *enginev1.EngineEvent {
	return &enginev1.EngineEvent{EventId: fmt.Sprintf("%s-%d", key, i), InstrumentId: key}
}

// publishEvents publishes n events per key, in order, on exportTopic.
func (f *fixture) publishEvents(ctx context.Context, t *testing.T, keys []string, n int) {
	t.Helper()
	for i := range n {
		for _, k := range keys {
			if _, err := f.pub.Publish(ctx, exportTopic, k, event(k, i), streams.WithMsgID(fmt.Sprintf("%s-%d", k, i))); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
	}
}

// produceCommands writes n order commands per key to importTopic in Kafka.
func (f *fixture) produceCommands(t *testing.T, keys []string, from, n int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		for _, k := range keys {
			recs = append(recs, commandRecord(t, k, i))
		}
	}
	f.produce(t, recs...)
}

// ensureTopic creates a Kafka topic with 3 partitions (as the bridge's
// test configuration does) when it is missing.
func (f *fixture) ensureTopic(t *testing.T, topic string) {
	t.Helper()
	res, err := kadm.NewClient(f.kcl).CreateTopics(t.Context(), 3, 1, nil, topic)
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if err := res.Error(); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create topic: %v", err)
	}
}

// produce writes recs to Kafka as a user would, creating their topic (3
// partitions, as the bridge's test configuration) when it is missing.
func (f *fixture) produce(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	f.ensureTopic(t, recs[0].Topic)
	if err := f.kcl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func commandRecord(t *testing.T, key string, i int) *kgo.Record {
	t.Helper()
	b, err := proto.Marshal(&enginev1.OrderCommand{CommandId: fmt.Sprintf("%s-%d", key, i), InstrumentId: key})
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: importTopic, Key: []byte(key), Value: b,
		Headers: []kgo.RecordHeader{{Key: streams.HeaderCorrelationID, Value: []byte("corr-" + key)}}}
}

// kafkaRecords reads every record of topic now in Kafka (up to the end
// offsets read first).
func (f *fixture) kafkaRecords(t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	var ends kadm.ListedOffsets
	polltest.Until(t, "the end offsets of "+topic, func() error { // a partition may answer with an error for a moment
		var err error
		if ends, err = kadm.NewClient(f.kcl).ListEndOffsets(t.Context(), topic); err != nil {
			return err
		}
		if len(ends[topic]) == 0 {
			return fmt.Errorf("no partition of %s listed", topic)
		}
		return ends.Error()
	})
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			offsets[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(slices.Clone(f.kopts), kgo.SeedBrokers(f.kafka.ListenAddrs()...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	next := map[int32]int64{}
	for !reached(next, want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d records of %v", topic, len(out), want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			next[r.Partition] = r.Offset + 1
		})
	}
	return out
}

func reached(next, want map[int32]int64) bool {
	for p, end := range want {
		if next[p] < end {
			return false
		}
	}
	return true
}

// kafkaCount is how many records topic holds.
func (f *fixture) kafkaCount(t *testing.T, topic string) int64 {
	t.Helper()
	ends, err := kadm.NewClient(f.kcl).ListEndOffsets(t.Context(), topic)
	if err != nil {
		return -1
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// streamMessages reads every message of topic's stream.
func (f *fixture) streamMessages(t *testing.T, topic string) []streams.Stored {
	t.Helper()
	var out []streams.Stored
	for from := uint64(1); ; {
		msgs, err := jetstreamext.GetBatch(t.Context(), f.js, streams.StreamName(topic), 1000,
			jetstreamext.GetBatchSubject(topic+".>"), jetstreamext.GetBatchSeq(from))
		if err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		n := 0
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				t.Fatalf("read %s: %v", topic, err)
			}
			key, _ := streams.KeyFromSubject(topic, m.Subject)
			out = append(out, streams.Stored{Subject: m.Subject, Key: key, Sequence: m.Sequence, Time: m.Time, Header: m.Header, Data: m.Data})
			from = m.Sequence + 1
			n++
		}
		if n < 1000 {
			return out
		}
	}
}

// exportCaughtUp reports whether the export consumer has nothing left.
func (f *fixture) exportCaughtUp(ctx context.Context, name string) error {
	st, err := f.js.Stream(ctx, streams.StreamName(exportTopic))
	if err != nil {
		return err
	}
	c, err := st.Consumer(ctx, name+"-export")
	if err != nil {
		return err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	if info.NumPending != 0 || info.NumAckPending != 0 {
		return fmt.Errorf("export: %d pending, %d unacknowledged", info.NumPending, info.NumAckPending)
	}
	return nil
}

// importCaughtUp reports whether the group committed every record.
func (f *fixture) importCaughtUp(ctx context.Context, name string) error {
	lags, err := kadm.NewClient(f.kcl).Lag(ctx, name)
	if err != nil {
		return err
	}
	l := lags[name]
	if err := l.Error(); err != nil {
		return err
	}
	if l.Lag.IsEmpty() || l.Lag.Total() != 0 {
		return fmt.Errorf("import lag %d (empty %v)", l.Lag.Total(), l.Lag.IsEmpty())
	}
	return nil
}

func TestExportKeepsKeysHeadersAndOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	keys := []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "BTCUSDT-PERP"}
	ctx := streams.WithCorrelationID(t.Context(), "corr-1")
	f.publishEvents(ctx, t, keys, 25)
	f.run(t, f.config(Route{exportTopic, Export}))
	polltest.Until(t, "export caught up", func() error { return f.exportCaughtUp(t.Context(), DefaultName) })

	recs := f.kafkaRecords(t, exportTopic)
	if len(recs) != len(keys)*25 {
		t.Fatalf("%d records in Kafka, want %d", len(recs), len(keys)*25)
	}
	partitioner := kgo.StickyKeyPartitioner(nil).ForTopic(exportTopic)
	next := map[string]int{}
	seqs := map[string]bool{}
	for _, r := range recs {
		key := string(r.Key)
		var ev enginev1.EngineEvent
		if err := proto.Unmarshal(r.Value, &ev); err != nil {
			t.Fatalf("record payload: %v", err)
		}
		if want := fmt.Sprintf("%s-%d", key, next[key]); ev.GetEventId() != want {
			t.Fatalf("key %s: got %s, want %s (per-key order)", key, ev.GetEventId(), want)
		}
		next[key]++
		if p := partitioner.Partition(r, 3); int32(p) != r.Partition { //nolint:gosec // small
			t.Errorf("key %s in partition %d, murmur2 says %d", key, r.Partition, p)
		}
		for h, want := range map[string]string{
			streams.HeaderCEType:         string(ev.ProtoReflect().Descriptor().FullName()),
			streams.HeaderContentType:    streams.ContentTypeProtobuf,
			streams.HeaderCorrelationID:  "corr-1",
			streams.HeaderMsgID:          ev.GetEventId(),
			streams.HeaderCEPartitionKey: key,
			HeaderNatsStream:             streams.StreamName(exportTopic),
			streams.HeaderOrigin:         OriginNATS,
		} {
			if got := header(r, h); got != want {
				t.Errorf("record %s: header %s = %q, want %q", ev.GetEventId(), h, got, want)
			}
		}
		seq := header(r, HeaderNatsSequence)
		if seqs[seq] {
			t.Errorf("sequence %s exported twice", seq)
		}
		seqs[seq] = true
	}
}

func TestImportStoresEachRecordOnceWithItsKeyAndHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	keys := []string{"BTCUSDT", "ETHUSDT", "SOLUSDT"}
	reg := prometheus.NewRegistry()
	cfg := f.config(Route{importTopic, Import})
	cfg.Metrics = reg
	b, _ := f.run(t, cfg)
	f.produceCommands(t, keys, 0, 20)
	polltest.Until(t, "import caught up", func() error {
		if err := f.importCaughtUp(t.Context(), DefaultName); err != nil {
			return err
		}
		if n := len(f.streamMessages(t, importTopic)); n < 60 {
			return fmt.Errorf("%d stored", n)
		}
		return nil
	})
	msgs := f.streamMessages(t, importTopic)
	if len(msgs) != 60 {
		t.Fatalf("%d messages stored, want 60", len(msgs))
	}
	next := map[string]int{}
	for _, m := range msgs {
		var cmd enginev1.OrderCommand
		if err := proto.Unmarshal(m.Data, &cmd); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%s-%d", m.Key, next[m.Key]); cmd.GetCommandId() != want {
			t.Fatalf("key %s: got %s, want %s", m.Key, cmd.GetCommandId(), want)
		}
		next[m.Key]++
		id := fmt.Sprintf("kafka/%s/%s/%s", importTopic, m.Header.Get(HeaderKafkaPartition), m.Header.Get(HeaderKafkaOffset))
		if m.Subject != importTopic+"."+m.Key || m.Header.Get(streams.HeaderMsgID) != id ||
			m.Header.Get(streams.HeaderCorrelationID) != "corr-"+m.Key || m.Header.Get(streams.HeaderOrigin) != OriginKafka ||
			m.Header.Get(streams.HeaderCEType) != string(cmd.ProtoReflect().Descriptor().FullName()) {
			t.Errorf("message %d: subject %s, headers %v", m.Sequence, m.Subject, m.Header)
		}
	}
	if n := testutil.ToFloat64(b.metrics.messages.WithLabelValues(importTopic, "import")); n != 60 {
		t.Errorf("tradex_kafka_bridge_messages_total{import} = %v, want 60", n)
	}
	if n, err := testutil.GatherAndCount(reg, "tradex_kafka_bridge_messages_total"); err != nil || n != 1 {
		t.Errorf("registered series of tradex_kafka_bridge_messages_total: %d, %v", n, err)
	}
}

func TestBothDirectionsDoNotLoop(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	b, _ := f.run(t, f.config(Route{importTopic, Both}))
	// Ten commands published on the JetStream side, ten produced on Kafka.
	for i := range 10 {
		if _, err := f.pub.Publish(t.Context(), importTopic, "BTCUSDT", &enginev1.OrderCommand{CommandId: "nats-" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	f.produceCommands(t, []string{"ETHUSDT"}, 0, 10)
	// Each side sees the other's ten come back and skips them.
	polltest.Until(t, "both sides skipped the other's", func() error {
		exp := testutil.ToFloat64(b.metrics.skipped.WithLabelValues(importTopic, "export", "origin"))
		imp := testutil.ToFloat64(b.metrics.skipped.WithLabelValues(importTopic, "import", "origin"))
		if exp != 10 || imp != 10 {
			return fmt.Errorf("skipped: export %v, import %v", exp, imp)
		}
		return nil
	})
	if n := f.kafkaCount(t, importTopic); n != 20 {
		t.Errorf("Kafka holds %d records, want 20 (10 exported + 10 produced)", n)
	}
	if n := len(f.streamMessages(t, importTopic)); n != 20 {
		t.Errorf("the stream holds %d messages, want 20 (10 published + 10 imported)", n)
	}
}

func TestBadRecordsGoToTheDLQWithTheirReason(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := commandRecord(t, "BTCUSDT", 1)
	bad := map[string]*kgo.Record{
		"key":          {Topic: importTopic, Key: []byte("BTC.USDT"), Value: good.Value},
		"no key":       {Topic: importTopic, Value: good.Value},
		"payload":      {Topic: importTopic, Key: []byte("BTCUSDT"), Value: []byte{0xff, 0xff, 0xff}},
		"ce-type":      {Topic: importTopic, Key: []byte("BTCUSDT"), Value: good.Value, Headers: []kgo.RecordHeader{{Key: "ce-type", Value: []byte("tradex.engine.v1.EngineEvent")}}},
		"content type": {Topic: importTopic, Key: []byte("BTCUSDT"), Value: []byte(`{}`), Headers: []kgo.RecordHeader{{Key: "Content-Type", Value: []byte("application/json")}}},
		"header":       {Topic: importTopic, Key: []byte("BTCUSDT"), Value: good.Value, Headers: []kgo.RecordHeader{{Key: "X-Note", Value: []byte("a\r\nNats-Expected-Stream: x")}}},
	}
	reasons := map[string]string{
		"key": "key", "no key": "key", "payload": "payload is not a tradex.engine.v1.OrderCommand",
		"ce-type": "ce-type", "content type": "content type", "header": "header X-Note",
	}
	var recs []*kgo.Record
	for _, name := range slices.Sorted(maps.Keys(bad)) {
		r := bad[name]
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: "X-Case", Value: []byte(name)})
		recs = append(recs, r)
	}
	recs = append(recs, good)
	f.produce(t, recs...)
	f.run(t, f.config(Route{importTopic, Import}))
	polltest.Until(t, "import caught up", func() error {
		letters, err := f.client.DLQ().List(t.Context(), importTopic, streams.DLQFilter{})
		switch {
		case err != nil:
			return err
		case len(letters) < len(bad):
			return fmt.Errorf("%d dead letters", len(letters))
		case len(f.streamMessages(t, importTopic)) < 1:
			return errors.New("the good record is not stored")
		}
		return f.importCaughtUp(t.Context(), DefaultName)
	})

	if msgs := f.streamMessages(t, importTopic); len(msgs) != 1 || msgs[0].Key != "BTCUSDT" {
		t.Fatalf("stored %d messages, want only the good one", len(msgs))
	}
	letters, err := f.client.DLQ().List(t.Context(), importTopic, streams.DLQFilter{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range letters {
		got[l.Header.Get("X-Case")] = l.Reason
	}
	for name, want := range reasons {
		if want == "" || !strings.Contains(strings.ToLower(got[name]), strings.ToLower(want)) {
			t.Errorf("case %s: reason %q, want it to name %q", name, got[name], want)
		}
	}
	if len(letters) != len(bad) {
		t.Errorf("%d dead letters, want %d", len(letters), len(bad))
	}
}

// TestCrashesYieldEveryMessageOnce kills the bridge at each point between a
// write and its ack or commit, several times, and restarts it: every
// message is downstream exactly once. The streams' duplicate window is
// shortened, so the import's own look-up (not JetStream's window) is what
// keeps a replay from being stored twice.
func TestCrashesYieldEveryMessageOnce(t *testing.T) {
	t.Parallel()
	atomicBatches := storeAtomic
	for _, c := range []struct {
		point string
		store *int // how imports are stored; nil: as measured
	}{
		{crashExportProduced, nil}, {crashExportAcked, nil},
		{crashImportStored, nil}, {crashImportPartly, nil},
		{crashImportStored, &atomicBatches}, {crashImportPartly, &atomicBatches},
	} {
		point := c.point
		name := point
		if c.store != nil {
			name += " (atomic batches)"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, streams.WithDuplicateWindow(100*time.Millisecond))
			keys := []string{"BTCUSDT", "ETHUSDT", "SOLUSDT"}
			f.publishEvents(t.Context(), t, keys, 40)
			f.produceCommands(t, keys, 0, 40)
			routes := []Route{{exportTopic, Export}, {importTopic, Import}}
			for crash := range 3 {
				// Fresh work each round, so that a round reaches its crash
				// point whatever the rounds before left stored.
				round := []string{fmt.Sprintf("R%dUSDT", crash)}
				f.publishEvents(t.Context(), t, round, 32)
				f.produceCommands(t, round, 0, 32)
				var calls atomic.Int64
				cfg := f.config(routes...)
				cfg.Batch, cfg.storeWay = 16, c.store
				cfg.crash = func(p string) error {
					if p == point && calls.Add(1) == int64(2+crash) {
						return errCrash
					}
					return nil
				}
				if err := f.runUntilCrash(t, cfg); !errors.Is(err, errCrash) {
					t.Fatalf("Run: %v, want the crash at %s", err, point)
				}
				if crash == 1 { // more arrives while the bridge is down
					f.publishEvents(t.Context(), t, []string{"XRPUSDT"}, 10)
					f.produceCommands(t, []string{"XRPUSDT"}, 0, 10)
				}
			}
			cfg := f.config(routes...)
			cfg.storeWay = c.store
			f.run(t, cfg)
			f.checkBothWays(t, 130+3*32, 130+3*32)
		})
	}
}

func checkOnce(t *testing.T, what string, seen map[string]int, want int) {
	t.Helper()
	if len(seen) != want {
		t.Errorf("%s: %d distinct messages, want %d", what, len(seen), want)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s: %s %d times", what, id, n)
		}
	}
}

func TestTwoBridgesDoNotDuplicate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	keys := []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"}
	routes := []Route{{exportTopic, Export}, {importTopic, Import}}
	f.run(t, f.config(routes...))
	f.run(t, f.config(routes...))
	f.publishEvents(t.Context(), t, keys, 50)
	f.produceCommands(t, keys, 0, 50)
	f.checkBothWays(t, 200, 200)
}
