package kafkabridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/streams"
)

const (
	// benchMsgs is how many messages one op of every case moves: 20 full
	// fetches of the default batch (1000). A Fetch waits for a full batch
	// or its max wait (1 s in the export), so a last, partial batch would
	// add a second to the raw consumer and the export alike.
	benchMsgs = 20 * 1000
	// benchKeyCount is how many partition keys (instruments) the messages
	// are spread over, round robin.
	benchKeyCount = 16
	// benchTimeout bounds one case.
	benchTimeout = 5 * time.Minute
	// benchPoll is the pause between two looks at a condition that ends an op.
	benchPoll = time.Millisecond
)

// BenchmarkKafkaBridge moves benchMsgs messages per op through the bridge each
// way and through the two raw clients it is built on, in the same process
// against the same kind of embedded JetStream and in-process Kafka (kfake):
//
//   - case=raw-produce: the records the export writes (same keys, payloads and
//     headers), produced with the export's producer settings (idempotent,
//     acks from all in-sync replicas, sticky key partitioner) by ProduceSync in
//     batches of Config.Batch, as export.go does;
//   - case=raw-consume: a durable pull consumer with the export's settings
//     taking the stored messages by Fetch(Config.Batch) and acking each,
//     until the server holds every ack;
//   - case=raw-consume-pinned and case=raw-relay-pinned (diagnostics, not
//     baselines): raw-consume with the export's pinned priority group, and
//     that writing each fetched batch to Kafka with the raw producer before
//     acking it, one batch at a time, as the export does;
//   - case=export: the messages stored before the bridge starts; an op runs
//     from New and Run until the export consumer has nothing pending or
//     unacknowledged and Kafka holds every record;
//   - case=import: the records produced to Kafka before the bridge starts; an
//     op runs from New and Run until the group's lag is 0 and the stream
//     holds every message.
//
// Every op starts on an empty stream and a fresh Kafka. The bridge cases also
// report start-ms (from Run to the first message carried: topics created,
// consumer or group joined, first batch through) and steady-msgs/s (the rate
// from then on).
//
// Each case runs on a server that fsyncs every write before acking it
// (fsync=always, embedded.SyncAlways: the default of embedded and of the
// tests) and on one with JetStream's background fsync (fsync=periodic).
func BenchmarkKafkaBridge(b *testing.B) {
	for _, sync := range []struct {
		name   string
		policy embedded.SyncPolicy
	}{{"always", embedded.SyncAlways}, {"periodic", embedded.SyncPeriodic}} {
		b.Run("fsync="+sync.name, func(b *testing.B) {
			env := newBenchEnv(b, sync.policy)
			b.Run("case=raw-produce", env.benchRawProduce)
			b.Run("case=raw-consume", env.benchRawConsume)
			b.Run("case=raw-consume-pinned", env.benchRawConsumePinned)
			b.Run("case=raw-relay-pinned", env.benchRawRelayPinned)
			b.Run("case=export", env.benchExport)
			b.Run("case=import", env.benchImport)
			b.Run("case=raw-fetch", env.benchRawFetch)
			b.Run("case=raw-publish-atomic", func(b *testing.B) { env.runRawPublish(b, true) })
			b.Run("case=raw-publish-async", func(b *testing.B) { env.runRawPublish(b, false) })
		})
	}
}

// benchEnv is an embedded JetStream with the catalog's streams, shared by
// the cases; each op gets a fresh fixture (emptied streams, new kfake).
type benchEnv struct {
	js   jetstream.JetStream
	keys []string
	log  *slog.Logger
	// batch is the bridge's default Config.Batch, used by every case.
	batch int
}

func newBenchEnv(b *testing.B, sync embedded.SyncPolicy) *benchEnv {
	keys := make([]string, benchKeyCount)
	for i := range keys {
		keys[i] = fmt.Sprintf("SYM%02dUSDT", i)
	}
	return &benchEnv{
		js:    embeddedtest.New(b, embeddedtest.WithSync(sync)).JetStream(),
		keys:  keys,
		log:   slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		batch: Config{}.withDefaults().Batch,
	}
}

