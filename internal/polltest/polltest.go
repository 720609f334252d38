// Package polltest waits in tests for a condition to hold, polling it
// against a deadline: the one way tests here wait for something to happen
// (never a sleep).
package polltest

import (
	"testing"
	"time"
)

// DefaultTimeout is how long Until waits unless told otherwise.
const DefaultTimeout = 30 * time.Second

// interval is the pause between two polls.
const interval = 10 * time.Millisecond

// Option changes one wait.
type Option func(*wait)

type wait struct{ timeout time.Duration }

// WithTimeout sets how long to wait (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(w *wait) { w.timeout = d } }

// Until polls cond until it returns nil and fails the test with cond's
// last error once the deadline passes or the test's context ends.
func Until(t testing.TB, what string, cond func() error, opts ...Option) {
	t.Helper()
	w := wait{timeout: DefaultTimeout}
	for _, o := range opts {
		o(&w)
	}
	deadline := time.Now().Add(w.timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, w.timeout, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: %v (last: %v)", what, t.Context().Err(), err)
		case <-time.After(interval):
		}
	}
}

// True polls cond until it returns true; see Until.
func True(t testing.TB, what string, cond func() bool, opts ...Option) {
	t.Helper()
	Until(t, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	}, opts...)
}

type notYet struct{}

func (notYet) Error() string { return "condition not met" }

var errNotYet error = notYet{}
