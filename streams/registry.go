package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// DefaultSchemaBucket is the KV bucket of the schema registry.
const DefaultSchemaBucket = "tradex_schemas"

// Schema is the registry entry of one topic: its catalog entry and the
// protobuf descriptors of its payload. It is stored as JSON under the topic
// name.
type Schema struct {
	// Topic is the topic name, also the entry's key.
	Topic string `json:"topic"`
	// MessageType is the payload's full protobuf name (the ce-type header).
	MessageType string `json:"messageType"`
	// Key says what the partition key is.
	Key string `json:"key"`
	// Profile is the topic's durability profile ("financial", ...).
	Profile string `json:"profile"`
	// Producers and Consumers name the services that write and read it.
	Producers []string `json:"producers"`
	Consumers []string `json:"consumers"`
	// FileDescriptorSet is a serialized descriptorpb.FileDescriptorSet
	// holding the payload's file and every file it imports, transitively,
	// dependencies first (base64 in JSON).
	FileDescriptorSet []byte `json:"fileDescriptorSet"`
	// Revision is the entry's KV revision (not stored in the JSON).
	Revision uint64 `json:"-"`
}

// RegistryOption configures PublishSchemas and OpenRegistry.
type RegistryOption func(*registryConfig)

type registryConfig struct {
	bucket   string
	replicas int
}

// WithSchemaBucket sets the registry's bucket (default "tradex_schemas").
func WithSchemaBucket(name string) RegistryOption {
	return func(c *registryConfig) { c.bucket = name }
}

// WithSchemaReplicas sets the replica count of the bucket PublishSchemas
// creates: 3 on a 3-node cluster, 1 (the default) on a single server.
func WithSchemaReplicas(n int) RegistryOption {
	return func(c *registryConfig) { c.replicas = n }
}

func newRegistryConfig(opts []RegistryOption) registryConfig {
	c := registryConfig{bucket: DefaultSchemaBucket, replicas: 1}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// schemaHistory is how many revisions of each topic's schema the bucket keeps.
const schemaHistory = 10

// PublishSchemas writes the schema of every catalog topic to the registry
// bucket, creating the bucket if needed. It is idempotent: an entry is
// written only when its content changed, with a revision check, so that
// instances starting together write each change once. Entries of topics no
// longer in the catalog are kept, so their messages stay decodable.
func PublishSchemas(ctx context.Context, js jetstream.JetStream, catalog *Catalog, opts ...RegistryOption) error {
	c := newRegistryConfig(opts)
	if c.replicas < 1 || c.replicas > 5 {
		return fmt.Errorf("%w: schema registry replicas %d: want 1 to 5", ErrInvalidConfig, c.replicas)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      c.bucket,
		Description: "tradex schema registry: topic -> payload descriptors",
		History:     schemaHistory,
		Storage:     jetstream.FileStorage,
		Replicas:    c.replicas,
	})
	if err != nil {
		return brokerError("schema bucket "+c.bucket, err)
	}
	for _, t := range catalog.Topics() {
		s, err := SchemaOf(t)
		if err != nil {
			return err
		}
		value, err := json.Marshal(s)
		if err != nil {
			return fmt.Errorf("encode schema of %s: %w", t.Name, err)
		}
		if err := putIfChanged(ctx, kv, t.Name, value); err != nil {
			return err
		}
	}
	return nil
}

// SchemaOf builds the registry entry of a catalog topic.
func SchemaOf(t Topic) (Schema, error) {
	fds, err := fileDescriptorSet(t.Payload.ProtoReflect().Descriptor().ParentFile())
	if err != nil {
		return Schema{}, fmt.Errorf("descriptors of %s: %w", t.Name, err)
	}
	return Schema{
		Topic:             t.Name,
		MessageType:       string(t.MessageName()),
		Key:               t.Key,
		Profile:           t.Profile.String(),
		Producers:         append([]string{}, t.Producers...),
		Consumers:         append([]string{}, t.Consumers...),
		FileDescriptorSet: fds,
	}, nil
}

// fileDescriptorSet serializes file and its transitive imports,
// dependencies first, deterministically.
func fileDescriptorSet(file protoreflect.FileDescriptor) ([]byte, error) {
	var set descriptorpb.FileDescriptorSet
	seen := map[string]bool{}
	var visit func(protoreflect.FileDescriptor)
	visit = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		imports := f.Imports()
		for i := range imports.Len() {
			visit(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(f))
	}
	visit(file)
	return proto.MarshalOptions{Deterministic: true}.Marshal(&set)
}

// schemaWriteAttempts bounds how often putIfChanged retries after losing a
// race with another writer.
const schemaWriteAttempts = 3

// putIfChanged writes value under key unless it is already there,
// conditionally on the revision it read.
func putIfChanged(ctx context.Context, kv jetstream.KeyValue, key string, value []byte) error {
	// A bucket just created on a cluster answers "no responders" until its
	// stream has elected a leader: wait for that, within ctx and a bound.
	deadline := time.Now().Add(schemaLeaderWait)
	for backoff := 20 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		err := putIfChangedOnce(ctx, kv, key, value)
		if !errors.Is(err, ErrUnavailable) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
	}
}

// schemaLeaderWait bounds how long PublishSchemas waits for a new
// bucket's leader.
const schemaLeaderWait = 15 * time.Second

func putIfChangedOnce(ctx context.Context, kv jetstream.KeyValue, key string, value []byte) error {
	for range schemaWriteAttempts {
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if _, err = kv.Create(ctx, key, value); errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
		case err != nil:
			return brokerError("read schema "+key, err)
		case bytes.Equal(e.Value(), value):
			return nil
		default:
			if _, err = kv.Update(ctx, key, value, e.Revision()); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue
			}
		}
		return brokerError("write schema "+key, err)
	}
	return fmt.Errorf("write schema %s: %w: changed by others %d times", key, ErrConcurrency, schemaWriteAttempts)
}