// fixture empties the catalog's streams and starts a new kfake; close
// stops it. It is the bench's counterpart of newFixture, which takes a
// *testing.T.
func (e *benchEnv) fixture(ctx context.Context, b *testing.B) (f *fixture, closeFn func()) {
	b.Helper()
	for _, topic := range []string{exportTopic, importTopic} {
		if err := e.js.DeleteStream(ctx, streams.StreamName(topic)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			b.Fatalf("delete stream: %v", err)
		}
	}
	cat := streams.DefaultCatalog()
	if err := streams.EnsureStreams(ctx, e.js, cat); err != nil {
		b.Fatalf("EnsureStreams: %v", err)
	}
	kafka, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatalf("kfake: %v", err)
	}
	kcl, err := kgo.NewClient(kgo.SeedBrokers(kafka.ListenAddrs()...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		kafka.Close()
		b.Fatal(err)
	}
	f = &fixture{client: streams.NewClient(e.js, cat), js: e.js, pub: streams.NewPublisher(e.js, cat), kafka: kafka, kcl: kcl, log: e.log}
	return f, func() { kcl.Close(); kafka.Close() }
}

// config is the bridge's configuration in the benchmark: the defaults
// (6 partitions, batch 1000, ack wait 30 s, pinned TTL 10 s) on the
// fixture's Kafka, not the tests' shortened timings.
func (e *benchEnv) config(f *fixture, routes ...Route) Config {
	cfg := f.config(routes...)
	cfg.Partitions, cfg.Batch, cfg.AckWait, cfg.PinnedTTL = 0, 0, 0, 0
	return cfg.withDefaults()
}

// benchEvent is an engine event of the size the engine writes: a trade
// with the two book levels it changed.
func benchEvent(key string, i int) *enginev1.EngineEvent {
	id := fmt.Sprintf("%s:%d:0", key, i)
	return &enginev1.EngineEvent{
		EventId: id, InstrumentId: key, InputSequence: uint64(i) + 1, Sequence: uint64(i) + 1, //nolint:gosec // a small index
		EngineTime: timestamppb.New(time.Date(2026, 12, 3, 5, 0, 0, i, time.UTC)),
		CommandId:  fmt.Sprintf("ord-%08d", i),
		BookChanges: []*enginev1.BookLevelChange{
			{Side: commonv1.Side_SIDE_SELL, Price: "50012.50", Quantity: "0.75000000"},
			{Side: commonv1.Side_SIDE_BUY, Price: "50010.00", Quantity: "3.20000000"},
		},
		Event: &enginev1.EngineEvent_Trade{Trade: &enginev1.Trade{
			TradeId: id, Price: "50012.50", Quantity: "0.25000000", QuoteQuantity: "12503.1250000000",
			TakerOrderId: fmt.Sprintf("ord-%08d", i), TakerAccountId: "acct-000042", TakerSide: commonv1.Side_SIDE_BUY,
			TakerRemainingQuantity: "0", MakerOrderId: fmt.Sprintf("ord-%08d", i/2), MakerAccountId: "acct-000007",
		}},
	}
}

// publishBacklog stores benchMsgs engine events on exportTopic, keys round
// robin, with the publisher's headers and a message id each (in atomic
// batches: one fsync per batch keeps the set-up short under fsync=always).
func (e *benchEnv) publishBacklog(ctx context.Context, b *testing.B, f *fixture) {
	b.Helper()
	ctx = streams.WithCorrelationID(ctx, "bench")
	records := make([]streams.Record, 0, 1000)
	for i := range benchMsgs {
		k := e.keys[i%len(e.keys)]
		records = append(records, streams.Record{Topic: exportTopic, Key: k, Msg: benchEvent(k, i),
			Opts: []streams.PublishOption{streams.WithMsgID(fmt.Sprintf("%s:%d:0", k, i))}})
		if len(records) == cap(records) || i == benchMsgs-1 {
			if _, _, err := f.pub.PublishAtomic(ctx, records); err != nil {
				b.Fatalf("publish: %v", err)
			}
			records = records[:0]
		}
	}
}

