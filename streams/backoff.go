package streams

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is the delay before retry number attempt (from 0): exponential
// from base, capped at limit, with "equal jitter" (half fixed, half random)
// so that many retrying clients spread out but none retries at once.
func backoff(attempt int, base, limit time.Duration) time.Duration {
	d := base
	for i := 0; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	half := d / 2
	return half + rand.N(half+1) //nolint:gosec // jitter needs no cryptographic randomness
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
