package schemaregistry_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
	"github.com/tradex-mesh/tradex/streams/schemaregistry"
)

func TestIndexHasASubjectPerTopicWithItsImports(t *testing.T) {
	t.Parallel()
	idx := build(t, publishedJetStream(t))
	for _, topic := range streams.DefaultCatalog().Topics() {
		sv, err := idx.Version(topic.Name+schemaregistry.SubjectSuffix, schemaregistry.Latest)
		if err != nil {
			t.Fatalf("%s: %v", topic.Name, err)
		}
		if id, err := idx.TopicID(topic.Name); err != nil || id != sv.ID {
			t.Errorf("%s: TopicID = %d, %v; want the latest version's id %d", topic.Name, id, err, sv.ID)
		}
		file := topic.Payload.ProtoReflect().Descriptor().ParentFile()
		if got, want := len(sv.References), file.Imports().Len(); got != want {
			t.Errorf("%s: %d references, want one per import (%d)", topic.Name, got, want)
		}
		for _, ref := range sv.References {
			if ref.Name != ref.Subject {
				t.Errorf("%s: reference %+v: subject is not the import path", topic.Name, ref)
			}
			if _, err := idx.Version(ref.Subject, ref.Version); err != nil {
				t.Errorf("%s: reference %+v: %v", topic.Name, ref, err)
			}
		}
	}
	if !slices.Contains(idx.Subjects(), "google/protobuf/timestamp.proto") {
		t.Errorf("subjects %v: no google/protobuf/timestamp.proto", idx.Subjects())
	}
}

func TestIDsAreStableAcrossIndependentIndexes(t *testing.T) {
	t.Parallel()
	a := build(t, publishedJetStream(t))
	b := build(t, publishedJetStream(t))
	c := catalogIndex(t) // no broker at all
	if !slices.Equal(a.Subjects(), b.Subjects()) || !slices.Equal(a.Subjects(), c.Subjects()) {
		t.Fatalf("subjects differ: %v, %v, %v", a.Subjects(), b.Subjects(), c.Subjects())
	}
	for _, subject := range a.Subjects() {
		va, _ := a.Version(subject, schemaregistry.Latest)
		vb, _ := b.Version(subject, schemaregistry.Latest)
		vc, _ := c.Version(subject, schemaregistry.Latest)
		if va.ID != vb.ID || va.ID != vc.ID || va.ID <= 0 {
			t.Errorf("%s: ids %d, %d, %d: want one positive id", subject, va.ID, vb.ID, vc.ID)
		}
	}
	for _, topic := range streams.DefaultCatalog().Topics() {
		pa, _ := a.Prefix(topic.Name)
		pc, _ := c.Prefix(topic.Name)
		if !bytes.Equal(pa, pc) {
			t.Errorf("%s: prefixes %x and %x", topic.Name, pa, pc)
		}
	}
}

// catalogIndex indexes the default catalog's schemas built without a broker.
func catalogIndex(t *testing.T) *schemaregistry.Index {
	t.Helper()
	var entries []streams.Schema
	for _, topic := range streams.DefaultCatalog().Topics() {
		s, err := streams.SchemaOf(topic)
		if err != nil {
			t.Fatalf("SchemaOf(%s): %v", topic.Name, err)
		}
		entries = append(entries, s)
	}
	idx, err := schemaregistry.NewIndex(entries)
	if err != nil {
		t.Fatalf("NewIndex: %v", err)
	}
	return idx
}

func TestRenderedProtoCompilesBackToTheSameDescriptors(t *testing.T) {
	t.Parallel()
	idx := catalogIndex(t)
	for _, topic := range streams.DefaultCatalog().Topics() {
		t.Run(topic.Name, func(t *testing.T) {
			t.Parallel()
			sv, err := idx.Version(topic.Name+schemaregistry.SubjectSuffix, schemaregistry.Latest)
			if err != nil {
				t.Fatal(err)
			}
			sources := map[string]string{}
			collectSources(t, idx, sv.Schema, "main.proto", sources)
			compiled, err := (&protocompile.Compiler{
				Resolver: &protocompile.SourceResolver{Accessor: protocompile.SourceAccessorFromMap(sources)},
			}).Compile(t.Context(), "main.proto")
			if err != nil {
				t.Fatalf("compile the rendered schema: %v\n%s", err, sv.Schema.Schema)
			}
			want := topic.Payload.ProtoReflect().Descriptor()
			got := compiled[0]
			if !proto.Equal(normalized(got, want.ParentFile().Path()), normalized(want.ParentFile(), "")) {
				t.Errorf("compiled descriptors differ from the originals:\n%v\n%v",
					normalized(got, want.ParentFile().Path()), normalized(want.ParentFile(), ""))
			}
			// The prefix's message indexes find the payload's message in the text.
			_, indexes, _, err := schemaregistry.ParseHeader(append(mustPrefix(t, idx, topic.Name), 0x0a))
			if err != nil {
				t.Fatal(err)
			}
			if m := messageAt(got, indexes); m == nil || m.FullName() != want.FullName() {
				t.Errorf("message indexes %v point at %v, want %s", indexes, m, want.FullName())
			}
		})
	}
}

