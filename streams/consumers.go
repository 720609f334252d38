package streams

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// DeleteConsumer deletes the durable consumer named name of topic's
// stream, for a process that made consumers of its own (unique names) and
// removes them when it closes. A consumer that is not there (never made,
// deleted already, expired) is not an error.
func (c *Client) DeleteConsumer(ctx context.Context, topic, name string) error {
	t, err := c.catalog.Topic(topic)
	if err != nil {
		return err
	}
	err = c.js.DeleteConsumer(ctx, t.Stream(), name)
	if err == nil || errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	return brokerError(fmt.Sprintf("delete consumer %s of %s", name, topic), err)
}