// exportRecords reads the stored backlog and builds each message's Kafka
// record as the export does (exporter.record).
func (e *benchEnv) exportRecords(ctx context.Context, b *testing.B, f *fixture) []*kgo.Record {
	b.Helper()
	cons, err := f.js.OrderedConsumer(ctx, streams.StreamName(exportTopic), jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	ex := &exporter{b: &Bridge{}, topic: exportTopic, stream: streams.StreamName(exportTopic)}
	recs := make([]*kgo.Record, 0, benchMsgs)
	for len(recs) < benchMsgs {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		for m := range batch.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				b.Fatal(err)
			}
			rec, err := ex.record(m, meta.Sequence.Stream)
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, rec)
		}
		if err := batch.Error(); err != nil && len(recs) < benchMsgs {
			b.Fatalf("read the backlog: %d of %d: %v", len(recs), benchMsgs, err)
		}
	}
	return recs
}

// createTopic makes topic in f's Kafka with the bridge's partition count.
func createTopic(ctx context.Context, b *testing.B, f *fixture, cfg Config, topic string) {
	b.Helper()
	res, err := kadm.NewClient(f.kcl).CreateTopics(ctx, cfg.Partitions, 1, nil, topic)
	if err != nil {
		b.Fatalf("create topic: %v", err)
	}
	if err := res.Error(); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		b.Fatalf("create topic: %v", err)
	}
}

// benchOp is one op of a case on a fresh fixture and its route's config:
// its set-up runs with the meter stopped; it resumes the meter for the
// part it times and stops it before its checks.
type benchOp func(ctx context.Context, b *testing.B, f *fixture, cfg Config, meter *rateMeter)

// runOps runs op once per iteration of b.Loop and reports the meter.
func (e *benchEnv) runOps(b *testing.B, route Route, op benchOp) {
	ctx, cancel := context.WithTimeout(b.Context(), benchTimeout)
	defer cancel()
	meter := newRateMeter(b)
	for b.Loop() {
		meter.stop(b)
		f, closeFn := e.fixture(ctx, b)
		op(ctx, b, f, e.config(f, route), meter)
		closeFn()
		meter.resume(b)
	}
	meter.report(b)
}

// benchRawProduce produces the export's records with the export's producer
// settings, ProduceSync per Config.Batch records.
func (e *benchEnv) benchRawProduce(b *testing.B) {
	ctx, cancel := context.WithTimeout(b.Context(), benchTimeout)
	defer cancel()
	f, closeFn := e.fixture(ctx, b)
	e.publishBacklog(ctx, b, f)
	template := e.exportRecords(ctx, b, f)
	closeFn()
	e.runOps(b, Route{exportTopic, Export}, func(ctx context.Context, b *testing.B, f *fixture, cfg Config, meter *rateMeter) {
		createTopic(ctx, b, f, cfg, exportTopic)
		recs := make([]*kgo.Record, len(template))
		for i, r := range template {
			recs[i] = &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
		}
		meter.resume(b)
		producer := newProducer(b, cfg)
		for from := 0; from < len(recs); from += cfg.Batch {
			if err := producer.ProduceSync(ctx, recs[from:min(from+cfg.Batch, len(recs))]...).FirstErr(); err != nil {
				b.Fatalf("produce: %v", err)
			}
		}
		meter.stop(b)
		producer.Close()
		if n := kafkaEnd(ctx, b, f, exportTopic); n != benchMsgs {
			b.Fatalf("Kafka holds %d records, want %d", n, benchMsgs)
		}
	})
}

// benchRawConsume drains the stored backlog with a durable pull consumer
// set up as the export's, without its priority group.
func (e *benchEnv) benchRawConsume(b *testing.B) { e.runRawConsume(b, false, false) }

// benchRawConsumePinned is benchRawConsume with the export's pinned
// priority group: a diagnostic, not a baseline.
func (e *benchEnv) benchRawConsumePinned(b *testing.B) { e.runRawConsume(b, true, false) }