// collectSources puts s under name and, recursively, its references under
// their names.
func collectSources(t *testing.T, idx *schemaregistry.Index, s schemaregistry.Schema, name string, out map[string]string) {
	t.Helper()
	out[name] = s.Schema
	for _, ref := range s.References {
		dep, err := idx.Version(ref.Subject, ref.Version)
		if err != nil {
			t.Fatalf("reference %+v: %v", ref, err)
		}
		collectSources(t, idx, dep.Schema, ref.Name, out)
	}
}

// normalized is f's descriptor without what text cannot carry (source
// info) and with path as its name when set.
func normalized(f protoreflect.FileDescriptor, path string) *descriptorpb.FileDescriptorProto {
	p := protodesc.ToFileDescriptorProto(f)
	p.SourceCodeInfo = nil
	if path != "" {
		p.Name = proto.String(path)
	}
	return p
}

// messageAt follows a message-index path in f.
func messageAt(f protoreflect.FileDescriptor, indexes []int) protoreflect.MessageDescriptor {
	msgs := f.Messages()
	var m protoreflect.MessageDescriptor
	for _, i := range indexes {
		if i >= msgs.Len() {
			return nil
		}
		m = msgs.Get(i)
		msgs = m.Messages()
	}
	return m
}

func mustPrefix(t *testing.T, idx *schemaregistry.Index, topic string) []byte {
	t.Helper()
	p, err := idx.Prefix(topic)
	if err != nil {
		t.Fatalf("Prefix(%s): %v", topic, err)
	}
	return slices.Clone(p)
}

func TestEncodeAndStripRoundTrip(t *testing.T) {
	t.Parallel()
	idx := build(t, publishedJetStream(t))
	id, err := idx.TopicID(streams.TopicEngineEvent)
	if err != nil {
		t.Fatal(err)
	}
	// The message index is EngineEvent's position among engine.proto's messages.
	pos := (&enginev1.EngineEvent{}).ProtoReflect().Descriptor().Index()
	if got, want := mustPrefix(t, idx, streams.TopicEngineEvent), schemaregistry.AppendHeader(nil, id, []int{pos}); !bytes.Equal(got, want) || pos == 0 {
		t.Fatalf("prefix %x, want %x", got, want)
	}
	ev := engineEvent()
	value, err := idx.Encode(streams.TopicEngineEvent, marshal(t, ev))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := idx.Strip(streams.TopicEngineEvent, value)
	if err != nil {
		t.Fatalf("Strip: %v", err)
	}
	var got enginev1.EngineEvent
	if err := proto.Unmarshal(payload, &got); err != nil || !proto.Equal(&got, ev) {
		t.Fatalf("round trip = %v, %v; want %v", &got, err, ev)
	}
}

func TestStripAcceptsTheLongFormOfIndexZero(t *testing.T) {
	t.Parallel()
	idx := catalogIndex(t)
	id, _ := idx.TopicID(streams.TopicOrderCommand) // OrderCommand is engine.proto's first message
	// Count 1, then index 0: what some serializers write instead of the single 0.
	value := append(schemaregistry.AppendHeader(nil, id, []int{0})[:5], 0x02, 0x00, 0x0a, 0x01, 'c')
	payload, err := idx.Strip(streams.TopicOrderCommand, value)
	if err != nil || !bytes.Equal(payload, []byte{0x0a, 0x01, 'c'}) {
		t.Fatalf("Strip(%x) = %x, %v", value, payload, err)
	}
}

func TestStripRefusesRecordsOfOtherSchemas(t *testing.T) {
	t.Parallel()
	idx := catalogIndex(t)
	id, _ := idx.TopicID(streams.TopicEngineEvent)
	payload := marshal(t, engineEvent())
	cases := []struct {
		name  string
		topic string
		value []byte
		want  error
	}{
		{"bare payload", streams.TopicEngineEvent, payload, schemaregistry.ErrNotWireFormat},
		{"another topic's schema", streams.TopicEngineEvent,
			append(mustPrefix(t, idx, streams.TopicBalanceChanged), payload...), schemaregistry.ErrWrongSchema},
		{"same file, another message", streams.TopicEngineEvent,
			append(schemaregistry.AppendHeader(nil, id, []int{0}), payload...), schemaregistry.ErrWrongSchema},
		{"unknown id", streams.TopicEngineEvent,
			append(schemaregistry.AppendHeader(nil, id^1, []int{(&enginev1.EngineEvent{}).ProtoReflect().Descriptor().Index()}), payload...), schemaregistry.ErrWrongSchema},
		{"unknown topic", "no.such.v1", append(mustPrefix(t, idx, streams.TopicEngineEvent), payload...), streams.ErrUnknownTopic},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if _, err := idx.Strip(c.topic, c.value); !errors.Is(err, c.want) {
				t.Fatalf("Strip = %v, want %v", err, c.want)
			}
		})
	}
}

