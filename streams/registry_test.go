package streams_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// regEngineTrade is an engine event using nested messages, a oneof, an
// enum from another file and a well-known type.
func regEngineTrade() *enginev1.EngineEvent {
	return &enginev1.EngineEvent{
		EventId: "BTCUSDT:42:1", InstrumentId: "BTCUSDT", InputSequence: 42, InputIndex: 1, Sequence: 7,
		EngineTime:  timestamppb.New(time.Date(2026, 3, 1, 12, 30, 0, 123456789, time.UTC)),
		CommandId:   "cmd-1",
		BookChanges: []*enginev1.BookLevelChange{{Side: commonv1.Side_SIDE_SELL, Price: "65000.10", Quantity: "1.5"}},
		Event: &enginev1.EngineEvent_Trade{Trade: &enginev1.Trade{
			TradeId: "BTCUSDT:42:1", Price: "65000.10", Quantity: "0.5", QuoteQuantity: "32500.05",
			TakerOrderId: "o-2", TakerAccountId: "acc-2", TakerSide: commonv1.Side_SIDE_BUY, TakerRemainingQuantity: "0",
			MakerOrderId: "o-1", MakerAccountId: "acc-1", MakerSide: commonv1.Side_SIDE_SELL, MakerRemainingQuantity: "1.5",
		}},
	}
}

// regRegistry publishes the default catalog's schemas and opens the registry.
func regRegistry(t *testing.T, js jetstream.JetStream) *streams.Registry {
	t.Helper()
	if err := streams.PublishSchemas(t.Context(), js, streams.DefaultCatalog()); err != nil {
		t.Fatalf("PublishSchemas: %v", err)
	}
	r, err := streams.OpenRegistry(t.Context(), js)
	if err != nil {
		t.Fatalf("OpenRegistry: %v", err)
	}
	return r
}

// regSameJSON fails unless got and want are the same JSON value.
func regSameJSON(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want invalid JSON %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("decoded JSON\n%s\nwant\n%s", got, want)
	}
}

func TestRegistryDecodeJSONMatchesCompiledType(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	r := regRegistry(t, s.JetStream())
	msg := regEngineTrade()
	data, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	want, err := protojson.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{streams.TopicEngineEvent, streams.DLQTopic(streams.TopicEngineEvent)} {
		got, err := r.DecodeJSON(t.Context(), topic, data)
		if err != nil {
			t.Fatalf("DecodeJSON(%s): %v", topic, err)
		}
		regSameJSON(t, got, want)
	}
	m, err := r.Decode(t.Context(), streams.TopicEngineEvent, data)
	if err != nil {
		t.Fatal(err)
	}
	if name := m.ProtoReflect().Descriptor().FullName(); name != "tradex.engine.v1.EngineEvent" {
		t.Errorf("Decode gave a %s", name)
	}
	if _, ok := m.(*enginev1.EngineEvent); ok {
		t.Error("Decode used the compiled type; want a message built from the registry's descriptors")
	}
}

func TestRegistryDecodesEveryTopic(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	r := regRegistry(t, s.JetStream())
	for _, topic := range streams.DefaultCatalog().Topics() {
		// The zero value of each payload type round-trips.
		got, err := r.DecodeJSON(t.Context(), topic.Name, nil)
		if err != nil {
			t.Errorf("DecodeJSON(%s): %v", topic.Name, err)
			continue
		}
		regSameJSON(t, got, []byte("{}"))
	}
}

func TestRegistryUnknownTopic(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	r := regRegistry(t, s.JetStream())
	for _, topic := range []string{"engine.events.v1", "dlq.nope.v1", "not a key", ""} {
		if _, err := r.DecodeJSON(t.Context(), topic, nil); !errors.Is(err, streams.ErrUnknownTopic) {
			t.Errorf("DecodeJSON(%q): err = %v, want ErrUnknownTopic", topic, err)
		}
	}
}

func TestRegistryUndecodablePayload(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	r := regRegistry(t, s.JetStream())
	if _, err := r.DecodeJSON(t.Context(), streams.TopicEngineEvent, []byte{0xff, 0xff, 0xff}); err == nil {
		t.Error("garbage decoded without error")
	}
}

