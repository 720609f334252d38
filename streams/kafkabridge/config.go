package kafkabridge

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/tradex-mesh/tradex/streams"
	"github.com/tradex-mesh/tradex/streams/schemaregistry"
)

// Direction says which way a topic crosses the bridge.
type Direction uint8

// Directions. Both is Export and Import at once: the origin header keeps a
// message from coming back the way it went.
const (
	Export Direction = 1 << iota // JetStream -> Kafka
	Import                       // Kafka -> JetStream
	Both   = Export | Import
)

// String is the direction's name as ParseRoutes reads it.
func (d Direction) String() string {
	switch d {
	case Export:
		return "export"
	case Import:
		return "import"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// ParseDirection reads "export", "import" or "both".
func ParseDirection(s string) (Direction, error) {
	for _, d := range []Direction{Export, Import, Both} {
		if s == d.String() {
			return d, nil
		}
	}
	return 0, fmt.Errorf("kafkabridge: direction %q: want export, import or both", s)
}

// Route bridges one catalog topic; the Kafka topic has the same name.
type Route struct {
	Topic     string
	Direction Direction
}

// ParseRoutes reads "topic=direction[,topic=direction...]", for example
// "engine.event.v1=export,auth.user.v1=both".
func ParseRoutes(s string) ([]Route, error) {
	var routes []Route
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		topic, dir, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("kafkabridge: route %q: want topic=export|import|both", item)
		}
		d, err := ParseDirection(strings.TrimSpace(dir))
		if err != nil {
			return nil, fmt.Errorf("kafkabridge: route %q: %w", item, err)
		}
		routes = append(routes, Route{Topic: strings.TrimSpace(topic), Direction: d})
	}
	return routes, nil
}

