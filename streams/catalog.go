package streams

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	authv1 "github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
)

// Topic is one entry of the catalog: a Kafka-style topic and everything the
// mesh needs to know to carry it.
type Topic struct {
	// Name is the topic, also the Kafka topic name and the subject prefix:
	// messages for key K go to subject "<Name>.K". Lower-case words
	// separated by dots, ending in a version ("engine.event.v1").
	Name string
	// Payload is a value of the topic's message type; only its type matters.
	Payload proto.Message
	// Key says what the partition key is ("instrument", "account").
	Key string
	// Producers and Consumers name the services that write and read it.
	Producers, Consumers []string
	// Profile is the topic's durability profile.
	Profile Profile
	// Journal marks an event-sourced journal, written with
	// expected-last-subject-sequence checks: a copy appended by a redrive
	// would corrupt it, so DLQ.Redrive refuses the topic (reprocess its dead
	// letters by fixing the consumer and replaying it instead).
	Journal bool
}

// MessageName is the full protobuf name of the payload, also the ce-type header.
func (t Topic) MessageName() protoreflect.FullName {
	return t.Payload.ProtoReflect().Descriptor().FullName()
}

// Stream is the JetStream stream that stores the topic.
func (t Topic) Stream() string { return StreamName(t.Name) }

// DLQ is the dead-letter topic of this topic.
func (t Topic) DLQ() string { return DLQTopic(t.Name) }

// Catalog is the set of topics the mesh carries. It is immutable once built.
type Catalog struct {
	topics []Topic
	byName map[string]Topic
	stores []Store
}

// NewCatalog checks topics and builds a catalog of them.
func NewCatalog(topics ...Topic) (*Catalog, error) {
	c := &Catalog{byName: make(map[string]Topic, len(topics))}
	for _, t := range topics {
		if err := validateTopic(t); err != nil {
			return nil, err
		}
		if _, dup := c.byName[t.Name]; dup {
			return nil, fmt.Errorf("%w: topic %q listed twice", ErrInvalidConfig, t.Name)
		}
		c.byName[t.Name] = t
		c.topics = append(c.topics, t)
	}
	return c, nil
}

// Topic returns the named topic, or an error wrapping ErrUnknownTopic.
func (c *Catalog) Topic(name string) (Topic, error) {
	t, ok := c.byName[name]
	if !ok {
		return Topic{}, fmt.Errorf("%w %q", ErrUnknownTopic, name)
	}
	return t, nil
}

// Topics returns every topic in catalog order.
func (c *Catalog) Topics() []Topic { return slices.Clone(c.topics) }

// Topic names of DefaultCatalog.
const (
	TopicOrderCommand      = "engine.order.v1"
	TopicEngineEvent       = "engine.event.v1"
	TopicBalanceChanged    = "wallet.balance.changed.v1"
	TopicInstrumentCreated = "md.instrument.created.v1"
	TopicInstrumentUpdated = "md.instrument.updated.v1"
	TopicConfigChanged     = "md.config.changed.v1"
	TopicUserEvent         = "auth.user.v1"
	TopicTrade             = "md.trade.v1"
	TopicBook              = "md.book.v1"
	TopicMark              = "md.mark.v1"
)

// DefaultCatalog is the TradeX topic catalog of DESIGN.md, with the
// services' stores.
func DefaultCatalog() *Catalog {
	c := defaultTopics()
	c.stores = defaultStores() // checked by a test through WithStores
	return c
}

