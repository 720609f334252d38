package streams

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestApplyPlacedRetriesWhatARetryCanFix: a stream change that timed out or
// found no peers is repeated (creating the same stream twice is a no-op); a
// refusal is returned at once.
func TestApplyPlacedRetriesWhatARetryCanFix(t *testing.T) {
	t.Parallel()
	noPeers := &jetstream.APIError{ErrorCode: errCodeNoPeers, Description: "no suitable peers for placement"}
	refused := &jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamNameInUse, Description: "stream name already in use"}
	for _, tc := range []struct {
		name      string
		first     error
		wantCalls int
		wantErr   error
	}{
		{"timeout", fmt.Errorf("create stream: %w", context.DeadlineExceeded), 2, nil},
		{"no peers", noPeers, 2, nil},
		{"refused", refused, 1, refused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := applyPlaced(t.Context(), func() error {
				calls++
				if calls == 1 {
					return tc.first
				}
				return nil
			})
			if calls != tc.wantCalls || !errors.Is(err, tc.wantErr) {
				t.Fatalf("calls = %d, err = %v; want %d calls, err %v", calls, err, tc.wantCalls, tc.wantErr)
			}
		})
	}
}

// TestApplyPlacedStopsWithItsContext: no retry outlives the caller.
func TestApplyPlacedStopsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	err := applyPlaced(ctx, func() error {
		calls++
		cancel()
		return context.DeadlineExceeded
	})
	if calls != 1 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("calls = %d, err = %v; want 1 call and the timeout", calls, err)
	}
}