// benchRawRelayPinned is benchRawConsumePinned writing each fetched batch
// to Kafka before acking it, one batch at a time as the export does:
// records built by exporter.record, the raw producer of benchRawProduce,
// ProduceSync of the batch, then the acks. It has none of the export's
// origin and redelivery checks, metrics or start-up (topic creation,
// partition count): a diagnostic, not a baseline.
func (e *benchEnv) benchRawRelayPinned(b *testing.B) { e.runRawConsume(b, true, true) }

// runRawConsume drains the backlog by Fetch(Config.Batch) and Ack, with
// the export's priority group when pinned, writing each batch to Kafka
// before its acks when relay.
func (e *benchEnv) runRawConsume(b *testing.B, pinned, relay bool) {
	ex := &exporter{b: &Bridge{}, topic: exportTopic, stream: streams.StreamName(exportTopic)}
	e.runOps(b, Route{exportTopic, Export}, func(ctx context.Context, b *testing.B, f *fixture, cfg Config, meter *rateMeter) {
		e.publishBacklog(ctx, b, f)
		if relay {
			createTopic(ctx, b, f, cfg, exportTopic)
		}
		meter.resume(b)
		var producer *kgo.Client
		if relay {
			producer = newProducer(b, cfg)
		}
		st, err := f.js.Stream(ctx, streams.StreamName(exportTopic))
		if err != nil {
			b.Fatal(err)
		}
		cc := jetstream.ConsumerConfig{
			Durable:       cfg.Name + "-export",
			FilterSubject: exportTopic + ".>",
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			MaxDeliver:    -1,
			MaxAckPending: 4 * cfg.Batch,
		}
		fetchOpts := []jetstream.FetchOpt{jetstream.FetchMaxWait(time.Second)}
		if pinned {
			cc.PriorityPolicy, cc.PriorityGroups, cc.PinnedTTL = jetstream.PriorityPolicyPinned, []string{priorityGroup}, cfg.PinnedTTL
			fetchOpts = append(fetchOpts, jetstream.FetchPriorityGroup(priorityGroup))
		}
		cons, err := st.CreateOrUpdateConsumer(ctx, cc)
		if err != nil {
			b.Fatal(err)
		}
		msgs := make([]jetstream.Msg, 0, cfg.Batch)
		recs := make([]*kgo.Record, 0, cfg.Batch)
		for got := 0; got < benchMsgs; {
			batch, err := cons.Fetch(cfg.Batch, fetchOpts...)
			if err != nil {
				b.Fatal(err)
			}
			msgs, recs = msgs[:0], recs[:0]
			for m := range batch.Messages() {
				msgs = append(msgs, m)
			}
			if relay && len(msgs) > 0 {
				for _, m := range msgs {
					meta, err := m.Metadata()
					if err != nil {
						b.Fatal(err)
					}
					rec, err := ex.record(m, meta.Sequence.Stream)
					if err != nil {
						b.Fatal(err)
					}
					recs = append(recs, rec)
				}
				if err := producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
					b.Fatalf("produce: %v", err)
				}
			}
			for _, m := range msgs {
				if err := m.Ack(); err != nil {
					b.Fatal(err)
				}
			}
			got += len(msgs)
		}
		waitFor(ctx, b, "raw consumer acked", func() error { return f.exportCaughtUp(ctx, cfg.Name) })
		meter.stop(b)
		if relay {
			producer.Close()
			if n := kafkaEnd(ctx, b, f, exportTopic); n != benchMsgs {
				b.Fatalf("Kafka holds %d records, want %d", n, benchMsgs)
			}
		}
	})
}

