package streams_test

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/streams"
)

func TestDefaultCatalogIsValid(t *testing.T) {
	t.Parallel()
	c := streams.DefaultCatalog()
	if _, err := streams.NewCatalog(c.Topics()...); err != nil {
		t.Fatalf("the default catalog does not pass NewCatalog: %v", err)
	}
	want := map[string]string{
		"engine.order.v1":           "tradex.engine.v1.OrderCommand",
		"engine.event.v1":           "tradex.engine.v1.EngineEvent",
		"wallet.balance.changed.v1": "tradex.wallet.v1.BalanceChanged",
		"md.instrument.created.v1":  "tradex.metadata.v1.InstrumentCreated",
		"md.instrument.updated.v1":  "tradex.metadata.v1.InstrumentUpdated",
		"md.config.changed.v1":      "tradex.metadata.v1.ConfigChanged",
		"auth.user.v1":              "tradex.auth.v1.UserEvent",
		"md.trade.v1":               "tradex.marketdata.v1.Trade",
		"md.book.v1":                "tradex.marketdata.v1.BookDelta",
		"md.mark.v1":                "tradex.marketdata.v1.MarkPrice", // not in DESIGN.md's list: issue 15 asks for it
	}
	if got := len(c.Topics()); got != len(want) {
		t.Errorf("catalog has %d topics, DESIGN.md lists %d and issue 15 one more", got, len(want)-1)
	}
	for name, msg := range want {
		topic, err := c.Topic(name)
		if err != nil {
			t.Errorf("topic %s: %v", name, err)
			continue
		}
		if string(topic.MessageName()) != msg {
			t.Errorf("topic %s carries %s, want %s", name, topic.MessageName(), msg)
		}
	}
	profiles := map[string]streams.Profile{
		"engine.event.v1": streams.Financial, "md.config.changed.v1": streams.Config, "md.book.v1": streams.MarketData,
	}
	for name, p := range profiles {
		if topic, _ := c.Topic(name); topic.Profile != p {
			t.Errorf("topic %s has profile %s, want %s", name, topic.Profile, p)
		}
	}
	if topic, _ := c.Topic("wallet.balance.changed.v1"); !topic.Journal {
		t.Error("the wallet journal is not marked Journal: a redrive could append to it")
	}
	if _, err := c.Topic("engine.events.v1"); !errors.Is(err, streams.ErrUnknownTopic) {
		t.Errorf("unknown topic: err = %v, want ErrUnknownTopic", err)
	}
}

func TestStreamName(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"engine.event.v1":           "ENGINE_EVENT_V1",
		"wallet.balance.changed.v1": "WALLET_BALANCE_CHANGED_V1",
		"dlq.engine.event.v1":       "DLQ_ENGINE_EVENT_V1",
		"md.trade-feed.v1":          "MD_TRADE_FEED_V1",
	}
	for topic, want := range tests {
		if got := streams.StreamName(topic); got != want {
			t.Errorf("StreamName(%q) = %q, want %q", topic, got, want)
		}
		if strings.ContainsAny(streams.StreamName(topic), ". *>") {
			t.Errorf("StreamName(%q) contains a character stream names cannot have", topic)
		}
	}
}

func TestSubjectAndKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key     string
		want    string
		wantErr bool
	}{
		{key: "BTCUSDT", want: "engine.event.v1.BTCUSDT"},
		{key: "BTCUSDT-PERP", want: "engine.event.v1.BTCUSDT-PERP"},
		{key: "acct_42:main", want: "engine.event.v1.acct_42:main"},
		{key: "", wantErr: true},
		{key: "BTC.USDT", wantErr: true},
		{key: "*", wantErr: true},
		{key: ">", wantErr: true},
		{key: "BTC USDT", wantErr: true},
		{key: "tab\there", wantErr: true},
		{key: "ünïcode", wantErr: true},
		{key: strings.Repeat("k", 129), wantErr: true},
		{key: strings.Repeat("k", 128), want: "engine.event.v1." + strings.Repeat("k", 128)},
	}
	for _, tt := range tests {
		got, err := streams.Subject("engine.event.v1", tt.key)
		if tt.wantErr {
			if !errors.Is(err, streams.ErrInvalidKey) {
				t.Errorf("Subject(key %q): err = %v, want ErrInvalidKey", tt.key, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Subject(key %q) = %q, %v; want %q", tt.key, got, err, tt.want)
		}
		if key, ok := streams.KeyFromSubject("engine.event.v1", got); !ok || key != tt.key {
			t.Errorf("KeyFromSubject(%q) = %q, %v; want %q", got, key, ok, tt.key)
		}
	}
	if _, ok := streams.KeyFromSubject("engine.event.v1", "engine.order.v1.BTCUSDT"); ok {
		t.Error("KeyFromSubject accepted a subject of another topic")
	}
}

func TestNewCatalogRejects(t *testing.T) {
	t.Parallel()
	ok := streams.Topic{Name: "a.b.v1", Payload: &enginev1.EngineEvent{}, Profile: streams.Financial}
	tests := map[string][]streams.Topic{
		"duplicate":       {ok, ok},
		"no payload":      {{Name: "a.b.v1", Profile: streams.Financial}},
		"no profile":      {{Name: "a.b.v1", Payload: &wrapperspb.BytesValue{}}},
		"wildcard":        {{Name: "a.*.v1", Payload: &wrapperspb.BytesValue{}, Profile: streams.Config}},
		"empty token":     {{Name: "a..v1", Payload: &wrapperspb.BytesValue{}, Profile: streams.Config}},
		"reserved dlq":    {{Name: "dlq.a.v1", Payload: &wrapperspb.BytesValue{}, Profile: streams.Config}},
		"trailing dot":    {{Name: "a.v1.", Payload: &wrapperspb.BytesValue{}, Profile: streams.Config}},
		"empty name":      {{Payload: &wrapperspb.BytesValue{}, Profile: streams.Config}},
		"unknown profile": {{Name: "a.v1", Payload: &wrapperspb.BytesValue{}, Profile: streams.Profile(99)}},
	}
	for name, topics := range tests {
		if _, err := streams.NewCatalog(topics...); !errors.Is(err, streams.ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
}
