package streams

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Profile is a topic's durability class; it decides its stream's storage,
// retention, deduplication and protection.
type Profile int

const (
	// Financial topics are the record of money and orders: file storage,
	// a Nats-Msg-Id duplicate window, delete and purge denied, replicated
	// across the cluster, nothing ever expires.
	Financial Profile = iota + 1
	// Config topics carry reference data: file storage, replicated, kept
	// forever, delete and purge denied; small.
	Config
	// MarketData topics are derived and disposable: memory storage, one
	// replica, messages expire after a maximum age; losing them loses
	// nothing because they are rebuilt from financial topics.
	MarketData
	// DeadLetter is the profile of dlq.<topic> streams: file storage,
	// replicated, kept until an operator redrives or purges them.
	DeadLetter
	// Snapshot is a profile of stores only (never of a topic): state a
	// service can rebuild from its topics, kept to make the rebuild short.
	Snapshot
)

// String returns the profile's lower-case name.
func (p Profile) String() string {
	switch p {
	case Financial:
		return "financial"
	case Config:
		return "config"
	case MarketData:
		return "marketdata"
	case DeadLetter:
		return "deadletter"
	case Snapshot:
		return "snapshot"
	default:
		return fmt.Sprintf("Profile(%d)", int(p))
	}
}

func (p Profile) valid() bool { return p >= Financial && p <= DeadLetter }

// immutable reports whether streams of the profile must deny delete and purge.
func (p Profile) immutable() bool { return p == Financial || p == Config }

// provisioning holds the settings EnsureStreams applies to every profile.
type provisioning struct {
	replicas        int
	duplicateWindow time.Duration
	marketDataAge   time.Duration
}

// ProvisionOption changes how EnsureStreams configures streams.
type ProvisionOption func(*provisioning)

// WithReplicas sets the replica count of financial, config and dead-letter
// streams: 3 on a 3-node cluster, 1 (the default) on a single server.
// Market data streams always have one replica.
func WithReplicas(n int) ProvisionOption {
	return func(p *provisioning) { p.replicas = n }
}

// WithDuplicateWindow sets how long JetStream remembers Nats-Msg-Id values
// to drop duplicates (default 2 minutes). Longer windows cost memory.
func WithDuplicateWindow(d time.Duration) ProvisionOption {
	return func(p *provisioning) { p.duplicateWindow = d }
}

// WithMarketDataMaxAge sets how long market data messages live (default 1 hour).
func WithMarketDataMaxAge(d time.Duration) ProvisionOption {
	return func(p *provisioning) { p.marketDataAge = d }
}

func newProvisioning(opts []ProvisionOption) (provisioning, error) {
	p := provisioning{replicas: 1, duplicateWindow: 2 * time.Minute, marketDataAge: time.Hour}
	for _, o := range opts {
		o(&p)
	}
	switch {
	case p.replicas < 1 || p.replicas > 5:
		return p, fmt.Errorf("%w: replicas %d: want 1 to 5", ErrInvalidConfig, p.replicas)
	case p.duplicateWindow <= 0:
		return p, fmt.Errorf("%w: duplicate window must be positive", ErrInvalidConfig)
	case p.marketDataAge <= 0:
		return p, fmt.Errorf("%w: market data max age must be positive", ErrInvalidConfig)
	}
	return p, nil
}

// streamConfig is the stream configuration of topic under profile.
func (p provisioning) streamConfig(topic string, profile Profile) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:        StreamName(topic),
		Description: fmt.Sprintf("topic %s (%s profile)", topic, profile),
		Subjects:    []string{topic + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    p.replicas,
		Duplicates:  p.duplicateWindow,
		AllowDirect: true,
	}
	switch profile {
	case Financial, Config:
		cfg.DenyDelete = true
		cfg.DenyPurge = true
		cfg.AllowAtomicPublish = true
	case MarketData:
		cfg.Storage = jetstream.MemoryStorage
		cfg.Replicas = 1
		cfg.MaxAge = p.marketDataAge
		cfg.Duplicates = min(p.duplicateWindow, p.marketDataAge)
		cfg.AllowMsgTTL = true
	case DeadLetter, Snapshot:
	}
	return cfg
}

// contradictions lists how existing contradicts want in ways an update
// cannot or must not fix: they would change what the profile guarantees.
func contradictions(profile Profile, existing, want jetstream.StreamConfig) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if existing.Storage != want.Storage {
		add("storage is %s, profile %s needs %s", existing.Storage, profile, want.Storage)
	}
	if existing.Retention != want.Retention {
		add("retention is %s, profile %s needs %s", existing.Retention, profile, want.Retention)
	}
	if len(existing.Subjects) != 1 || existing.Subjects[0] != want.Subjects[0] {
		add("subjects are %v, want [%s]", existing.Subjects, want.Subjects[0])
	}
	if profile.immutable() {
		if !existing.DenyDelete || !existing.DenyPurge {
			add("delete/purge are allowed, profile %s denies them", profile)
		}
		if existing.MaxAge != 0 || existing.MaxMsgs > 0 || existing.MaxBytes > 0 || existing.MaxMsgsPerSubject > 0 {
			add("limits (max age %s, msgs %d, bytes %d, per subject %d) would discard messages profile %s keeps forever",
				existing.MaxAge, existing.MaxMsgs, existing.MaxBytes, existing.MaxMsgsPerSubject, profile)
		}
	}
	if existing.Duplicates == 0 && profile != MarketData {
		add("no duplicate window, profile %s needs Nats-Msg-Id deduplication", profile)
	}
	return out
}
