package streams

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// Client is a service's handle on the mesh: one JetStream connection and
// the catalog. Services reach JetStream only through it (and through the
// Publisher and consumers it makes): topics by name, stores by name,
// direct reads and ordered follows. It is safe for concurrent use.
type Client struct {
	js       jetstream.JetStream
	catalog  *Catalog
	replicas int
	tracer   trace.Tracer

	mu     sync.Mutex
	kvs    map[string]*KV
	objs   map[string]*Objects
	stream map[string]jetstream.Stream
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithStoreReplicas sets the replica count of the stores the client
// creates (default 1; 3 on a 3-node cluster).
func WithStoreReplicas(n int) ClientOption { return func(c *Client) { c.replicas = n } }

// NewClient returns a client of catalog's topics and stores over js.
func NewClient(js jetstream.JetStream, catalog *Catalog, opts ...ClientOption) *Client {
	c := &Client{js: js, catalog: catalog, replicas: 1, tracer: noTracer(),
		kvs: map[string]*KV{}, objs: map[string]*Objects{}, stream: map[string]jetstream.Stream{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Catalog is the client's catalog.
func (c *Client) Catalog() *Catalog { return c.catalog }

// Publisher returns a publisher of the catalog's topics on the client's
// connection.
func (c *Client) Publisher(opts ...PublisherOption) *Publisher {
	return NewPublisher(c.js, c.catalog, append([]PublisherOption{withTracer(c.tracer)}, opts...)...)
}

// JetStream is the client's JetStream context, for the packages that own
// the broker (provisioning, the composition root, tools); services never
// use it.
func (c *Client) JetStream() jetstream.JetStream { return c.js }

// topicStream returns the stream of a catalog topic, looked up once.
func (c *Client) topicStream(ctx context.Context, topic string) (jetstream.Stream, error) {
	t, err := c.catalog.Topic(topic)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	st, ok := c.stream[topic]
	c.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err = c.js.Stream(ctx, t.Stream())
	if err != nil {
		return nil, brokerError(fmt.Sprintf("stream of %s", topic), err)
	}
	c.mu.Lock()
	c.stream[topic] = st
	c.mu.Unlock()
	return st, nil
}

// store returns the catalog's store named name, checking its kind.
func (c *Client) store(name string, kind StoreKind) (Store, error) {
	s, err := c.catalog.Store(name)
	if err != nil {
		return Store{}, err
	}
	if s.Kind != kind {
		return Store{}, fmt.Errorf("%w: store %s is a %s, not a %s", ErrInvalidConfig, name, s.Kind, kind)
	}
	return s, nil
}

// Ping asks JetStream for the account's information: it fails while the
// broker does not answer.
func (c *Client) Ping(ctx context.Context) error {
	if _, err := c.js.AccountInfo(ctx); err != nil {
		return brokerError("jetstream account info", err)
	}
	return nil
}

// Connect returns a client of catalog over the connection nc.
func Connect(nc *nats.Conn, catalog *Catalog, opts ...ClientOption) (*Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return NewClient(js, catalog, opts...), nil
}

// DLQ returns the dead-letter tools over the client's connection.
func (c *Client) DLQ() *DLQ { return NewDLQ(c.js, c.catalog) }
