// Package ratelimit decides whether a partner (by client id) or a caller (by
// IP address) may make another request right now.
//
// Two limiters share one algorithm, GCRA (the generic cell rate algorithm, a
// token bucket kept as one timestamp per key): Redis, which shares the budget
// across every kapgw instance through github.com/go-redis/redis_rate, and
// Local, which keeps it in process memory. Local serves the embedded
// single-instance setup and is the fallback of Redis: when Redis is
// unreachable, requests are still limited, never failed.
//
// SetHeaders turns a Result into the RateLimit-* and Retry-After response
// headers; the HTTP adapter lives with the HTTP server, not here.
package ratelimit

import (
	"errors"
	"fmt"
	"time"
)

// Limit is a rate budget: Rate requests per Period on average, with up to
// Burst requests at once after a quiet spell.
type Limit struct {
	Rate   int
	Burst  int
	Period time.Duration
}

// PerSecond returns a Limit of rate requests per second that allows a burst
// of one second's worth of requests.
func PerSecond(rate int) Limit {
	return Limit{Rate: rate, Burst: rate, Period: time.Second}
}

// PerMinute returns a Limit of rate requests per minute that allows a burst
// of one minute's worth of requests.
func PerMinute(rate int) Limit {
	return Limit{Rate: rate, Burst: rate, Period: time.Minute}
}

// Validate reports a Limit that would divide by zero or never allow a
// request, so that configuration can reject it at startup.
func (l Limit) Validate() error {
	var errs []error
	if l.Rate <= 0 {
		errs = append(errs, fmt.Errorf("rate %d must be positive", l.Rate))
	}
	if l.Burst <= 0 {
		errs = append(errs, fmt.Errorf("burst %d must be positive", l.Burst))
	}
	if l.Period <= 0 {
		errs = append(errs, fmt.Errorf("period %s must be positive", l.Period))
	}
	return errors.Join(errs...)
}

// interval is the time one request's worth of budget takes to come back.
func (l Limit) interval() time.Duration {
	return l.Period / time.Duration(l.Rate)
}

// Result is one decision and the state of the key's budget after it, in the
// form the response headers need.
type Result struct {
	// Allowed tells whether the request may proceed.
	Allowed bool
	// Limit is the request quota of a full budget (the Limit's Burst).
	Limit int
	// Remaining is how many more requests the key may make right now.
	Remaining int
	// RetryAfter is how long a refused caller must wait before the next
	// request can be allowed; zero when Allowed.
	RetryAfter time.Duration
	// ResetAfter is how long until the budget is full again, that is until
	// Remaining equals Limit.
	ResetAfter time.Duration
}
