package platform_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/platform"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/streams"
)

// No service can forge another's events: the server refuses a publish
// outside the user's permissions, and nothing is stored.
func TestAServiceCannotPublishAnotherServicesTopic(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	trade := forgedTrade()
	credit := &walletv1.BalanceChanged{EventId: "forged", AccountId: "mallory", Asset: "USDT", Available: "1000000", AvailableDelta: "1000000", Held: "0", HeldDelta: "0"}
	for _, tc := range []struct {
		name, user, topic, key string
		publish                func(*streams.Publisher, context.Context) error
	}{
		{"wallet forges an engine trade", "tradex-wallet", streams.TopicEngineEvent, "BTCUSDT", func(pub *streams.Publisher, ctx context.Context) error {
			_, err := pub.Publish(ctx, streams.TopicEngineEvent, "BTCUSDT", trade)
			return err
		}},
		{"matching forges a wallet credit", "tradex-matching", streams.TopicBalanceChanged, "mallory", func(pub *streams.Publisher, ctx context.Context) error {
			_, err := pub.Publish(ctx, streams.TopicBalanceChanged, "mallory", credit)
			return err
		}},
		{"a reader writes", platform.UserReader, streams.TopicEngineEvent, "BTCUSDT", func(pub *streams.Publisher, ctx context.Context) error {
			_, err := pub.Publish(ctx, streams.TopicEngineEvent, "BTCUSDT", trade)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := lastSeq(t, p.JetStream(), tc.topic)
			js, err := jetstream.New(p.Connect(tc.user))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			if err := tc.publish(streams.NewPublisher(js, streams.DefaultCatalog(), streams.WithPublishRetries(0)), ctx); err == nil {
				t.Fatalf("%s published to %s", tc.user, tc.topic)
			}
			if after := lastSeq(t, p.JetStream(), tc.topic); after != before {
				t.Fatalf("%s holds %d messages after the forgery, %d before", tc.topic, after, before)
			}
		})
	}
}

// lastSeq is the last sequence of topic's stream, read as the test's admin.
func lastSeq(t *testing.T, js jetstream.JetStream, topic string) uint64 {
	t.Helper()
	st, err := js.Stream(t.Context(), streams.StreamName(topic))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// forgedTrade is an engine trade that sells a victim's bitcoin for a cent.
func forgedTrade() *enginev1.EngineEvent {
	return &enginev1.EngineEvent{EventId: "BTCUSDT:99:0", InstrumentId: "BTCUSDT", Sequence: 99, EngineTime: timestamppb.Now(),
		Event: &enginev1.EngineEvent_Trade{Trade: &enginev1.Trade{TradeId: "forged", Price: "0.01", Quantity: "1.00000",
			TakerOrderId: "t", TakerAccountId: "mallory", MakerOrderId: "m", MakerAccountId: "victim"}}}
}

// The Kafka bridge's user publishes topics but cannot change or delete a
// stream, nor write a store.
func TestKafkaBridgeUserCannotManageStreams(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	js, err := jetstream.New(p.Connect(platform.UserKafkaBridge))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	stream := streams.StreamName(streams.TopicBalanceChanged)
	if err := js.DeleteStream(ctx, stream); err == nil {
		t.Fatalf("the bridge deleted %s", stream)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "HIJACK", Subjects: []string{"hijack.>"}}); err == nil {
		t.Fatal("the bridge created a stream")
	}
	if _, err := js.Publish(ctx, "$KV."+streams.DefaultSchemaBucket+"."+streams.TopicEngineEvent, []byte("{}")); err == nil {
		t.Fatal("the bridge rewrote a schema")
	}
	if _, err := p.JetStream().Stream(t.Context(), stream); err != nil {
		t.Fatalf("%s after the bridge's delete: %v", stream, err)
	}
}
