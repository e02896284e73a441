package registry

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Retry policy, shared by the client's transport and by the executors
// that retry whole copies and notifications, so that all of celpolicy
// backs off alike.
const (
	// RetryBaseWait is the pause before the first retry; it doubles with
	// each attempt up to RetryMaxWait.
	RetryBaseWait = 250 * time.Millisecond
	RetryMaxWait  = 10 * time.Second
	// MaxRetryAfter is the longest Retry-After waited for. A server that
	// asks for longer gets its answer passed on instead: a caller waiting
	// minutes on one request is worse off than one that sees the 429.
	MaxRetryAfter = time.Minute
)

// Backoff is the pause before retry n (0-based): exponential, with equal
// jitter (half fixed, half random) so that clients rejected together do
// not come back together.
func Backoff(n int) time.Duration {
	d := min(RetryBaseWait<<n, RetryMaxWait)
	return d/2 + rand.N(d/2+1)
}

// RetryableStatus reports whether an HTTP answer may change by itself:
// 408, 429 and the 5xx of an overloaded or failing server.
func RetryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// RetryAfter parses a Retry-After header: delay-seconds or an HTTP date
// (relative to now).
func RetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}