// Registry reads topic schemas from the registry bucket and decodes
// payloads with them alone, so a process without the compiled Go types (the
// CLI, the Kafka bridge) can decode any topic by name. Each decode reads
// the topic's entry (one KV get), so it always uses the latest schema; the
// descriptors are compiled once per revision. It is safe for concurrent use.
type Registry struct {
	kv jetstream.KeyValue

	mu    sync.Mutex
	cache map[string]compiledSchema // by topic
}

// compiledSchema is a schema's descriptors, built once per revision.
type compiledSchema struct {
	revision uint64
	message  protoreflect.MessageDescriptor
	types    *dynamicpb.Types
}

// OpenRegistry opens the registry bucket, which PublishSchemas creates.
func OpenRegistry(ctx context.Context, js jetstream.JetStream, opts ...RegistryOption) (*Registry, error) {
	c := newRegistryConfig(opts)
	kv, err := js.KeyValue(ctx, c.bucket)
	if err != nil {
		return nil, brokerError("open schema bucket "+c.bucket, err)
	}
	return &Registry{kv: kv, cache: map[string]compiledSchema{}}, nil
}

// Topics returns the schema of every topic in the registry, by topic name.
func (r *Registry) Topics(ctx context.Context) ([]Schema, error) {
	w, err := r.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, brokerError("list schemas", err)
	}
	defer func() { _ = w.Stop() }() // a failed unsubscribe leaves nothing to undo
	var out []Schema
	for {
		select {
		case <-ctx.Done():
			return nil, brokerError("list schemas", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("list schemas: %w: watch ended", ErrUnavailable)
			}
			if e == nil { // every current entry has been delivered
				slices.SortFunc(out, func(a, b Schema) int { return strings.Compare(a.Topic, b.Topic) })
				return out, nil
			}
			s, err := parseSchema(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
	}
}

// Schema returns the schema of topic; a dead-letter topic "dlq.<topic>"
// has its original topic's schema. An unregistered topic is an error
// wrapping ErrUnknownTopic.
func (r *Registry) Schema(ctx context.Context, topic string) (Schema, error) {
	name := strings.TrimPrefix(topic, dlqPrefix)
	e, err := r.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return Schema{}, fmt.Errorf("%w %q: not in the schema registry", ErrUnknownTopic, topic)
	}
	if err != nil {
		return Schema{}, brokerError("schema of "+topic, err)
	}
	return parseSchema(e)
}

// Decode decodes a payload of topic into a dynamic message built from the
// registry's descriptors alone.
func (r *Registry) Decode(ctx context.Context, topic string, data []byte) (proto.Message, error) {
	m, _, err := r.decode(ctx, topic, data)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeJSON decodes a payload of topic and returns it as protojson, with
// the registry's descriptors alone.
func (r *Registry) DecodeJSON(ctx context.Context, topic string, data []byte) ([]byte, error) {
	m, types, err := r.decode(ctx, topic, data)
	if err != nil {
		return nil, err
	}
	out, err := protojson.MarshalOptions{Resolver: types}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s as JSON: %w", topic, err)
	}
	return out, nil
}

// decode unmarshals data with topic's schema; types resolve the Any and
// extension fields inside it.
func (r *Registry) decode(ctx context.Context, topic string, data []byte) (*dynamicpb.Message, *dynamicpb.Types, error) {
	c, err := r.compiled(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	m := dynamicpb.NewMessage(c.message)
	if err := (proto.UnmarshalOptions{Resolver: c.types}).Unmarshal(data, m); err != nil {
		return nil, nil, fmt.Errorf("decode %s as %s: %w", topic, c.message.FullName(), err)
	}
	return m, c.types, nil
}

// compiled returns the descriptors of topic's current schema, building
// them when the entry's revision changed.
func (r *Registry) compiled(ctx context.Context, topic string) (compiledSchema, error) {
	s, err := r.Schema(ctx, topic)
	if err != nil {
		return compiledSchema{}, err
	}
	r.mu.Lock()
	c, ok := r.cache[s.Topic]
	r.mu.Unlock()
	if ok && c.revision == s.Revision {
		return c, nil
	}
	if c, err = compileSchema(s); err != nil {
		return compiledSchema{}, err
	}
	r.mu.Lock()
	r.cache[s.Topic] = c
	r.mu.Unlock()
	return c, nil
}

// compileSchema builds a schema's descriptors without the global registry.
func compileSchema(s Schema) (compiledSchema, error) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(s.FileDescriptorSet, &set); err != nil {
		return compiledSchema{}, fmt.Errorf("schema of %s: descriptor set: %w", s.Topic, err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return compiledSchema{}, fmt.Errorf("schema of %s: descriptors: %w", s.Topic, err)
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(s.MessageType))
	if err != nil {
		return compiledSchema{}, fmt.Errorf("schema of %s: %s: %w", s.Topic, s.MessageType, err)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return compiledSchema{}, fmt.Errorf("schema of %s: %s is not a message", s.Topic, s.MessageType)
	}
	return compiledSchema{revision: s.Revision, message: md, types: dynamicpb.NewTypes(files)}, nil
}

// parseSchema decodes a registry entry.
func parseSchema(e jetstream.KeyValueEntry) (Schema, error) {
	var s Schema
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return Schema{}, fmt.Errorf("schema entry %s: %w", e.Key(), err)
	}
	s.Revision = e.Revision()
	return s, nil
}
