package polltest_test

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/tradex-mesh/tradex/internal/polltest"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	t.Parallel()
	polls := 0
	polltest.Until(t, "third poll", func() error {
		if polls++; polls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if polls != 3 {
		t.Fatalf("polled %d times, want 3", polls)
	}
}

func TestTrueFailsAfterTheTimeout(t *testing.T) {
	t.Parallel()
	ft := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		polltest.True(ft, "never", func() bool { return false }, polltest.WithTimeout(50*time.Millisecond))
	}()
	<-done
	if !ft.failed {
		t.Fatal("a condition that never holds did not fail the test")
	}
}

// fakeT records a Fatalf instead of ending the test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(string, ...any) {
	f.failed = true
	runtime.Goexit() // as testing.T.Fatalf does
}
