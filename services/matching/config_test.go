package matching

import (
	"errors"
	"strings"
	"testing"

	"github.com/tradex-mesh/tradex/streams"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		change  func(c *Config)
		wantErr string
	}{
		{"default", func(*Config) {}, ""},
		{"shard", func(c *Config) { c.Instruments = []string{"BTCUSDT", "ETHUSDT"} }, ""},
		{"no consumer name", func(c *Config) { c.ConsumerName = "" }, "required"},
		{"no bucket", func(c *Config) { c.SnapshotBucket = "" }, "required"},
		{"zero batch", func(c *Config) { c.BatchCommands = 0 }, "positive"},
		{"zero interval", func(c *Config) { c.SnapshotInterval = 0 }, "positive"},
		{"zero ack wait", func(c *Config) { c.AckWait = 0 }, "positive"},
		{"bad instrument", func(c *Config) { c.Instruments = []string{"BTC.USDT"} }, "BTC.USDT"},
		{"instrument twice", func(c *Config) { c.Instruments = []string{"BTCUSDT", "BTCUSDT"} }, "twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := Default()
			tc.change(&cfg)
			err := cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate: %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}

func TestNewNeedsDeps(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	client := streams.NewClient(s.JetStream(), streams.DefaultCatalog())
	if _, err := New(Default(), Deps{}); err == nil {
		t.Error("New without Streams succeeded")
	}
	if _, err := New(Default(), Deps{Streams: client}); err == nil {
		t.Error("New without Publisher succeeded")
	}
	pub := client.Publisher()
	if _, err := New(Config{}, Deps{Streams: client, Publisher: pub}); err == nil {
		t.Error("New with an empty config succeeded")
	}
	cfg := Default()
	cfg.SnapshotBucket = "tradex_not_in_catalog"
	if _, err := New(cfg, Deps{Streams: client, Publisher: pub}); !errors.Is(err, streams.ErrUnknownStore) {
		t.Errorf("New with a bucket the catalog lacks: %v, want ErrUnknownStore", err)
	}
}

func TestShardServesItsInstrumentsOnly(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	cfg := testConfig()
	cfg.Instruments = []string{"ETHUSDT"}
	start(t, s, cfg)
	seqs := send(t, s.JetStream(),
		submit("BTCUSDT", "b1", "a", buy, limit, gtc, "1", "1"),
		submit("ETHUSDT", "e1", "a", buy, limit, gtc, "1", "1"),
	)
	waitInput(t, s.JetStream(), "ETHUSDT", seqs[1])
	if evs, _ := stored(t, s.JetStream(), "BTCUSDT"); len(evs) != 0 {
		t.Fatalf("the ETHUSDT shard published %d BTCUSDT events", len(evs))
	}
	info, err := s.JetStream().Consumer(t.Context(), streams.StreamName(streams.TopicOrderCommand), "matching-engine-ETHUSDT")
	if err != nil {
		t.Fatal(err)
	}
	if got := info.CachedInfo().Config.FilterSubjects; len(got) != 1 || got[0] != "engine.order.v1.ETHUSDT" {
		if f := info.CachedInfo().Config.FilterSubject; f != "engine.order.v1.ETHUSDT" {
			t.Fatalf("consumer filters %v %q", got, f)
		}
	}
}
