// Package kafkabridge carries catalog topics between JetStream and Kafka,
// so that teams on Kafka keep their producers and consumers unchanged.
//
// Per topic a Route says the direction: Export (JetStream -> Kafka),
// Import (Kafka -> JetStream) or Both. The Kafka topic has the catalog
// topic's name, the Kafka key is the partition key (the subject's last
// token), headers cross both ways, and payloads pass unchanged.
//
// Guarantees, each with its test:
//   - Export: one durable JetStream consumer per topic shared by every
//     replica and pinned to one of them at a time (a priority group), so
//     replicas never write the same message and per-key order holds;
//     Kafka's murmur2 partitioner on the key; an idempotent producer with
//     acks from all in-sync replicas; a JetStream message is acknowledged
//     only after Kafka acknowledged its record. A message JetStream
//     redelivers (the bridge stopped between the two) is first looked up
//     in the tail of its Kafka partition (by the X-Nats-Stream and
//     X-Nats-Sequence headers every exported record carries) and skipped
//     when it is there.
//   - Import: a Kafka consumer group; record -> subject "<topic>.<key>"
//     with Nats-Msg-Id "kafka/<topic>/<partition>/<offset>"; offsets
//     committed only after JetStream acknowledged every record before
//     them. After an assignment (a start, a rebalance) the first records of
//     each partition are looked up in the stream by that message id, so a
//     replay is stored once even past the duplicate window. A record that
//     cannot be stored (a key that is no subject token, a payload that is
//     not the topic's message) goes to dlq.<topic> with its reason.
//   - Both directions on one topic never loop: exported records carry
//     X-Origin "nats" and are not imported; imported messages carry
//     X-Origin "kafka" and are not exported.
package kafkabridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/tradex-mesh/tradex/streams"
	"github.com/tradex-mesh/tradex/streams/schemaregistry"
)

// Headers the bridge sets.
const (
	// HeaderNatsStream and HeaderNatsSequence name the JetStream message an
	// exported record came from.
	HeaderNatsStream   = "X-Nats-Stream"
	HeaderNatsSequence = "X-Nats-Sequence"
	// HeaderKafkaPartition and HeaderKafkaOffset name the Kafka record an
	// imported message came from.
	HeaderKafkaPartition = "X-Kafka-Partition"
	HeaderKafkaOffset    = "X-Kafka-Offset"
	// OriginNATS and OriginKafka are the values of streams.HeaderOrigin on
	// bridged messages.
	OriginNATS  = "nats"
	OriginKafka = "kafka"
)

// Bridge carries the routed topics both ways until its Run ends.
type Bridge struct {
	cfg     Config
	client  *streams.Client
	metrics *metrics
	// schemas gives the Confluent schema ids (set by Run when imports or
	// exports may need them).
	schemas schemaregistry.Source
}

// New checks cfg against client's catalog.
func New(client *streams.Client, cfg Config) (*Bridge, error) {
	cfg = cfg.withDefaults()
	if err := cfg.check(client.Catalog()); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("kafkabridge: metrics: %w", err)
	}
	return &Bridge{cfg: cfg, client: client, metrics: m}, nil
}

// Run bridges until ctx ends (then it returns nil) or a failure it cannot
// ride out. Outages of Kafka or NATS are waited out: it retries with a
// backoff and goes on where it stopped.
func (b *Bridge) Run(ctx context.Context) error {
	if err := b.ensureTopics(ctx); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	if err := b.openSchemas(gctx, g); err != nil {
		return err
	}
	for _, topic := range b.cfg.topics(Export) {
		g.Go(func() error { return b.runExport(gctx, topic) })
	}
	if topics := b.cfg.topics(Import); len(topics) > 0 {
		g.Go(func() error { return b.runImport(gctx, topics) })
	}
	err := g.Wait()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return nil
	}
	return err
}

// openSchemas sets b.schemas: Config.Schemas, else the platform's
// registry followed for as long as g runs. Exports in Confluent's format
// wait for the registry; otherwise it is only tried (imports use it for
// values that come in that format, and dead-letter them without it).
func (b *Bridge) openSchemas(ctx context.Context, g *errgroup.Group) error {
	if b.cfg.Schemas != nil {
		b.schemas = b.cfg.Schemas
		return nil
	}
	open := func(ctx context.Context) error {
		live, err := schemaregistry.Open(ctx, b.client.JetStream(), schemaregistry.WithLogger(b.cfg.Logger))
		if err != nil {
			return err
		}
		b.schemas = live
		g.Go(func() error { return live.Follow(ctx) })
		return nil
	}
	if b.cfg.WireFormat == WireConfluent {
		return streams.RetryStart(ctx, b.cfg.Logger, "kafka bridge: open the schema registry", open)
	}
	if err := open(ctx); err != nil {
		b.cfg.Logger.InfoContext(ctx, "kafka bridge: no schema registry: values in Confluent's wire format will be dead-lettered", "err", err)
	}
	return nil
}

// kafkaOptions are the options every Kafka client of the bridge uses.
func (b *Bridge) kafkaOptions() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(b.cfg.Brokers...),
		kgo.ClientID(b.cfg.Name),
		kgo.RetryBackoffFn(func(int) time.Duration { return 250 * time.Millisecond }),
	}
	if b.cfg.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(b.cfg.TLS.Clone()))
	}
	if b.cfg.SASL != nil {
		opts = append(opts, kgo.SASL(b.cfg.SASL))
	}
	return opts
}

// ensureTopics creates the routed topics missing on the Kafka side,
// retrying while Kafka cannot be reached.
func (b *Bridge) ensureTopics(ctx context.Context) error {
	cl, err := kgo.NewClient(b.kafkaOptions()...)
	if err != nil {
		return fmt.Errorf("kafkabridge: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics := make([]string, 0, len(b.cfg.Routes))
	for _, r := range b.cfg.Routes {
		topics = append(topics, r.Topic)
	}
	return streams.RetryStart(ctx, b.cfg.Logger, "kafka bridge: create Kafka topics", func(ctx context.Context) error {
		res, err := adm.CreateTopics(ctx, b.cfg.Partitions, b.cfg.ReplicationFactor, nil, topics...)
		if err != nil {
			return err
		}
		for _, t := range res.Sorted() {
			if t.Err != nil && !errors.Is(t.Err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("topic %s: %w", t.Topic, t.Err)
			}
		}
		return nil
	})
}

// keepRunning runs fn, the direction's work on topics, until ctx ends
// (then it returns nil), starting over with a backoff after each failure,
// which it counts and logs; a test's crash ends it with errCrash.
func (b *Bridge) keepRunning(ctx context.Context, direction string, topics []string, fn func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := fn(ctx)
		switch {
		case errors.Is(err, errCrash):
			return err
		case ctx.Err() != nil:
			return nil
		}
		for _, t := range topics {
			b.metrics.errs.WithLabelValues(t, direction).Inc()
		}
		b.cfg.Logger.WarnContext(ctx, "kafka bridge: failed, starting over", "direction", direction, "topics", topics, "err", err)
		if err := streams.Sleep(ctx, streams.Backoff(min(attempt, 6))); err != nil {
			return nil
		}
	}
}

// crash asks the test hook whether to stop at point.
func (b *Bridge) crash(point string) error {
	if b.cfg.crash == nil {
		return nil
	}
	return b.cfg.crash(point)
}
