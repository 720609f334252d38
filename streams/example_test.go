package streams_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/embedded"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// withJetStream runs fn against a throwaway in-process server.
func withJetStream(fn func(ctx context.Context, js jetstream.JetStream) error) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "streams-example-")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	srv, err := embedded.Start(ctx, embedded.Options{StoreDir: dir, Port: embedded.NoListener})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, srv.Shutdown(ctx)) }()
	nc, err := srv.Connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return fn(ctx, js)
}

// Publish an engine event and consume it with a durable, typed handler.
func Example() {
	err := withJetStream(func(ctx context.Context, js jetstream.JetStream) error {
		catalog := streams.DefaultCatalog()
		if err := streams.EnsureStreams(ctx, js, catalog); err != nil {
			return err
		}
		pub := streams.NewPublisher(js, catalog, streams.WithSource("tradex/matching"))
		event := &enginev1.EngineEvent{EventId: "BTCUSDT:7:0", InstrumentId: "BTCUSDT", InputSequence: 7}
		seq, err := pub.Publish(ctx, streams.TopicEngineEvent, "BTCUSDT", event, streams.WithMsgID(event.GetEventId()))
		if err != nil {
			return err
		}
		fmt.Println("stored at sequence", seq)

		// The same id again (a retry, a replay) is stored once.
		again, err := pub.Publish(ctx, streams.TopicEngineEvent, "BTCUSDT", event, streams.WithMsgID(event.GetEventId()))
		if err != nil {
			return err
		}
		fmt.Println("duplicate answered with sequence", again)

		done := make(chan struct{})
		c, err := streams.Consume(ctx, streams.NewClient(js, catalog), streams.TopicEngineEvent,
			streams.ConsumerConfig{Name: "example-reader"},
			func(_ context.Context, m *streams.Message[*enginev1.EngineEvent]) error {
				fmt.Printf("got %s key=%s seq=%d delivery=%d\n", m.Payload.GetEventId(), m.Key, m.Sequence, m.Delivery)
				close(done)
				return nil
			})
		if err != nil {
			return err
		}
		<-done
		return c.Stop(ctx)
	})
	if err != nil {
		fmt.Println("error:", err)
	}
	// Output:
	// stored at sequence 1
	// duplicate answered with sequence 1
	// got BTCUSDT:7:0 key=BTCUSDT seq=1 delivery=1
}

// A message of the wrong type for its topic is refused before it is sent.
func ExamplePublisher_Publish_wrongType() {
	err := withJetStream(func(ctx context.Context, js jetstream.JetStream) error {
		pub := streams.NewPublisher(js, streams.DefaultCatalog())
		_, err := pub.Publish(ctx, streams.TopicEngineEvent, "BTCUSDT", &enginev1.OrderCommand{})
		fmt.Println(errors.Is(err, streams.ErrWrongType), err)
		return nil
	})
	if err != nil {
		fmt.Println("error:", err)
	}
	// Output:
	// true wrong message type for topic: engine.event.v1 carries tradex.engine.v1.EngineEvent, got tradex.engine.v1.OrderCommand
}
