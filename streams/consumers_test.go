package streams_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	"github.com/tradex-mesh/tradex/streams"
)

// DeleteConsumer removes a durable consumer of a topic; one that is not
// there is no error; a topic outside the catalog is.
func TestDeleteConsumer(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	catalog := faultCatalog(t)
	if err := streams.EnsureStreams(t.Context(), s.JetStream(), catalog); err != nil {
		t.Fatal(err)
	}
	client := streams.NewClient(s.JetStream(), catalog)
	const topic = "fault.events.v1"
	cons, err := streams.Consume(t.Context(), client, topic, streams.ConsumerConfig{Name: "test-delete"},
		func(context.Context, *streams.Message[*wrapperspb.StringValue]) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	stream := streams.StreamName(topic)
	if _, err := s.JetStream().Consumer(t.Context(), stream, "test-delete"); err != nil {
		t.Fatalf("consumer before the delete: %v", err)
	}

	if err := client.DeleteConsumer(t.Context(), topic, "test-delete"); err != nil {
		t.Fatalf("DeleteConsumer: %v", err)
	}
	if _, err := s.JetStream().Consumer(t.Context(), stream, "test-delete"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("consumer after the delete: %v, want not found", err)
	}
	if err := client.DeleteConsumer(t.Context(), topic, "test-delete"); err != nil {
		t.Errorf("DeleteConsumer of a deleted consumer: %v, want nil", err)
	}
	if err := client.DeleteConsumer(t.Context(), "no.such.v1", "test-delete"); !errors.Is(err, streams.ErrUnknownTopic) {
		t.Errorf("DeleteConsumer of an unknown topic: %v, want ErrUnknownTopic", err)
	}
}

// With the broker gone, DeleteConsumer says it is unavailable.
func TestDeleteConsumerUnavailable(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	catalog := faultCatalog(t)
	if err := streams.EnsureStreams(t.Context(), s.JetStream(), catalog); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	client := streams.NewClient(s.JetStream(), catalog)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := client.DeleteConsumer(ctx, "fault.events.v1", "test-delete"); !errors.Is(err, streams.ErrUnavailable) {
		t.Errorf("DeleteConsumer with the broker gone: %v, want ErrUnavailable", err)
	}
}

// A follow leaves no consumer behind once it ends, whether its context
// ended or its callback stopped it (an ordered consumer would otherwise
// stay on the server for five minutes).
func TestFollowLeavesNoConsumer(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	catalog := faultCatalog(t)
	if err := streams.EnsureStreams(t.Context(), s.JetStream(), catalog); err != nil {
		t.Fatal(err)
	}
	client := streams.NewClient(s.JetStream(), catalog)
	const topic = "fault.events.v1"
	stream, err := s.JetStream().Stream(t.Context(), streams.StreamName(topic))
	if err != nil {
		t.Fatal(err)
	}
	consumers := func() int {
		info, err := stream.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Consumers
	}
	if _, err := s.JetStream().Publish(t.Context(), topic+".k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	errStop := errors.New("stop")
	ctx, cancel := context.WithCancel(t.Context())
	for _, end := range []struct {
		name string
		fn   func(context.Context, streams.Stored) error
		want error
	}{
		{"context", func(context.Context, streams.Stored) error { cancel(); return nil }, nil},
		{"callback", func(context.Context, streams.Stored) error { return errStop }, errStop},
	} {
		if err := client.Follow(ctx, streams.Follow{Topic: topic}, end.fn); !errors.Is(err, end.want) {
			t.Fatalf("follow ended by its %s: %v; want %v", end.name, err, end.want)
		}
		if n := consumers(); n != 0 {
			t.Errorf("%d consumers after a follow ended by its %s", n, end.name)
		}
		ctx = t.Context()
	}
}
