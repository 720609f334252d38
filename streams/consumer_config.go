package streams

import (
	"context"
	"errors"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// ensureConsumer creates the durable consumer, or updates an existing one
// keeping its start position (which a durable cannot change).
func ensureConsumer(ctx context.Context, js jetstream.JetStream, t Topic, cfg ConsumerConfig) (jetstream.Consumer, error) {
	filters := []string{t.Name + ".>"}
	if len(cfg.Keys) > 0 {
		filters = filters[:0]
		for _, k := range cfg.Keys {
			filters = append(filters, t.Name+"."+k)
		}
		slices.Sort(filters)
	}
	want := jetstream.ConsumerConfig{
		Durable:           cfg.Name,
		Description:       "consumer " + cfg.Name + " of " + t.Name,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           cfg.AckWait,
		MaxDeliver:        -1, // the library dead-letters before the broker would give up
		MaxAckPending:     cfg.MaxAckPending,
		InactiveThreshold: cfg.InactiveThreshold,
		DeliverPolicy:     cfg.Start.policy,
		OptStartSeq:       cfg.Start.seq,
	}
	if len(filters) == 1 {
		want.FilterSubject = filters[0]
	} else {
		want.FilterSubjects = filters
	}
	if !cfg.Start.time.IsZero() {
		st := cfg.Start.time
		want.OptStartTime = &st
	}
	existing, err := js.Consumer(ctx, t.Stream(), cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		c, err := js.CreateConsumer(ctx, t.Stream(), want)
		if err == nil || !errors.Is(err, jetstream.ErrConsumerExists) {
			return c, brokerError("create consumer "+cfg.Name, err)
		}
		// Another instance created it first: join it.
		if existing, err = js.Consumer(ctx, t.Stream(), cfg.Name); err != nil {
			return nil, brokerError("consumer "+cfg.Name, err)
		}
	case err != nil:
		return nil, brokerError("consumer "+cfg.Name, err)
	}
	have := existing.CachedInfo().Config
	want.DeliverPolicy, want.OptStartSeq, want.OptStartTime = have.DeliverPolicy, have.OptStartSeq, have.OptStartTime
	c, err := js.UpdateConsumer(ctx, t.Stream(), want)
	return c, brokerError("update consumer "+cfg.Name, err)
}
