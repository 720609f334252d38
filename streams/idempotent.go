package streams

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/proto"
)

// DefaultIdempotencyBucket is the KV bucket that holds idempotency records.
const DefaultIdempotencyBucket = "tradex_idempotency"

// Errors of the idempotency store, told apart with errors.Is.
var (
	// ErrInFlight: another delivery of the same event holds the claim (in
	// this instance or another) and has not finished; retry later.
	ErrInFlight = errors.New("event is being handled elsewhere")
	// ErrNoEventID: a message has neither a ce-id nor a message id, so it
	// cannot be recognised when it comes again.
	ErrNoEventID = errors.New("message has no event id")
)

// IdempotencyStore remembers which events each consumer has handled, in a
// JetStream KV bucket shared by every instance, so that a handler wrapped
// with [Idempotent] runs once per event across redeliveries, duplicates,
// restarts and competing instances. It is safe for concurrent use.
//
// A record goes through two states. Before the handler runs, a "processing"
// claim is created with a per-key TTL (the claim TTL); only the instance
// whose create succeeds runs the handler. After the handler succeeds the
// claim becomes "done" and lives for the bucket's TTL (the done TTL); a
// failed handler deletes its claim so that the retry can run.
//
// The remaining window: if the process dies after the handler's effect but
// before "done" is written, the claim expires after the claim TTL and the
// event is handled again. The same happens if a handler runs longer than
// the claim TTL while a duplicate is waiting. Handlers whose effect lands in
// JetStream can close the window themselves (a Nats-Msg-Id derived from the
// event, an expected-last-sequence check); a handler must finish well within
// the claim TTL.
type IdempotencyStore struct {
	kv       jetstream.KeyValue
	claimTTL time.Duration
	owner    string
	logger   *slog.Logger
}

// IdempotencyOption configures NewIdempotencyStore. Every instance sharing
// a bucket should use the same options: the bucket settings are applied by
// whichever instance starts last.
type IdempotencyOption func(*idempotencyConfig)

type idempotencyConfig struct {
	bucket   string
	replicas int
	doneTTL  time.Duration
	claimTTL time.Duration
	owner    string
	logger   *slog.Logger
}

// WithIdempotencyBucket sets the bucket name (default "tradex_idempotency").
func WithIdempotencyBucket(name string) IdempotencyOption {
	return func(c *idempotencyConfig) { c.bucket = name }
}

// WithIdempotencyReplicas sets the bucket's replica count: 3 on a 3-node
// cluster, 1 (the default) on a single server.
func WithIdempotencyReplicas(n int) IdempotencyOption {
	return func(c *idempotencyConfig) { c.replicas = n }
}

// WithIdempotencyTTL sets how long an event is remembered as done (default
// 24 hours): a duplicate arriving later than that is handled again. Keep it
// longer than any redelivery, redrive or replay you expect.
func WithIdempotencyTTL(d time.Duration) IdempotencyOption {
	return func(c *idempotencyConfig) { c.doneTTL = d }
}

// WithClaimTTL sets how long a "processing" claim lives (default 30
// seconds, whole seconds, at least 1): the longest a handler may run before
// a duplicate may run it again, and how long an event stays blocked after
// the instance handling it died.
func WithClaimTTL(d time.Duration) IdempotencyOption {
	return func(c *idempotencyConfig) { c.claimTTL = d }
}

// WithIdempotencyOwner names this instance in the records it writes
// (default a random id), for operators reading the bucket.
func WithIdempotencyOwner(owner string) IdempotencyOption {
	return func(c *idempotencyConfig) { c.owner = owner }
}

// WithIdempotencyLogger sets where the store reports a handler that
// succeeded but could not be recorded as done; nil discards it.
func WithIdempotencyLogger(l *slog.Logger) IdempotencyOption {
	return func(c *idempotencyConfig) { c.logger = l }
}

