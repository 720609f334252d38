package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
	"github.com/tradex-mesh/tradex/streams/schemaregistry"
)

// tradex serve --kafka-* exports the platform's trades to Kafka as they
// happen, and a separate `tradex bridge`, logged in to the platform's NATS
// as tradex-kafka-bridge with the data folder's credentials, imports what
// a Kafka producer writes.
func TestBridgeCarriesThePlatformsTopics(t *testing.T) {
	t.Parallel()
	kafka, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kafka.Close)
	brokers := strings.Join(kafka.ListenAddrs(), ",")
	cfg := testServeConfig(t)
	cfg.NATSListen = "127.0.0.1:0"
	cfg.Kafka.Brokers, cfg.Kafka.Routes, cfg.Kafka.Name, cfg.Kafka.Partitions = brokers, streams.TopicTrade+"=export", "in-serve", 2
	cfg.Kafka.WireFormat, cfg.Kafka.RegistryAddr = "confluent", freeLoopbackAddr(t)
	ep, _ := startServe(t, cfg)

	ctx, cancel := context.WithCancel(t.Context())
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"bridge", "--nats", ep.NATS, "--nats-credentials", filepath.Join(cfg.DataDir, natsCredentialsFile),
			"--kafka-brokers", brokers, "--kafka-routes", streams.TopicConfigChanged + "=import", "--kafka-name", "standalone",
			"--kafka-partitions", "1"}, func(string) string { return "" }, io.Discard, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("tradex bridge: %v\n%s", err, stderr.String())
		}
	})

	// A trade on the platform reaches Kafka.
	crossOrders(t, "http://"+ep.GRPC)
	consumer, err := kgo.NewClient(kgo.SeedBrokers(kafka.ListenAddrs()...), kgo.ConsumeTopics(streams.TopicTrade),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var trade marketdatav1.Trade
	var schemaID int32
	polltest.Until(t, "the trade in Kafka", func() error {
		pctx, pcancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer pcancel()
		recs := consumer.PollFetches(pctx).Records()
		switch {
		case len(recs) == 0:
			return errors.New("no record yet")
		case string(recs[0].Key) != "BTCUSDT":
			return fmt.Errorf("record with key %q", recs[0].Key)
		}
		id, _, payload, err := schemaregistry.ParseHeader(recs[0].Value)
		if err != nil {
			return fmt.Errorf("value not in Confluent's wire format: %w", err)
		}
		schemaID = id
		return proto.Unmarshal(payload, &trade)
	}, polltest.WithTimeout(60*time.Second))
	if trade.GetPrice() != "50000.00" || trade.GetQuantity() != "0.01000" {
		t.Errorf("trade in Kafka: %v", &trade)
	}
	// The schema registry serves that id, with the password kept in the data folder.
	password, err := os.ReadFile(filepath.Join(cfg.DataDir, schemaRegistryPasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	if code, body := getBasic(t, "http://"+cfg.Kafka.RegistryAddr+fmt.Sprintf("/schemas/ids/%d", schemaID), "tradex", strings.TrimSpace(string(password))); code != http.StatusOK ||
		!strings.Contains(body, "message Trade") {
		t.Errorf("GET /schemas/ids/%d: %d %s", schemaID, code, body)
	}
	if code, _ := getBasic(t, "http://"+cfg.Kafka.RegistryAddr+"/subjects", "tradex", "guess"); code != http.StatusUnauthorized {
		t.Errorf("GET /subjects with a wrong password: %d, want 401", code)
	}

	// A record a Kafka producer writes reaches the platform's stream.
	payload, err := proto.Marshal(&metadatav1.ConfigChanged{})
	if err != nil {
		t.Fatal(err)
	}
	producer, err := kgo.NewClient(kgo.SeedBrokers(kafka.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	polltest.Until(t, "the topic created by the bridge", func() error {
		return producer.ProduceSync(t.Context(), &kgo.Record{Topic: streams.TopicConfigChanged, Key: []byte("from-kafka"), Value: payload}).FirstErr()
	})
	js := jetStreamAt(t, ep.NATS, filepath.Join(cfg.DataDir, natsCredentialsFile))
	polltest.Until(t, "the record in the stream", func() error {
		st, err := js.Stream(t.Context(), streams.StreamName(streams.TopicConfigChanged))
		if err != nil {
			return err
		}
		m, err := st.GetLastMsgForSubject(t.Context(), streams.TopicConfigChanged+".from-kafka")
		if err != nil {
			return err
		}
		if m.Header.Get(streams.HeaderOrigin) != "kafka" {
			return fmt.Errorf("headers %v", m.Header)
		}
		return nil
	}, polltest.WithTimeout(60*time.Second))
}

func TestBridgeFlagsRefuseWhatCannotWork(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--kafka-routes", "engine.event.v1=export"}, nil, "--kafka-brokers"},
		{[]string{"--kafka-brokers", "k:9092"}, nil, "--kafka-routes"},
		{[]string{"--kafka-brokers", "k:9092", "--kafka-routes", "engine.event.v1=sideways"}, nil, "sideways"},
		{[]string{"--kafka-brokers", "k:9092", "--kafka-routes", "no.such.v1=export"}, nil, "no.such.v1"},
		{[]string{"--kafka-brokers", "k:9092", "--kafka-routes", "engine.event.v1=export", "--kafka-partitions", "0"}, nil, "--kafka-partitions"},
		{[]string{"--kafka-brokers", "k:9092", "--kafka-routes", "engine.event.v1=export", "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-user", "u"},
			map[string]string{"TRADEX_KAFKA_SASL_PASSWORD": "p"}, "--kafka-tls"},
		{[]string{"--kafka-brokers", "k:9092", "--kafka-routes", "engine.event.v1=export", "--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-user", "u"}, nil, "KAFKA_SASL_PASSWORD"},
		{[]string{"--kafka-brokers", "k:9092", "--kafka-routes", "engine.event.v1=export", "--http-addr", "127.0.0.1:0"}, nil, "--http-password-file"},
	} {
		getenv := func(k string) string { return c.env[k] }
		var stderr bytes.Buffer
		err := run(t.Context(), append([]string{"bridge", "--nats", "nats://127.0.0.1:1", "--nats-credentials", ""}, c.args...), getenv, io.Discard, &stderr)
		if err == nil || !strings.Contains(err.Error()+stderr.String(), c.want) {
			t.Errorf("tradex bridge %v: %v (%s), want an error naming %s", c.args, err, stderr.String(), c.want)
		}
	}
}

// The bridge's /metrics answers only with the password; /healthz to anyone.
func TestBridgeHTTPNeedsThePassword(t *testing.T) {
	t.Parallel()
	passwordPath := filepath.Join(t.TempDir(), "password")
	password, err := passwordFile(passwordPath, "--http-password-file")
	if err != nil || len(password) < 32 {
		t.Fatalf("generated password %q: %v", password, err)
	}
	if again, err := passwordFile(passwordPath, "--http-password-file"); err != nil || again != password {
		t.Fatalf("password read back: %q, %v; want the one generated", again, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "tradex_kafka_bridge_test_total", Help: "a test"}))
	srv := httptest.NewServer(bridgeHTTPHandler("tradex", password, reg))
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		path, user, pass string
		want             int
	}{
		{"/metrics", "", "", http.StatusUnauthorized},
		{"/metrics", "tradex", "guess", http.StatusUnauthorized},
		{"/metrics", "admin", password, http.StatusUnauthorized},
		{"/healthz", "", "", http.StatusOK},
	} {
		if code, _ := getBasic(t, srv.URL+c.path, c.user, c.pass); code != c.want {
			t.Errorf("GET %s as %q: %d, want %d", c.path, c.user, code, c.want)
		}
	}
	if code, body := getBasic(t, srv.URL+"/metrics", "tradex", password); code != http.StatusOK || !strings.Contains(body, "tradex_kafka_bridge_test_total") {
		t.Errorf("GET /metrics with the password: %d %q", code, body)
	}
}

// freeLoopbackAddr is a loopback address nobody listens on now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// getBasic GETs url with HTTP Basic credentials (none when user is
// empty) and returns the status and body.
func getBasic(t *testing.T, url, user, pass string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}
