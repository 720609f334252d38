// Package streamstest is the conformance suite of the event mesh: the
// behaviour every deployment of package streams (one embedded node, a
// cluster, an external NATS) must show. Run it from a test:
//
//	func TestConformance(t *testing.T) {
//		streamstest.Run(t, func(t *testing.T) streamstest.Env {
//			s := embeddedtest.New(t)
//			return streamstest.Env{JetStream: s.JetStream(), Connect: ...}
//		})
//	}
package streamstest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tradex-mesh/tradex/streams"
)

// Env is a broker to run the suite against.
type Env struct {
	// JetStream is the connection producers and checks use.
	JetStream jetstream.JetStream
	// Connect opens another, independent connection, closed at the end of
	// the test; the suite closes some itself to kill a consumer.
	Connect func(t *testing.T) (*nats.Conn, jetstream.JetStream)
	// Replicas is the replica count for streams (3 on a 3-node cluster).
	Replicas int
	// Patience multiplies how long a case waits for the broker before it
	// fails (0 is 1): a cluster's consumers and elections are slower on a
	// loaded machine. Only hang guards scale; what is asserted does not.
	Patience int
}

// Run runs every conformance case as a subtest, against one broker from
// newEnv. Each case uses topics of its own, so cases do not interfere.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	env := newEnv(t)
	if env.Replicas == 0 {
		env.Replicas = 1
	}
	cases := []struct {
		name string
		run  func(t *testing.T, s *suite)
	}{
		{"EnsureStreamsIsIdempotent", testEnsureIdempotent},
		{"ProfileConflictRefused", testProfileConflict},
		{"WrongTypeRejected", testWrongType},
		{"DuplicatePublishStoredOnce", testDuplicatePublish},
		{"HeadersAndContext", testHeadersAndContext},
		{"ExpectedLastSubjectSequence", testExpectedLastSubjectSequence},
		{"AtomicBatchAllOrNothing", testAtomicBatch},
		{"OrderPerKey", testOrderPerKey},
		{"RedeliveryAfterHandlerError", testRedeliveryAfterError},
		{"RedeliveryAfterConsumerDies", testRedeliveryAfterDeath},
		{"ResumeAfterConsumerDies", testResumeAfterDeath},
		{"DeadLetterAfterMaxDeliver", testDeadLetter},
		{"PermanentAndPanic", testPermanentAndPanic},
		{"RedriveBackToTopic", testRedrive},
		{"IdempotentHandlerRunsOnce", testIdempotentHandler},
		{"CompetingConsumers", testCompetingConsumers},
		{"DrainLosesNothing", testDrain},
		{"StartPositions", testStartPositions},
		{"RangeReadsOneKeyInOrder", testRange},
	}
	var n atomic.Int64
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			topic := fmt.Sprintf("conf.t%d.v1", n.Add(1))
			c.run(t, newSuite(t, env, topic))
		})
	}
}

// suite is one case's view of the broker: a catalog with its own topic
// (payload StringValue, financial) and a second topic of another type.
type suite struct {
	env       Env
	topic     string
	other     string
	catalog   *streams.Catalog
	publisher *streams.Publisher
}

func newSuite(t *testing.T, env Env, topic string) *suite {
	t.Helper()
	other := strings.Replace(topic, ".v1", "x.v1", 1)
	catalog, err := streams.NewCatalog(
		streams.Topic{Name: topic, Payload: &wrapperspb.StringValue{}, Key: "test key", Profile: streams.Financial},
		streams.Topic{Name: other, Payload: &wrapperspb.Int64Value{}, Key: "test key", Profile: streams.Financial},
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := streams.EnsureStreams(t.Context(), env.JetStream, catalog, streams.WithReplicas(env.Replicas)); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	return &suite{
		env: env, topic: topic, other: other, catalog: catalog,
		publisher: streams.NewPublisher(env.JetStream, catalog, streams.WithSource("streamstest")),
	}
}

// publish stores value under key and returns its sequence.
func (s *suite) publish(t *testing.T, key, value string, opts ...streams.PublishOption) uint64 {
	t.Helper()
	seq, err := s.publisher.Publish(t.Context(), s.topic, key, wrapperspb.String(value), opts...)
	if err != nil {
		t.Fatalf("publish %s/%s: %v", key, value, err)
	}
	return seq
}

// consume starts a consumer of the suite's topic, stopped at test end.
func (s *suite) consume(t *testing.T, js jetstream.JetStream, cfg streams.ConsumerConfig, h streams.Handler[*wrapperspb.StringValue]) *streams.Consumer {
	t.Helper()
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase, cfg.BackoffMax = time.Millisecond, 20*time.Millisecond
	}
	c, err := streams.Consume(t.Context(), streams.NewClient(js, s.catalog), s.topic, cfg, h)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return c
}

// stream returns the suite topic's stream.
func (s *suite) stream(t *testing.T, topic string) jetstream.Stream {
	t.Helper()
	st, err := s.env.JetStream.Stream(t.Context(), streams.StreamName(topic))
	if err != nil {
		t.Fatalf("stream of %s: %v", topic, err)
	}
	return st
}

// consumerSettled reports nil once the durable has nothing pending or unacked.
func (s *suite) consumerSettled(t *testing.T, name string) func() error {
	return func() error {
		c, err := s.env.JetStream.Consumer(t.Context(), streams.StreamName(s.topic), name)
		if err != nil {
			return err
		}
		info, err := c.Info(t.Context())
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("%d pending, %d unacked", info.NumPending, info.NumAckPending)
		}
		return nil
	}
}

// within scales a wait by the environment's Patience.
func (s *suite) within(d time.Duration) time.Duration {
	return d * time.Duration(max(s.env.Patience, 1))
}