// newProducer is a Kafka producer with the export's settings: idempotent
// (franz-go's default), acks from all in-sync replicas, murmur2 on the key.
func newProducer(b *testing.B, cfg Config) *kgo.Client {
	b.Helper()
	producer, err := kgo.NewClient(append((&Bridge{cfg: cfg}).kafkaOptions(),
		kgo.DefaultProduceTopic(exportTopic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	)...)
	if err != nil {
		b.Fatal(err)
	}
	return producer
}

// benchExport starts a bridge on a stored backlog and waits until it has
// carried all of it.
func (e *benchEnv) benchExport(b *testing.B) {
	e.runOps(b, Route{exportTopic, Export}, func(ctx context.Context, b *testing.B, f *fixture, cfg Config, meter *rateMeter) {
		e.publishBacklog(ctx, b, f)
		meter.resume(b)
		started := time.Now()
		bridge, stop := runBench(ctx, b, f, cfg)
		carried := func() int {
			return int(testutil.ToFloat64(bridge.metrics.messages.WithLabelValues(exportTopic, "export")))
		}
		meter.first(ctx, b, started, carried)
		waitFor(ctx, b, "export caught up", func() error {
			if n := carried(); n < benchMsgs {
				return fmt.Errorf("%d exported", n)
			}
			if err := f.exportCaughtUp(ctx, cfg.Name); err != nil {
				return err
			}
			if n := kafkaEnd(ctx, b, f, exportTopic); n != benchMsgs {
				return fmt.Errorf("Kafka holds %d records", n)
			}
			return nil
		})
		meter.last()
		meter.stop(b)
		if err := stop(); err != nil {
			b.Fatalf("Run: %v", err)
		}
	})
}

// benchImport starts a bridge on records already in Kafka and waits until
// it has stored and committed all of them.
func (e *benchEnv) benchImport(b *testing.B) {
	e.runOps(b, Route{importTopic, Import}, func(ctx context.Context, b *testing.B, f *fixture, cfg Config, meter *rateMeter) {
		createTopic(ctx, b, f, cfg, importTopic)
		e.produceCommands(ctx, b, f, cfg.Batch)
		meter.resume(b)
		started := time.Now()
		bridge, stop := runBench(ctx, b, f, cfg)
		carried := func() int {
			return int(testutil.ToFloat64(bridge.metrics.messages.WithLabelValues(importTopic, "import")))
		}
		meter.first(ctx, b, started, carried)
		waitFor(ctx, b, "import caught up", func() error {
			if n := carried(); n < benchMsgs {
				return fmt.Errorf("%d imported", n)
			}
			if err := f.importCaughtUp(ctx, cfg.Name); err != nil {
				return err
			}
			st, err := f.js.Stream(ctx, streams.StreamName(importTopic))
			if err != nil {
				return err
			}
			if n := st.CachedInfo().State.Msgs; n != benchMsgs {
				return fmt.Errorf("the stream holds %d messages", n)
			}
			return nil
		})
		meter.last()
		meter.stop(b)
		if err := stop(); err != nil {
			b.Fatalf("Run: %v", err)
		}
	})
}

// produceCommands writes benchMsgs order commands to importTopic in
// Kafka (commandRecords), batch records per ProduceSync.
func (e *benchEnv) produceCommands(ctx context.Context, b *testing.B, f *fixture, batch int) {
	b.Helper()
	recs := e.commandRecords(b)
	for from := 0; from < len(recs); from += batch {
		if err := f.kcl.ProduceSync(ctx, recs[from:min(from+batch, len(recs))]...).FirstErr(); err != nil {
			b.Fatalf("produce: %v", err)
		}
	}
}

// commandRecords are benchMsgs order commands for importTopic, keys round
// robin, with the headers a Kafka producer of the topic would set.
func (e *benchEnv) commandRecords(b *testing.B) []*kgo.Record {
	b.Helper()
	recs := make([]*kgo.Record, 0, benchMsgs)
	for i := range benchMsgs {
		k := e.keys[i%len(e.keys)]
		value, err := proto.Marshal(&enginev1.OrderCommand{
			CommandId: fmt.Sprintf("ord-%08d", i), InstrumentId: k,
			SentAt: timestamppb.New(time.Date(2026, 12, 3, 5, 0, 0, i, time.UTC)),
			Command: &enginev1.OrderCommand_Submit{Submit: &enginev1.SubmitOrder{
				OrderId: fmt.Sprintf("ord-%08d", i), AccountId: "acct-000042", Side: commonv1.Side_SIDE_BUY,
				Type: commonv1.OrderType_ORDER_TYPE_LIMIT, TimeInForce: commonv1.TimeInForce_TIME_IN_FORCE_GTC,
				Price: "50012.50", Quantity: "0.25000000", PriceScale: 2, QuantityScale: 8,
			}},
		})
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: importTopic, Key: []byte(k), Value: value, Headers: []kgo.RecordHeader{
			{Key: streams.HeaderContentType, Value: []byte(streams.ContentTypeProtobuf)},
			{Key: streams.HeaderCEType, Value: []byte("tradex.engine.v1.OrderCommand")},
			{Key: streams.HeaderCorrelationID, Value: []byte(fmt.Sprintf("corr-%d", i))},
		}})
	}
	return recs
}