func TestRegistryTopics(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	r := regRegistry(t, s.JetStream())
	got, err := r.Topics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	catalog := streams.DefaultCatalog().Topics()
	if len(got) != len(catalog) {
		t.Fatalf("%d schemas, want %d", len(got), len(catalog))
	}
	if !slices.IsSortedFunc(got, func(a, b streams.Schema) int { return strings.Compare(a.Topic, b.Topic) }) {
		t.Error("schemas not sorted by topic")
	}
	for _, topic := range catalog {
		i := slices.IndexFunc(got, func(s streams.Schema) bool { return s.Topic == topic.Name })
		if i < 0 {
			t.Errorf("no schema for %s", topic.Name)
			continue
		}
		s := got[i]
		if s.MessageType != string(topic.MessageName()) || s.Key != topic.Key || s.Profile != topic.Profile.String() ||
			!slices.Equal(s.Producers, topic.Producers) || !slices.Equal(s.Consumers, topic.Consumers) || s.Revision == 0 {
			t.Errorf("schema of %s = %+v, want the catalog entry %+v", topic.Name, s, topic)
		}
		var set descriptorpb.FileDescriptorSet
		if err := proto.Unmarshal(s.FileDescriptorSet, &set); err != nil {
			t.Fatalf("%s: descriptor set: %v", topic.Name, err)
		}
		files := map[string]bool{}
		for _, f := range set.GetFile() {
			for _, dep := range f.GetDependency() {
				if !files[dep] {
					t.Errorf("%s: %s comes before its import %s", topic.Name, f.GetName(), dep)
				}
			}
			files[f.GetName()] = true
		}
		if want := topic.Payload.ProtoReflect().Descriptor().ParentFile().Path(); set.GetFile()[len(set.GetFile())-1].GetName() != want {
			t.Errorf("%s: last file is %s, want the payload's %s", topic.Name, set.GetFile()[len(set.GetFile())-1].GetName(), want)
		}
	}
	engine := got[slices.IndexFunc(got, func(s streams.Schema) bool { return s.Topic == streams.TopicEngineEvent })]
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(engine.FileDescriptorSet, &set); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range set.GetFile() {
		names = append(names, f.GetName())
	}
	for _, want := range []string{"google/protobuf/timestamp.proto", "tradex/common/v1/common.proto", "tradex/engine/v1/engine.proto"} {
		if !slices.Contains(names, want) {
			t.Errorf("engine schema files %v lack %s", names, want)
		}
	}
}

func TestPublishSchemasIsIdempotent(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	js := s.JetStream()
	r := regRegistry(t, js)
	before, err := r.Topics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := streams.PublishSchemas(t.Context(), js, streams.DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
	after, err := r.Topics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Error("a second PublishSchemas changed the registry")
	}
	kv, err := js.KeyValue(t.Context(), streams.DefaultSchemaBucket)
	if err != nil {
		t.Fatal(err)
	}
	status, err := kv.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := status.Values(), uint64(len(streams.DefaultCatalog().Topics())); got != want {
		t.Errorf("bucket holds %d values, want %d: one write per topic", got, want)
	}
}

func TestPublishSchemasRewritesChangedSchema(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	js := s.JetStream()
	r := regRegistry(t, js)
	old, err := r.Schema(t.Context(), streams.TopicEngineEvent)
	if err != nil {
		t.Fatal(err)
	}
	// The topic's payload type changes (a new major version would get a
	// new topic; this stands in for any schema change).
	changed, err := streams.NewCatalog(streams.Topic{
		Name: streams.TopicEngineEvent, Payload: &enginev1.OrderCommand{}, Key: "instrument",
		Producers: []string{"matching"}, Consumers: []string{"order"}, Profile: streams.Financial,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := streams.PublishSchemas(t.Context(), js, changed); err != nil {
		t.Fatal(err)
	}
	now, err := r.Schema(t.Context(), streams.TopicEngineEvent)
	if err != nil {
		t.Fatal(err)
	}
	if now.Revision <= old.Revision || now.MessageType != "tradex.engine.v1.OrderCommand" {
		t.Errorf("after the change: revision %d (was %d), type %s", now.Revision, old.Revision, now.MessageType)
	}
	cmd := &enginev1.OrderCommand{CommandId: "cmd-9"}
	data, err := proto.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.DecodeJSON(t.Context(), streams.TopicEngineEvent, data)
	if err != nil {
		t.Fatal(err)
	}
	want, err := protojson.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	regSameJSON(t, got, want)
}

func TestOpenRegistryWithoutBucket(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	if _, err := streams.OpenRegistry(t.Context(), s.JetStream()); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("err = %v, want ErrBucketNotFound", err)
	}
}