// SASL mechanisms SASLMechanism knows.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASLMechanism is the Kafka SASL mechanism named (PLAIN, SCRAM-SHA-256 or
// SCRAM-SHA-512, any case) with the user and password. PLAIN sends the
// password as it is: use it over TLS only.
func SASLMechanism(name, user, password string) (sasl.Mechanism, error) {
	if user == "" || password == "" {
		return nil, errors.New("kafkabridge: SASL needs a user and a password")
	}
	switch strings.ToUpper(name) {
	case SASLPlain:
		return plain.Auth{User: user, Pass: password}.AsMechanism(), nil
	case SASLScramSHA256:
		return scram.Auth{User: user, Pass: password}.AsSha256Mechanism(), nil
	case SASLScramSHA512:
		return scram.Auth{User: user, Pass: password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafkabridge: SASL mechanism %q: want %s, %s or %s", name, SASLPlain, SASLScramSHA256, SASLScramSHA512)
}

// WireFormat is how an exported record's value holds its payload.
type WireFormat uint8

// Wire formats.
const (
	// WireProtobuf writes the protobuf payload as it is (the default).
	WireProtobuf WireFormat = iota
	// WireConfluent writes Confluent's wire format: a zero byte, the
	// schema id (4 bytes, big-endian), the message indexes, then the
	// payload, for consumers that decode through a schema registry
	// (package schemaregistry serves the ids).
	WireConfluent
)

// String is the format's name as ParseWireFormat reads it.
func (f WireFormat) String() string {
	switch f {
	case WireProtobuf:
		return "protobuf"
	case WireConfluent:
		return "confluent"
	}
	return fmt.Sprintf("WireFormat(%d)", uint8(f))
}

// ParseWireFormat reads "protobuf" or "confluent".
func ParseWireFormat(s string) (WireFormat, error) {
	for _, f := range []WireFormat{WireProtobuf, WireConfluent} {
		if s == f.String() {
			return f, nil
		}
	}
	return 0, fmt.Errorf("kafkabridge: wire format %q: want protobuf or confluent", s)
}

// Config is what a Bridge connects and carries.
type Config struct {
	// Brokers are the Kafka seed brokers ("host:port").
	Brokers []string
	// Routes are the topics bridged and their directions.
	Routes []Route
	// Name is the bridge's identity: the Kafka consumer group of its
	// imports and the durable JetStream consumer of each export, shared by
	// every replica of the bridge (default "tradex-kafka-bridge").
	Name string
	// Partitions and ReplicationFactor are used for Kafka topics the
	// bridge creates when they are missing (defaults 6 and -1: the
	// brokers' default).
	Partitions        int32
	ReplicationFactor int16
	// TLS, when set, is used for every Kafka connection.
	TLS *tls.Config
	// SASL, when set, authenticates every Kafka connection (PLAIN,
	// SCRAM-SHA-256 or SCRAM-SHA-512: see SASLMechanism).
	SASL sasl.Mechanism
	// WireFormat is how exported values are written. Imported values may
	// come either way: a value in Confluent's wire format (its first byte
	// is zero, which no protobuf message starts with) must carry one of
	// the topic's schema ids, and is stored without its header.
	WireFormat WireFormat
	// Schemas gives the schema ids; nil: the bridge follows the platform's
	// schema registry itself (schemaregistry.Open).
	Schemas schemaregistry.Source
	// Batch bounds the messages one export fetch and one import poll take
	// (default 1000, the largest atomic batch JetStream takes).
	Batch int
	// AckWait is how long JetStream waits for an export's ack before it
	// redelivers (default 30 s); PinnedTTL how long an export stays pinned
	// to a replica that stopped pulling before another takes over (default
	// 10 s).
	AckWait, PinnedTTL time.Duration
	// LookBack bounds how many records of a Kafka partition an export reads
	// back to find what it already wrote, when JetStream redelivers
	// (default 10,000).
	LookBack int64
	// Logger receives the bridge's log (default slog.Default()).
	Logger *slog.Logger
	// Metrics, when set, registers the bridge's Prometheus metrics.
	Metrics prometheus.Registerer

	// storeWay, when set (tests), forces how imports are stored
	// (storeAsync or storeAtomic).
	storeWay *int

	// crash, when set (tests), is asked at each point between a write and
	// its ack or commit; an error ends Run there, as a killed process would.
	crash func(point string) error
}

// Points where a test may crash the bridge.
const (
	crashExportProduced = "export: produced, not acked"
	crashExportAcked    = "export: partly acked"
	crashImportStored   = "import: stored, not committed"
	crashImportPartly   = "import: partly stored"
)

// DefaultName is the default Config.Name.
const DefaultName = "tradex-kafka-bridge"

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Partitions == 0 {
		c.Partitions = 6
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.Batch == 0 {
		c.Batch = 1000
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.PinnedTTL == 0 {
		c.PinnedTTL = 10 * time.Second
	}
	if c.LookBack == 0 {
		c.LookBack = 10_000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// check validates the configuration against the catalog.
func (c Config) check(catalog *streams.Catalog) error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no Kafka brokers"))
	}
	if len(c.Routes) == 0 {
		errs = append(errs, errors.New("no routes: name the topics to bridge"))
	}
	seen := map[string]bool{}
	for _, r := range c.Routes {
		if _, err := catalog.Topic(r.Topic); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", r.Topic, err))
		}
		if r.Direction == 0 || r.Direction&^Both != 0 {
			errs = append(errs, fmt.Errorf("route %s: direction %v", r.Topic, r.Direction))
		}
		if seen[r.Topic] {
			errs = append(errs, fmt.Errorf("route %s: named twice", r.Topic))
		}
		seen[r.Topic] = true
	}
	if c.WireFormat > WireConfluent {
		errs = append(errs, fmt.Errorf("wire format %v", c.WireFormat))
	}
	if c.Partitions < 1 || c.Batch < 1 || c.LookBack < 1 || c.AckWait <= 0 || c.PinnedTTL <= 0 {
		errs = append(errs, errors.New("partitions, batch, look-back, ack wait and pinned TTL must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafkabridge: %w", err)
	}
	return nil
}

// topics returns the topics of the routes that go direction d.
func (c Config) topics(d Direction) []string {
	var out []string
	for _, r := range c.Routes {
		if r.Direction&d != 0 {
			out = append(out, r.Topic)
		}
	}
	slices.Sort(out)
	return out
}