// defaultTopics are the topics of DefaultCatalog.
func defaultTopics() *Catalog {
	all := []string{"all"}
	return catalogOf( // the table is checked by a test through NewCatalog
		Topic{Name: TopicOrderCommand, Payload: &enginev1.OrderCommand{}, Key: "instrument",
			Producers: []string{"order"}, Consumers: []string{"matching"}, Profile: Financial},
		Topic{Name: TopicEngineEvent, Payload: &enginev1.EngineEvent{}, Key: "instrument",
			Producers: []string{"matching"}, Consumers: []string{"order", "wallet", "marketdata"}, Profile: Financial},
		Topic{Name: TopicBalanceChanged, Payload: &walletv1.BalanceChanged{}, Key: "account",
			Producers: []string{"wallet"}, Consumers: []string{"order", "gateway", "any"}, Profile: Financial, Journal: true},
		Topic{Name: TopicInstrumentCreated, Payload: &metadatav1.InstrumentCreated{}, Key: "instrument",
			Producers: []string{"metadata"}, Consumers: all, Profile: Config},
		Topic{Name: TopicInstrumentUpdated, Payload: &metadatav1.InstrumentUpdated{}, Key: "instrument",
			Producers: []string{"metadata"}, Consumers: all, Profile: Config},
		Topic{Name: TopicConfigChanged, Payload: &metadatav1.ConfigChanged{}, Key: "config key",
			Producers: []string{"metadata"}, Consumers: all, Profile: Config},
		Topic{Name: TopicUserEvent, Payload: &authv1.UserEvent{}, Key: "user id",
			Producers: []string{"auth"}, Consumers: []string{"user"}, Profile: Financial},
		Topic{Name: TopicTrade, Payload: &marketdatav1.Trade{}, Key: "instrument",
			Producers: []string{"marketdata"}, Consumers: []string{"gateway", "any"}, Profile: MarketData},
		Topic{Name: TopicBook, Payload: &marketdatav1.BookDelta{}, Key: "instrument",
			Producers: []string{"marketdata"}, Consumers: []string{"gateway", "any"}, Profile: MarketData},
		Topic{Name: TopicMark, Payload: &marketdatav1.MarkPrice{}, Key: "instrument",
			Producers: []string{"marketdata"}, Consumers: []string{"gateway", "any"}, Profile: MarketData},
	)
}

// catalogOf builds a catalog of topics known to be valid.
func catalogOf(topics ...Topic) *Catalog {
	c := &Catalog{topics: topics, byName: make(map[string]Topic, len(topics))}
	for _, t := range topics {
		c.byName[t.Name] = t
	}
	return c
}

// dlqPrefix starts every dead-letter topic.
const dlqPrefix = "dlq."

// DLQTopic is the dead-letter topic of topic: "dlq.<topic>".
func DLQTopic(topic string) string { return dlqPrefix + topic }

// StreamName maps a topic to its stream name: stream names cannot contain
// '.', so "engine.event.v1" becomes "ENGINE_EVENT_V1" and
// "dlq.engine.event.v1" becomes "DLQ_ENGINE_EVENT_V1".
func StreamName(topic string) string {
	return strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(topic))
}

// Subject is where a message of topic with partition key key goes:
// "<topic>.<key>". The key must be a valid subject token.
func Subject(topic, key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return topic + "." + key, nil
}

// maxKeyLen bounds a key; subjects stay short enough for every client.
const maxKeyLen = 128

// ValidateKey accepts a non-empty key of at most 128 printable ASCII
// characters with none of '.', '*', '>' or whitespace: exactly one subject token.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > maxKeyLen {
		return fmt.Errorf("%w %.20q...: longer than %d bytes", ErrInvalidKey, key, maxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c <= ' ' || c >= 0x7f:
			return fmt.Errorf("%w %q: byte %d is whitespace, control or non-ASCII", ErrInvalidKey, key, i)
		case c == '.' || c == '*' || c == '>':
			return fmt.Errorf("%w %q: %q is not allowed in a subject token", ErrInvalidKey, key, c)
		}
	}
	return nil
}

// KeyFromSubject returns the key of a subject of topic, or false when the
// subject does not belong to the topic.
func KeyFromSubject(topic, subject string) (string, bool) {
	key, ok := strings.CutPrefix(subject, topic+".")
	if !ok || ValidateKey(key) != nil {
		return "", false
	}
	return key, true
}

// validateTopic checks one catalog entry.
func validateTopic(t Topic) error {
	switch {
	case t.Name == "" || strings.ContainsAny(t.Name, "*> \t") || strings.HasPrefix(t.Name, ".") || strings.HasSuffix(t.Name, ".") || strings.Contains(t.Name, ".."):
		return fmt.Errorf("%w: topic name %q is not dot-separated tokens", ErrInvalidConfig, t.Name)
	case strings.HasPrefix(t.Name, dlqPrefix):
		return fmt.Errorf("%w: topic %q: the %q prefix is reserved for dead-letter topics", ErrInvalidConfig, t.Name, dlqPrefix)
	case t.Payload == nil:
		return fmt.Errorf("%w: topic %q has no payload type", ErrInvalidConfig, t.Name)
	case !t.Profile.valid():
		return fmt.Errorf("%w: topic %q has no profile", ErrInvalidConfig, t.Name)
	}
	return nil
}
