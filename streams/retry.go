package streams

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Retry bounds of RetryStart.
const (
	retryBase  = 100 * time.Millisecond
	retryLimit = 10 * time.Second
)

// Backoff is the delay before retry number attempt (from 0): exponential
// from 100 ms, capped at 10 s, with jitter. The services' start-up and
// rebuild loops wait by it.
func Backoff(attempt int) time.Duration { return backoff(attempt, retryBase, retryLimit) }

// Sleep waits for d, or until ctx ends (it then returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error { return sleep(ctx, d) }

// RetryStart runs fn until it succeeds, retrying with Backoff and logging
// each failure with what as its step. It returns nil once fn
// succeeded, ctx's error once ctx ends, and fn's error at once when fn
// marks it Permanent (a corrupt journal: retrying cannot help).
func RetryStart(ctx context.Context, log *slog.Logger, what string, fn func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		delay := Backoff(attempt)
		log.WarnContext(ctx, "start step failed, retrying", "step", what, "err", err, "retry_in", delay)
		if err := sleep(ctx, delay); err != nil {
			return err
		}
	}
}
