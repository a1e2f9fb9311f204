package ratelimit

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// SetHeaders writes r to h as the RateLimit-Limit, RateLimit-Remaining and
// RateLimit-Reset fields of the IETF httpapi rate limit headers draft, and,
// when r refuses the request, Retry-After. They go on every limited
// response, refused or not.
//
// RateLimit-Reset is the number of seconds until the budget is full again.
// Times are whole seconds rounded up, so that a client that waits as told is
// never refused for having come a fraction of a second early; Retry-After is
// at least 1.
func SetHeaders(h http.Header, r Result) {
	h.Set("RateLimit-Limit", strconv.Itoa(r.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(r.Remaining))
	h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(r.ResetAfter), 10))
	if !r.Allowed {
		h.Set("Retry-After", strconv.FormatInt(max(ceilSeconds(r.RetryAfter), 1), 10))
	}
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}