// idempotencyMarkerTTL is how long the bucket keeps the marker left when a
// claim expires or a record is deleted.
const idempotencyMarkerTTL = time.Minute

// NewIdempotencyStore creates the idempotency bucket, or opens and updates
// it, and returns a store over it.
func NewIdempotencyStore(ctx context.Context, js jetstream.JetStream, opts ...IdempotencyOption) (*IdempotencyStore, error) {
	c := idempotencyConfig{bucket: DefaultIdempotencyBucket, replicas: 1, doneTTL: 24 * time.Hour, claimTTL: 30 * time.Second}
	for _, o := range opts {
		o(&c)
	}
	switch {
	case c.replicas < 1 || c.replicas > 5:
		return nil, fmt.Errorf("%w: idempotency replicas %d: want 1 to 5", ErrInvalidConfig, c.replicas)
	case c.claimTTL < time.Second || c.claimTTL%time.Second != 0:
		return nil, fmt.Errorf("%w: claim TTL %s: want whole seconds, at least 1", ErrInvalidConfig, c.claimTTL)
	case c.doneTTL <= c.claimTTL:
		return nil, fmt.Errorf("%w: idempotency TTL %s must exceed the claim TTL %s", ErrInvalidConfig, c.doneTTL, c.claimTTL)
	}
	if c.owner == "" {
		c.owner = nuid.Next()
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         c.bucket,
		Description:    "tradex idempotency records: events handled, per consumer",
		History:        1,
		TTL:            c.doneTTL,
		Storage:        jetstream.FileStorage,
		Replicas:       c.replicas,
		LimitMarkerTTL: idempotencyMarkerTTL,
	})
	if err != nil {
		return nil, brokerError("idempotency bucket "+c.bucket, err)
	}
	return &IdempotencyStore{kv: kv, claimTTL: c.claimTTL, owner: c.owner, logger: c.logger}, nil
}

// Idempotent wraps h so that it runs once per event within scope (usually
// the consumer name: several consumers may each handle the same event
// once). The event is identified by its ce-id header, or else its message
// id. A duplicate of an event already done is acknowledged without calling
// h; one whose claim is held by a delivery still running fails with
// ErrInFlight, so the consumer retries it later; a message without an id is
// dead-lettered (ErrNoEventID). See [IdempotencyStore] for the guarantees.
//
// ErrInFlight counts as a failed attempt: a duplicate that keeps meeting a
// running claim for MaxDeliver attempts is dead-lettered. Redriving it is
// safe: by then the event is done and the redrive is acknowledged.
func Idempotent[T proto.Message](store *IdempotencyStore, scope string, h Handler[T]) Handler[T] {
	return func(ctx context.Context, m *Message[T]) error {
		id := m.Header.Get(HeaderCEID)
		if id == "" {
			id = m.ID
		}
		if id == "" {
			return Permanent(fmt.Errorf("%w: %s sequence %d", ErrNoEventID, m.Subject, m.Sequence))
		}
		return store.Do(ctx, scope, id, func(ctx context.Context) error { return h(ctx, m) })
	}
}

