package schemaregistry_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/compattest"
	"github.com/tradex-mesh/tradex/streams"
)

// nodeDecoder returns the node binary and the decode script, skipping the
// test (failing it when compatEnv requires them) when either is missing.
func nodeDecoder(t *testing.T) (node, script string) {
	t.Helper()
	missing := func(what string, err error) {
		t.Helper()
		compattest.Missing(t, what, "install Node, then npm ci in the module root", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not found", err)
	}
	if _, err := os.Stat(filepath.Join("..", "..", "node_modules", "@kafkajs", "confluent-schema-registry", "package.json")); err != nil {
		missing("npm package @kafkajs/confluent-schema-registry not installed", err)
	}
	script, err = filepath.Abs(filepath.Join("testdata", "decode.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	return node, script
}

// nodeDecoded is what decode.mjs prints.
type nodeDecoded struct {
	Via     string         `json:"via"`
	Type    string         `json:"type"`
	Message map[string]any `json:"message"`
}

func TestNodeSchemaRegistryClientDecodesEvents(t *testing.T) {
	t.Parallel()
	node, script := nodeDecoder(t)
	idx := build(t, publishedJetStream(t))
	base := serve(t, idx)
	cases := []struct {
		topic string
		event proto.Message
		via   string
	}{
		// EngineEvent is not engine.proto's first message (indexes [n], n > 0).
		{streams.TopicEngineEvent, engineEvent(), "registry.getSchema+messageName"},
		// OrderCommand is its first (indexes [0]): registry.decode alone.
		{streams.TopicOrderCommand, orderCommand(), "registry.decode"},
	}
	for _, c := range cases {
		t.Run(c.topic, func(t *testing.T) {
			t.Parallel()
			value, err := idx.Encode(c.topic, marshal(t, c.event))
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), node, script, base, testUser, testPassword, hex.EncodeToString(value))
			out, err := cmd.Output()
			if err != nil {
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					t.Fatalf("node decode.mjs: %v\n%s", err, exit.Stderr)
				}
				t.Fatalf("node decode.mjs: %v", err)
			}
			var got nodeDecoded
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("decode.mjs printed %s: %v", out, err)
			}
			if got.Via != c.via || got.Type != string(c.event.ProtoReflect().Descriptor().FullName()) {
				t.Errorf("decoded via %s as %s, want via %s as %s", got.Via, got.Type, c.via, c.event.ProtoReflect().Descriptor().FullName())
			}
			if want := protobufjsObject(t, c.event); !reflect.DeepEqual(got.Message, want) {
				t.Errorf("node decoded\n%v\nwant\n%v", got.Message, want)
			}
		})
	}
}

// orderCommand is a submit with a timestamp, enums and int32 fields.
func orderCommand() *enginev1.OrderCommand {
	return &enginev1.OrderCommand{
		CommandId: "cmd-9", InstrumentId: "ETHUSDT",
		SentAt: timestamppb.New(time.Date(2026, 4, 2, 8, 0, 1, 500, time.UTC)),
		Command: &enginev1.OrderCommand_Submit{Submit: &enginev1.SubmitOrder{
			OrderId: "o-9", AccountId: "acc-9", Side: commonv1.Side_SIDE_BUY, Type: commonv1.OrderType_ORDER_TYPE_LIMIT,
			TimeInForce: commonv1.TimeInForce_TIME_IN_FORCE_GTC, PostOnly: true,
			Price: "3000.25", Quantity: "2", PriceScale: 2, QuantityScale: 4,
		}},
	}
}

// protobufjsObject is m as protobufjs's toJSON renders it: protojson's
// lowerCamel names, 64-bit integers as strings and enums by name, but a
// Timestamp as its {seconds, nanos} fields.
func protobufjsObject(t *testing.T, m proto.Message) map[string]any {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	timestamps := map[string]*timestamppb.Timestamp{}
	switch m := m.(type) {
	case *enginev1.EngineEvent:
		timestamps["engineTime"] = m.GetEngineTime()
	case *enginev1.OrderCommand:
		timestamps["sentAt"] = m.GetSentAt()
	}
	for field, ts := range timestamps {
		out[field] = map[string]any{"seconds": strconv.FormatInt(ts.GetSeconds(), 10), "nanos": float64(ts.GetNanos())}
	}
	return out
}
