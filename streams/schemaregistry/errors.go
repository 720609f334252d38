package schemaregistry

import "errors"

// Errors callers tell apart with errors.Is. An unknown topic wraps
// streams.ErrUnknownTopic.
var (
	// ErrNotWireFormat: a record value does not start with a Confluent
	// wire-format header.
	ErrNotWireFormat = errors.New("not in the confluent wire format")
	// ErrWrongSchema: a record's header names a schema id or message that is
	// not its topic's.
	ErrWrongSchema = errors.New("schema is not the topic's")
	// ErrIDCollision: two different schemas hash to the same id; the index
	// cannot be built until one of them changes.
	ErrIDCollision = errors.New("schema id collision")
	// ErrInvalidSchema: a registry entry's descriptors cannot be read or
	// rendered.
	ErrInvalidSchema = errors.New("invalid schema")
	// ErrNoCredentials: NewHandler was given an empty username or password.
	ErrNoCredentials = errors.New("username and password required")
)
