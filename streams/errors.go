package streams

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// Errors callers tell apart with errors.Is.
var (
	// ErrUnknownTopic: the topic is not in the catalog.
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrWrongType: the message is not the topic's payload type.
	ErrWrongType = errors.New("wrong message type for topic")
	// ErrInvalidKey: the partition key is not a valid subject token.
	ErrInvalidKey = errors.New("invalid key")
	// ErrUnavailable: the broker could not be reached or did not answer in
	// time; the operation may be retried.
	ErrUnavailable = errors.New("broker unavailable")
	// ErrStreamConflict: an existing stream's configuration contradicts its
	// topic's profile; an operator must resolve it.
	ErrStreamConflict = errors.New("stream config conflict")
	// ErrConcurrency: an expected-last-sequence check failed, or an atomic
	// batch carried a message id already stored: someone else wrote to the
	// subject first (or an earlier attempt of the batch did).
	ErrConcurrency = errors.New("concurrent write")
	// ErrInvalidConfig: a consumer, publisher or catalog setting cannot work.
	ErrInvalidConfig = errors.New("invalid config")
	// ErrUnknownStore: the KV bucket or object store is not in the catalog.
	ErrUnknownStore = errors.New("unknown store")
	// ErrNotFound: no message, key or object where one was asked for.
	ErrNotFound = errors.New("not found")
	// ErrScanLimit: a search read as many messages as it was allowed to
	// without finding what it looked for.
	ErrScanLimit = errors.New("scan limit reached")
	// ErrKeyExists: a KV create found the key there already.
	ErrKeyExists = jetstream.ErrKeyExists
	// ErrRevisionMismatch: a KV update or delete expected another
	// revision of the key (someone else wrote it first).
	ErrRevisionMismatch = jetstream.ErrKeyRevisionMismatch
)

// brokerError classifies err from nats.go: connectivity problems wrap
// ErrUnavailable, a failed sequence check or an atomic batch's duplicate
// message id wraps ErrConcurrency; op says what was being done.
func brokerError(op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case isUnavailable(err):
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	case isWrongLastSequence(err), isBatchDuplicateMsgID(err):
		return fmt.Errorf("%s: %w: %w", op, ErrConcurrency, err)
	case isNotFound(err):
		return fmt.Errorf("%s: %w: %w", op, ErrNotFound, err)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

// IsUnavailable reports whether err is a connectivity failure: the broker
// could not be reached or did not answer in time (errors this package
// returns wrap ErrUnavailable for these).
func IsUnavailable(err error) bool {
	return errors.Is(err, ErrUnavailable) || isUnavailable(err)
}

func isUnavailable(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrConnectionDraining) ||
		errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}

// isWrongLastSequence matches JetStream's "wrong last sequence" API errors
// (10071, and 10164 from replicated streams).
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// isBatchDuplicateMsgID matches the atomic batch publish's "duplicate
// message id" API error (10201): a message id of the batch is already
// stored, so the batch was refused whole.
func isBatchDuplicateMsgID(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstreamext.JSErrCodeBatchPublishDuplicateMsgID
}

// isNotFound matches nats.go's "no such message, key, object or consumer"
// errors.
func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrKeyNotFound) ||
		errors.Is(err, jetstream.ErrObjectNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound)
}
