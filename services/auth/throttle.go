package auth

import (
	"sync"
	"time"
)

// throttle counts failed logins per address and email, per address and
// per email, over a fixed window: past the limit an address's further
// attempts (for that email, or for any past 4x the limit) are refused
// until the window passes; and once an email has failed 10x the limit from
// all addresses (guessing spread over many addresses), every address that
// failed for it even once is refused. It never refuses an address that has
// not failed for the email, so guessing cannot lock the owner out.
type throttle struct {
	limit  int
	window time.Duration

	mu     sync.Mutex
	counts map[string]*failures
	swept  time.Time
}

type failures struct {
	n     int
	start time.Time
}

// maxThrottled bounds the entries kept between sweeps.
const maxThrottled = 100_000

func newThrottle(limit int, window time.Duration) *throttle {
	return &throttle{limit: limit, window: window, counts: map[string]*failures{}}
}

func pairKey(ip, email string) string { return ip + "\x00" + email }

// emailFailuresKey is the throttle's key of an email's failures from every
// address (addresses hold no NUL, so it cannot meet an address's key).
func emailFailuresKey(email string) string { return "\x00" + email }

// allowed reports whether ip may try to log in as email at now.
func (t *throttle) allowed(now time.Time, ip, email string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	pair := t.count(now, pairKey(ip, email))
	underAttack := t.count(now, emailFailuresKey(email)) >= 10*t.limit
	return pair < t.limit && t.count(now, ip) < 4*t.limit && (!underAttack || pair == 0)
}

func (t *throttle) count(now time.Time, key string) int {
	f := t.counts[key]
	if f == nil || now.Sub(f.start) >= t.window {
		return 0
	}
	return f.n
}

// failed records a failed login.
func (t *throttle) failed(now time.Time, ip, email string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.swept) >= t.window || len(t.counts) >= maxThrottled {
		t.sweep(now)
	}
	for _, key := range []string{pairKey(ip, email), ip, emailFailuresKey(email)} {
		f := t.counts[key]
		if f == nil || now.Sub(f.start) >= t.window {
			f = &failures{start: now}
			t.counts[key] = f
		}
		f.n++
	}
}

// succeeded forgets the failures of ip for email.
func (t *throttle) succeeded(ip, email string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.counts, pairKey(ip, email))
}

// sweep drops the entries whose window passed; if that is not enough to
// stay under maxThrottled, it drops them all (a flood of addresses).
func (t *throttle) sweep(now time.Time) {
	for k, f := range t.counts {
		if now.Sub(f.start) >= t.window {
			delete(t.counts, k)
		}
	}
	if len(t.counts) >= maxThrottled {
		clear(t.counts)
	}
	t.swept = now
}
