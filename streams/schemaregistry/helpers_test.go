package schemaregistry_test

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/streams"
	"github.com/tradex-mesh/tradex/streams/schemaregistry"
)

// Credentials of the test servers.
const (
	testUser     = "bridge"
	testPassword = "s3cret-pass"
)

// publishedJetStream starts a node and publishes the default catalog's
// schemas to it.
func publishedJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	js := embeddedtest.New(t).JetStream()
	if err := streams.PublishSchemas(t.Context(), js, streams.DefaultCatalog()); err != nil {
		t.Fatalf("PublishSchemas: %v", err)
	}
	return js
}

// build indexes the registry bucket of js.
func build(t *testing.T, js jetstream.JetStream) *schemaregistry.Index {
	t.Helper()
	idx, err := schemaregistry.Build(t.Context(), js)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return idx
}

// serve serves src's handler on a loopback listener and returns its URL.
func serve(t *testing.T, src schemaregistry.Source) string {
	t.Helper()
	h, err := schemaregistry.NewHandler(src, testUser, testPassword)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// response is what a request got back.
type response struct {
	status int
	header http.Header
	body   []byte
}

// request sends method to url+path with Basic credentials (none when user
// is empty).
func request(t *testing.T, method, url, user, password string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatalf("request %s: %v", url, err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// get sends an authenticated GET and decodes a 200 answer into out.
func get(t *testing.T, url string, out any) {
	t.Helper()
	r := request(t, http.MethodGet, url, testUser, testPassword)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s = %d %s", url, r.status, r.body)
	}
	if err := json.Unmarshal(r.body, out); err != nil {
		t.Fatalf("GET %s: %s: %v", url, r.body, err)
	}
}

// engineEvent is an engine event with nested messages, a oneof, enums from
// another file and a timestamp.
func engineEvent() *enginev1.EngineEvent {
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

// marshal serializes m deterministically.
func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// changeEngineEventSchema writes a new revision of engine.event.v1's
// schema whose EngineEvent has one more field, and returns its KV revision,
// the subject's new version.
func changeEngineEventSchema(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	s, err := streams.SchemaOf(mustTopic(t, streams.TopicEngineEvent))
	if err != nil {
		t.Fatalf("SchemaOf: %v", err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(s.FileDescriptorSet, &set); err != nil {
		t.Fatalf("descriptor set: %v", err)
	}
	for _, f := range set.GetFile() {
		for _, m := range f.GetMessageType() {
			if f.GetPackage()+"."+m.GetName() == s.MessageType {
				m.Field = append(m.Field, &descriptorpb.FieldDescriptorProto{
					Name: proto.String("venue"), JsonName: proto.String("venue"), Number: proto.Int32(99),
					Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
					Type:  descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
				})
			}
		}
	}
	s.FileDescriptorSet = marshal(t, &set)
	value, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("encode schema: %v", err)
	}
	kv, err := js.KeyValue(t.Context(), streams.DefaultSchemaBucket)
	if err != nil {
		t.Fatalf("open bucket: %v", err)
	}
	revision, err := kv.Put(t.Context(), s.Topic, value)
	if err != nil {
		t.Fatalf("put schema: %v", err)
	}
	if revision > math.MaxInt32 {
		t.Fatalf("revision %d beyond a version", revision)
	}
	return int(revision) //nolint:gosec // checked against MaxInt32 above
}

// mustTopic returns a topic of the default catalog.
func mustTopic(t *testing.T, name string) streams.Topic {
	t.Helper()
	tp, err := streams.DefaultCatalog().Topic(name)
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	return tp
}
