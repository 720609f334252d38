package streams

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Objects is an object store of the catalog: values of any size by name
// (snapshots). Errors wrap ErrNotFound or ErrUnavailable.
type Objects struct {
	name  string
	store jetstream.ObjectStore
}

// Objects opens the catalog's object store name, creating it (or updating
// its settings) as the catalog declares it.
func (c *Client) Objects(ctx context.Context, name string) (*Objects, error) {
	c.mu.Lock()
	o, ok := c.objs[name]
	c.mu.Unlock()
	if ok {
		return o, nil
	}
	s, err := c.store(name, ObjectStore)
	if err != nil {
		return nil, err
	}
	raw, err := c.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: s.Name, Description: s.Description, Storage: jetstream.FileStorage, Replicas: c.replicas,
	})
	if err != nil {
		return nil, brokerError("open object store "+name, err)
	}
	o = &Objects{name: name, store: raw}
	c.mu.Lock()
	c.objs[name] = o
	c.mu.Unlock()
	return o, nil
}

// Name is the store's name.
func (o *Objects) Name() string { return o.name }

// Get returns the object's bytes (ErrNotFound when there is none).
func (o *Objects) Get(ctx context.Context, object string) ([]byte, error) {
	b, err := o.store.GetBytes(ctx, object)
	if err != nil {
		return nil, brokerError(fmt.Sprintf("get %s from %s", object, o.name), err)
	}
	return b, nil
}

// Put stores data as the object, replacing what was there.
func (o *Objects) Put(ctx context.Context, object string, data []byte) error {
	if _, err := o.store.PutBytes(ctx, object, data); err != nil {
		return brokerError(fmt.Sprintf("put %s in %s", object, o.name), err)
	}
	return nil
}