// benchRawFetch consumes the records of benchImport with a franz-go
// consumer group set up as the import's (no auto commit, blocking
// rebalances on poll), PollRecords(Config.Batch) and CommitRecords of
// each poll, until it has them all: the import's Kafka half.
func (e *benchEnv) benchRawFetch(b *testing.B) {
	e.runOps(b, Route{importTopic, Import}, func(ctx context.Context, b *testing.B, f *fixture, cfg Config, meter *rateMeter) {
		createTopic(ctx, b, f, cfg, importTopic)
		e.produceCommands(ctx, b, f, cfg.Batch)
		meter.resume(b)
		cl, err := kgo.NewClient(append((&Bridge{cfg: cfg}).kafkaOptions(),
			kgo.ConsumerGroup(cfg.Name), kgo.ConsumeTopics(importTopic), kgo.DisableAutoCommit(),
			kgo.BlockRebalanceOnPoll(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		)...)
		if err != nil {
			b.Fatal(err)
		}
		for got := 0; got < benchMsgs; {
			fetches := cl.PollRecords(ctx, cfg.Batch)
			if err := fetches.Err0(); err != nil {
				b.Fatalf("poll: %v", err)
			}
			recs := fetches.Records()
			if err := cl.CommitRecords(ctx, recs...); err != nil {
				b.Fatalf("commit: %v", err)
			}
			cl.AllowRebalance()
			got += len(recs)
		}
		meter.stop(b)
		cl.Close()
	})
}

// runRawPublish stores the messages the import makes of benchImport's
// records (importer.message: subject, payload, headers, message id) with
// the raw clients, in atomic batches of Config.Batch
// (jetstreamext.PublishMsgBatch, one at a time) or async (PublishMsgAsync,
// nats.go's default window of 4,000), until JetStream acknowledged every
// one: the import's JetStream half, in each of the two ways it stores.
func (e *benchEnv) runRawPublish(b *testing.B, atomic bool) {
	template := e.commandRecords(b)
	e.runOps(b, Route{importTopic, Import}, func(ctx context.Context, b *testing.B, f *fixture, cfg Config, meter *rateMeter) {
		imp := &importer{b: &Bridge{client: f.client, cfg: cfg}, maxPayload: f.js.Conn().MaxPayload()}
		msgs := make([]*nats.Msg, len(template))
		for i, r := range template {
			rec := *r
			rec.Partition, rec.Offset, rec.Timestamp = int32(i)%cfg.Partitions, int64(i), time.Now()
			m, err := imp.message(&rec, importID(&rec))
			if err != nil {
				b.Fatal(err)
			}
			msgs[i] = m
		}
		meter.resume(b)
		if atomic {
			for from := 0; from < len(msgs); from += cfg.Batch {
				if _, err := jetstreamext.PublishMsgBatch(ctx, f.js, msgs[from:min(from+cfg.Batch, len(msgs))]); err != nil {
					b.Fatalf("atomic batch: %v", err)
				}
			}
		} else {
			futures := make([]jetstream.PubAckFuture, 0, len(msgs))
			for _, m := range msgs {
				fut, err := f.js.PublishMsgAsync(m, jetstream.WithStallWait(benchTimeout))
				if err != nil {
					b.Fatal(err)
				}
				futures = append(futures, fut)
			}
			for _, fut := range futures {
				select {
				case <-fut.Ok():
				case err := <-fut.Err():
					b.Fatalf("publish: %v", err)
				case <-ctx.Done():
					b.Fatal(ctx.Err())
				}
			}
		}
		meter.stop(b)
		st, err := f.js.Stream(ctx, streams.StreamName(importTopic))
		if err != nil {
			b.Fatal(err)
		}
		if n := st.CachedInfo().State.Msgs; n != benchMsgs {
			b.Fatalf("the stream holds %d messages, want %d", n, benchMsgs)
		}
	})
}

// runBench starts a bridge; stop ends it and returns Run's error. It is
// the bench's counterpart of fixture.run, which takes a *testing.T.
func runBench(ctx context.Context, b *testing.B, f *fixture, cfg Config) (bridge *Bridge, stop func() error) {
	b.Helper()
	bridge, err := New(f.client, cfg)
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- bridge.Run(ctx) }()
	return bridge, func() error { cancel(); return <-done }
}