func TestNestedMessageIndexes(t *testing.T) {
	t.Parallel()
	// google.protobuf.DescriptorProto.ExtensionRange: the first message
	// nested in the third message of descriptor.proto.
	s, err := streams.SchemaOf(streams.Topic{Name: "test.nested.v1", Payload: &descriptorpb.DescriptorProto_ExtensionRange{}})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := schemaregistry.NewIndex([]streams.Schema{s})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := idx.TopicID("test.nested.v1")
	if got, want := mustPrefix(t, idx, "test.nested.v1"), schemaregistry.AppendHeader(nil, id, []int{2, 0}); !bytes.Equal(got, want) {
		t.Fatalf("prefix %x, want %x", got, want)
	}
	md := (&descriptorpb.DescriptorProto_ExtensionRange{}).ProtoReflect().Descriptor()
	if got := schemaregistry.MessageIndexes(md); !slices.Equal(got, []int{2, 0}) {
		t.Fatalf("MessageIndexes = %v, want [2 0]", got)
	}
	payload := marshal(t, &descriptorpb.DescriptorProto_ExtensionRange{Start: proto.Int32(5), End: proto.Int32(9)})
	value, _ := idx.Encode("test.nested.v1", payload)
	if got, err := idx.Strip("test.nested.v1", value); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("Strip = %x, %v; want %x", got, err, payload)
	}
}

func TestLiveKeepsOldIDsAfterASchemaChange(t *testing.T) {
	t.Parallel()
	js := publishedJetStream(t)
	live, err := schemaregistry.Open(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	runLive(t, live)
	subject := streams.TopicEngineEvent + schemaregistry.SubjectSuffix
	before, _ := live.Current().Version(subject, schemaregistry.Latest)
	oldPrefix := mustPrefix(t, live.Current(), streams.TopicEngineEvent)

	version := changeEngineEventSchema(t, js)
	polltest.Until(t, "the index picks up the new schema", func() error {
		if id, _ := live.Current().TopicID(streams.TopicEngineEvent); id == before.ID {
			return errors.New("still the old id")
		}
		return nil
	})
	idx := live.Current()
	after, _ := idx.Version(subject, schemaregistry.Latest)
	versions, _ := idx.Versions(subject)
	if !slices.Equal(versions, []int{before.Version, after.Version}) || after.Version != version {
		t.Fatalf("versions %v, want [%d %d] (the new one the KV revision)", versions, before.Version, version)
	}
	if !strings.Contains(after.Schema.Schema, "venue = 99") {
		t.Errorf("latest schema lacks the new field:\n%s", after.Schema.Schema)
	}
	if old, err := idx.SchemaByID(before.ID); err != nil || old.Schema != before.Schema.Schema {
		t.Errorf("old id %d: %v", before.ID, err)
	}
	payload := marshal(t, engineEvent())
	if _, err := idx.Strip(streams.TopicEngineEvent, append(oldPrefix, payload...)); err != nil {
		t.Errorf("a record of the old schema: %v", err)
	}
	if _, err := idx.Strip(streams.TopicEngineEvent, append(mustPrefix(t, idx, streams.TopicEngineEvent), payload...)); err != nil {
		t.Errorf("a record of the new schema: %v", err)
	}
	// A fresh index built from the bucket alone agrees, history included.
	fresh := build(t, js)
	if v, _ := fresh.Versions(subject); !slices.Equal(v, versions) {
		t.Errorf("fresh index versions %v, want %v", v, versions)
	}
}

// runLive runs live until the test ends.
func runLive(t *testing.T, live *schemaregistry.Live) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- live.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestBuildWithoutTheBucketFails(t *testing.T) {
	t.Parallel()
	js := embeddedtest.New(t).JetStream()
	if _, err := schemaregistry.Open(t.Context(), js); err == nil {
		t.Fatal("Open without a registry bucket succeeded")
	}
	if _, err := schemaregistry.NewHandler(catalogIndex(t), "", "x"); !errors.Is(err, schemaregistry.ErrNoCredentials) {
		t.Fatalf("NewHandler without a user = %v, want ErrNoCredentials", err)
	}
}

func TestPrefixAndStripDoNotAllocate(t *testing.T) {
	idx := catalogIndex(t)
	value := append(mustPrefix(t, idx, streams.TopicEngineEvent), marshal(t, engineEvent())...)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := idx.Prefix(streams.TopicEngineEvent); err != nil {
			t.Fatal(err)
		}
		if _, err := idx.Strip(streams.TopicEngineEvent, value); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Prefix and Strip allocate %.1f times per record", allocs)
	}
}
