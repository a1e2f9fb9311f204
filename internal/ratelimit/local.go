package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

const (
	// defaultMaxKeys bounds Local's memory: with keys of about 50 bytes a
	// full table takes roughly 10 MB.
	defaultMaxKeys = 100_000
	// sweepEvery is how often Local drops the keys whose budget is full.
	sweepEvery = time.Minute
	// evictSample is how many keys Local looks at to pick one to evict when
	// the table is full of keys that still owe budget.
	evictSample = 8
)

// Local is an in-process GCRA limiter with the same decisions as Redis. It
// limits a single instance on its own (the embedded default) and stands in
// for Redis while Redis is unreachable. It is safe for concurrent use.
//
// Memory is bounded: a key whose budget is full again carries no state and
// is dropped by a sweep once a minute. When the table still reaches its
// maximum size, Local evicts the key closest to a full budget among a few
// sampled ones, so a flood of distinct keys (addresses) can make Local more
// lenient for some keys, never stricter.
type Local struct {
	now     func() time.Time
	maxKeys int

	mu        sync.Mutex
	tat       map[string]int64 // theoretical arrival time, Unix nanoseconds
	nextSweep int64
}

// LocalOption changes a Local built by NewLocal.
type LocalOption func(*Local)

// WithMaxKeys bounds how many keys Local tracks at once (default 100,000).
func WithMaxKeys(n int) LocalOption {
	return func(l *Local) {
		if n > 0 {
			l.maxKeys = n
		}
	}
}

// NewLocal returns an empty Local that reads the time from now.
func NewLocal(now func() time.Time, opts ...LocalOption) *Local {
	l := &Local{now: now, maxKeys: defaultMaxKeys, tat: make(map[string]int64)}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Allow spends one request of key's budget under limit if there is one left.
// It fails only for an invalid limit.
func (l *Local) Allow(_ context.Context, key string, limit Limit) (Result, error) {
	if err := limit.Validate(); err != nil {
		return Result{}, fmt.Errorf("rate limit %s: %w", keyKind(key), err)
	}
	now := l.now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maybeSweep(now)
	tat, known := l.tat[key]
	r, newTAT := gcra(now, tat, limit)
	if r.Allowed {
		if !known && len(l.tat) >= l.maxKeys {
			l.evict(now)
		}
		l.tat[key] = newTAT
	}
	return r, nil
}

// gcra decides one request at now for a key whose theoretical arrival time
// is tat (zero for an unknown key) and returns the key's new arrival time.
// It mirrors the Lua script of redis_rate, so both limiters agree.
func gcra(now, tat int64, limit Limit) (Result, int64) {
	interval := int64(limit.interval())
	tat = max(tat, now)
	newTAT := tat + interval
	allowAt := newTAT - interval*int64(limit.Burst)
	diff := now - allowAt
	if diff < 0 {
		return Result{
			Limit:      limit.Burst,
			RetryAfter: time.Duration(-diff),
			ResetAfter: time.Duration(tat - now),
		}, tat
	}
	return Result{
		Allowed:    true,
		Limit:      limit.Burst,
		Remaining:  int(diff / interval),
		ResetAfter: time.Duration(newTAT - now),
	}, newTAT
}

// maybeSweep drops every key whose budget is full again, at most once per
// sweepEvery. Such keys behave exactly like unknown ones.
func (l *Local) maybeSweep(now int64) {
	if now < l.nextSweep {
		return
	}
	l.nextSweep = now + int64(sweepEvery)
	l.sweep(now)
}

func (l *Local) sweep(now int64) {
	for k, tat := range l.tat {
		if tat <= now {
			delete(l.tat, k)
		}
	}
}

// evict makes room for one key. Map iteration starts at a random place, so
// the sample is random; the key closest to a full budget loses least.
func (l *Local) evict(now int64) {
	victim, oldest, n := "", int64(0), 0
	for k, tat := range l.tat {
		if tat <= now {
			delete(l.tat, k)
			return
		}
		if n == 0 || tat < oldest {
			victim, oldest = k, tat
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(l.tat, victim)
}