// kafkaEnd is how many records topic holds (the sum of its end offsets).
func kafkaEnd(ctx context.Context, b *testing.B, f *fixture, topic string) int64 {
	b.Helper()
	ends, err := kadm.NewClient(f.kcl).ListEndOffsets(ctx, topic)
	if err != nil {
		b.Fatalf("end offsets: %v", err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// waitFor polls cond every benchPoll until it returns nil, failing the
// benchmark when ctx ends first.
func waitFor(ctx context.Context, b *testing.B, what string, cond func() error) {
	b.Helper()
	tick := time.NewTicker(benchPoll)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			b.Fatalf("%s: %v (last: %v)", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// rateMeter reports msgs/s over the measured time and cpu-ns/msg (the
// process's CPU, clients, bridge and both in-process servers, per
// message: time stolen by other tenants inflates wall time, not this).
// For the bridge cases it also splits each op at the first message
// carried: start-ms is the mean time from Run to then, steady-msgs/s the
// rate of the rest of the op.
type rateMeter struct {
	// cpu is the CPU time of the measured parts so far; cpuFrom when the
	// current one began.
	cpu, cpuFrom  time.Duration
	ops           int
	start, steady time.Duration
	steadyMsgs    int
	firstAt       time.Time
	firstCount    int
}

func newRateMeter(b *testing.B) *rateMeter { return &rateMeter{cpuFrom: cpuTime(b)} }

// stop stops the timer and the CPU count.
func (m *rateMeter) stop(b *testing.B) {
	b.StopTimer()
	m.cpu += cpuTime(b) - m.cpuFrom
}

// resume starts them again, after a GC: the garbage of the set-up is not
// collected in the measured part.
func (m *rateMeter) resume(b *testing.B) {
	runtime.GC()
	m.cpuFrom = cpuTime(b)
	b.StartTimer()
}

// first waits until carried is above 0 and notes when and how many.
func (m *rateMeter) first(ctx context.Context, b *testing.B, started time.Time, carried func() int) {
	b.Helper()
	waitFor(ctx, b, "first message carried", func() error {
		if m.firstCount = carried(); m.firstCount == 0 {
			return errors.New("none carried")
		}
		return nil
	})
	m.firstAt = time.Now()
	m.start += m.firstAt.Sub(started)
}

// last ends the steady part of an op.
func (m *rateMeter) last() {
	m.steady += time.Since(m.firstAt)
	m.steadyMsgs += benchMsgs - m.firstCount
	m.ops++
}

func (m *rateMeter) report(b *testing.B) {
	msgs := float64(b.N) * benchMsgs
	b.ReportMetric(msgs/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/msgs, "ns/msg")
	b.ReportMetric(float64(m.cpu.Nanoseconds())/msgs, "cpu-ns/msg")
	if m.ops > 0 {
		b.ReportMetric(float64(m.start.Milliseconds())/float64(m.ops), "start-ms")
		b.ReportMetric(float64(m.steadyMsgs)/m.steady.Seconds(), "steady-msgs/s")
	}
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