// Do runs fn unless the event id was already done within scope, with the
// claim protocol of [IdempotencyStore]. It returns nil when fn succeeded or
// had already succeeded, ErrInFlight when another call holds the claim, and
// fn's error (after releasing the claim) when fn fails. Use it where the
// work is not a consumer handler, such as an RPC idempotent on a request id.
func (s *IdempotencyStore) Do(ctx context.Context, scope, id string, fn func(context.Context) error) (err error) {
	key := IdempotencyKey(scope, id)
	rev, done, err := s.claim(ctx, key)
	if err != nil || done {
		return err
	}
	succeeded := false
	defer func() {
		if !succeeded { // fn failed or panicked: free the claim for the retry
			if rerr := s.release(ctx, key, rev); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
	}()
	if err := fn(ctx); err != nil {
		return err
	}
	succeeded = true
	s.complete(ctx, key, rev)
	return nil
}

// Record states.
const (
	stateProcessing = "processing"
	stateDone       = "done"
)

// idempotencyRecord is the JSON value of a record.
type idempotencyRecord struct {
	State string    `json:"state"`
	Owner string    `json:"owner"`
	At    time.Time `json:"at"`
}

func (s *IdempotencyStore) record(state string) []byte {
	b, _ := json.Marshal(idempotencyRecord{State: state, Owner: s.owner, At: time.Now().UTC()}) // a struct of strings and a time always encodes
	return b
}

// claimAttempts bounds how often claim retries when the record changes
// between its create and its read.
const claimAttempts = 3

// claim creates the "processing" record; done reports that the event was
// already handled.
func (s *IdempotencyStore) claim(ctx context.Context, key string) (rev uint64, done bool, err error) {
	for range claimAttempts {
		rev, err := s.kv.Create(ctx, key, s.record(stateProcessing), jetstream.KeyTTL(s.claimTTL))
		if err == nil {
			return rev, false, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, false, brokerError("claim "+key, err)
		}
		e, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released or expired since: claim again
		}
		if err != nil {
			return 0, false, brokerError("read claim "+key, err)
		}
		var r idempotencyRecord
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			return 0, false, fmt.Errorf("idempotency record %s: %w", key, err)
		}
		if r.State == stateDone {
			return 0, true, nil
		}
		return 0, false, fmt.Errorf("%w: %s claimed by %s at %s", ErrInFlight, key, r.Owner, r.At.Format(time.RFC3339))
	}
	return 0, false, fmt.Errorf("%w: %s changed %d times while claiming", ErrInFlight, key, claimAttempts)
}

// release deletes a claim, unless it already expired or was replaced.
func (s *IdempotencyStore) release(ctx context.Context, key string, rev uint64) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.claimTTL)
	defer cancel()
	err := s.kv.Purge(ctx, key, jetstream.LastRevision(rev), jetstream.PurgeTTL(idempotencyMarkerTTL))
	if err == nil || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return nil
	}
	return brokerError("release claim "+key, err)
}

// complete turns the claim into a "done" record. It retries while the
// broker is unavailable, for half the claim TTL and even after ctx ends:
// the effect has happened, and a lost record means the event may run
// again. Returning an error cannot undo the effect and would only make the
// consumer retry it, so a failure is logged and the message acknowledged.
func (s *IdempotencyStore) complete(ctx context.Context, key string, rev uint64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.claimTTL/2)
	defer cancel()
	done := s.record(stateDone)
	for attempt := 0; ; attempt++ {
		_, err := s.kv.Update(ctx, key, done, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			// The claim expired (fn outlived the claim TTL) and the key
			// changed: the event is done all the same.
			s.logger.WarnContext(ctx, "idempotency claim expired before the handler finished", "key", key, "claim_ttl", s.claimTTL)
			_, err = s.kv.Put(ctx, key, done)
		}
		if err == nil {
			return
		}
		if !isUnavailable(err) || sleep(ctx, backoff(attempt, 50*time.Millisecond, time.Second)) != nil {
			s.logger.ErrorContext(ctx, "handled event not recorded as done; a redelivery will run it again", "key", key, "err", err)
			return
		}
	}
}

// maxRawKeyToken is the longest id or scope used as is in a record key.
const maxRawKeyToken = 64

// IdempotencyKey is the KV key of the record of event id in scope:
// "<scope>.<id>", each part kept as is when it is at most 64 characters of
// [-_a-zA-Z0-9], otherwise "=" followed by the unpadded base64url SHA-256
// of it (KV keys allow few characters, and raw parts never start with "=").
func IdempotencyKey(scope, id string) string { return keyToken(scope) + "." + keyToken(id) }

func keyToken(s string) string {
	if len(s) > 0 && len(s) <= maxRawKeyToken && isRawKeyToken(s) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "=" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func isRawKeyToken(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
