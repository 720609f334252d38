package book

import "errors"

var (
	// ErrCorrupt is returned by Check when an invariant of the book does not hold.
	ErrCorrupt = errors.New("order book corrupt")
	// ErrInvalidSnapshot is returned by Restore and Snapshot.UnmarshalBinary for a
	// snapshot that does not describe a valid book.
	ErrInvalidSnapshot = errors.New("invalid order book snapshot")
)
