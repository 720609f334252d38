package matching

import "errors"

// Errors the service returns, told apart with errors.Is.
var (
	// ErrBadSnapshot: a stored book snapshot cannot be decoded; the engine then rebuilds
	// the book from the start of engine.order.v1.
	ErrBadSnapshot = errors.New("bad matching snapshot")
	// ErrDiverged: replaying the input did not reproduce the output already published
	// (its last output sequence); the instrument is not served until an operator looks.
	ErrDiverged = errors.New("replay diverged from published events")
	// ErrNotServed: a command arrived for an instrument this instance does not serve.
	ErrNotServed = errors.New("instrument not served by this instance")
)
