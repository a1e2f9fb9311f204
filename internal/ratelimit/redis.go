package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

const (
	// DefaultKeyPrefix is where Redis keeps kapgw's budgets.
	DefaultKeyPrefix = "kapgw:rl:"
	// defaultTimeout bounds one Redis decision so that an outage costs a
	// request at most this much latency.
	defaultTimeout = 50 * time.Millisecond
	// defaultProbeInterval is how often Redis is tried again during an
	// outage; requests in between go straight to the fallback.
	defaultProbeInterval = time.Second
)

// Redis is a GCRA limiter that keeps its budgets in Redis, so that every
// kapgw instance spends from the same one. It is safe for concurrent use.
//
// When Redis fails (refused, timed out, any error), Redis decides with its
// Local fallback instead and never returns the failure: limits stay in force
// per instance and no request fails because of the limiter. The outage is
// logged once at Warn and its end once at Info; every fallback decision is
// counted. During an outage one request per probe interval tries Redis
// again, the others skip it.
type Redis struct {
	limiter       *redis_rate.Limiter
	fallback      *Local
	log           *slog.Logger
	prefix        string
	timeout       time.Duration
	probeInterval time.Duration
	countFallback func(context.Context)
	leases        leases

	down      atomic.Bool
	nextProbe atomic.Int64 // Unix nanoseconds; while down, Redis is tried again from then on
	downSince atomic.Int64 // Unix nanoseconds
	fallbacks atomic.Int64 // fallback decisions in the current outage
}

// RedisOption changes a Redis built by NewRedis.
type RedisOption func(*Redis)

// WithKeyPrefix puts the budgets under prefix instead of DefaultKeyPrefix,
// for instance to keep tests or environments sharing a server apart.
func WithKeyPrefix(prefix string) RedisOption {
	return func(r *Redis) { r.prefix = prefix }
}

// WithTimeout bounds each Redis decision (default 50ms).
func WithTimeout(d time.Duration) RedisOption {
	return func(r *Redis) {
		if d > 0 {
			r.timeout = d
		}
	}
}

// WithProbeInterval sets how often Redis is tried again during an outage
// (default 1s).
func WithProbeInterval(d time.Duration) RedisOption {
	return func(r *Redis) {
		if d > 0 {
			r.probeInterval = d
		}
	}
}

// WithFallbackCounter has count called once for every decision the fallback
// makes, for example to add 1 to an OpenTelemetry Int64Counter.
func WithFallbackCounter(count func(context.Context)) RedisOption {
	return func(r *Redis) {
		if count != nil {
			r.countFallback = count
		}
	}
}

// WithLeases lets Redis decide a key's requests in blocks of up to max
// (and at most an eighth of the key's burst) while its budget is far from
// spent: one Redis round trip then serves a block of requests of this
// instance. Near the limit every request is still decided by Redis, so
// refusals come exactly when they would without leases; unspent requests
// of a block lapse after 50ms, which can make a budget stricter for that
// moment, never looser. See leases.
func WithLeases(max int) RedisOption {
	return func(r *Redis) { r.leases.max = max }
}

// NewRedis returns a limiter that keeps budgets in rdb and falls back to
// fallback, whose clock it shares. rdb should be built from RedisOptions so
// that the client honours the short per-decision timeout.
func NewRedis(rdb *redis.Client, fallback *Local, log *slog.Logger, opts ...RedisOption) *Redis {
	r := &Redis{
		limiter:       redis_rate.NewLimiter(rdb),
		fallback:      fallback,
		log:           log,
		prefix:        DefaultKeyPrefix,
		timeout:       defaultTimeout,
		probeInterval: defaultProbeInterval,
		countFallback: func(context.Context) {},
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Allow spends one request of key's budget under limit if there is one left.
// It fails only for an invalid limit: Redis failures are handled inside.
func (r *Redis) Allow(ctx context.Context, key string, limit Limit) (Result, error) {
	if err := limit.Validate(); err != nil {
		return Result{}, fmt.Errorf("rate limit %s: %w", keyKind(key), err)
	}
	try, probe := r.shouldTry()
	if try {
		res, err := r.allowLeased(ctx, key, limit)
		switch {
		case err == nil:
			if probe {
				r.recovered(ctx)
			}
			return res, nil
		case ctx.Err() == nil: // the caller's own cancellation is no outage
			r.failed(ctx, err)
		}
	}
	r.fallbacks.Add(1)
	r.countFallback(ctx)
	return r.fallback.Allow(ctx, key, limit)
}

// shouldTry tells whether to ask Redis, and whether the question is the one
// probe allowed per interval during an outage.
func (r *Redis) shouldTry() (try, probe bool) {
	if !r.down.Load() {
		return true, false
	}
	next := r.nextProbe.Load()
	now := r.fallback.now().UnixNano()
	if now < next {
		return false, false
	}
	won := r.nextProbe.CompareAndSwap(next, now+int64(r.probeInterval))
	return won, won
}

// allowLeased decides one request from key's lease when it has one, else
// asks Redis for a block (see WithLeases) or for the one request.
func (r *Redis) allowLeased(ctx context.Context, key string, limit Limit) (Result, error) {
	if min(r.leases.max, limit.Burst/leaseShare) < 2 {
		return r.allowRedis(ctx, key, limit, 1) // never leased: no lock
	}
	l := r.leases.get(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := r.fallback.now().UnixNano()
	if res, ok := l.take(now, limit); ok {
		return res, nil
	}
	n := r.leases.size(l, limit)
	res, err := r.allowRedis(ctx, key, limit, n)
	if err == nil && !res.Allowed && n > 1 {
		n = 1 // the block did not fit: decide this request alone
		res, err = r.allowRedis(ctx, key, limit, 1)
	}
	if err != nil {
		return Result{}, err
	}
	return l.granted(now, limit, n, res), nil
}

// allowRedis spends n requests of key's budget in Redis, all or none.
func (r *Redis) allowRedis(ctx context.Context, key string, limit Limit, n int) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	rl := redis_rate.Limit{Rate: limit.Rate, Burst: limit.Burst, Period: limit.Period}
	res, err := r.limiter.AllowN(ctx, r.prefix+key, rl, n)
	if err != nil {
		return Result{}, fmt.Errorf("redis rate limit: %w", err)
	}
	return Result{
		Allowed:    res.Allowed > 0,
		Limit:      limit.Burst,
		Remaining:  max(res.Remaining, 0),
		RetryAfter: max(res.RetryAfter, 0), // redis_rate says -1 when allowed
		ResetAfter: max(res.ResetAfter, 0),
	}, nil
}

// failed records a Redis failure and logs the start of an outage once.
func (r *Redis) failed(ctx context.Context, err error) {
	now := r.fallback.now().UnixNano()
	r.nextProbe.Store(now + int64(r.probeInterval))
	if !r.down.CompareAndSwap(false, true) {
		return
	}
	r.downSince.Store(now)
	r.fallbacks.Store(0)
	r.log.WarnContext(ctx, "rate limit redis unavailable, limiting in process",
		slog.String("error", err.Error()),
		slog.Duration("probe_interval", r.probeInterval))
}

// recovered logs the end of an outage once.
func (r *Redis) recovered(ctx context.Context) {
	if !r.down.CompareAndSwap(true, false) {
		return
	}
	since := r.downSince.Load()
	r.log.InfoContext(ctx, "rate limit redis recovered",
		slog.Duration("outage", time.Duration(r.fallback.now().UnixNano()-since)),
		slog.Int64("fallback_decisions", r.fallbacks.Load()))
}

// RedisOptions parses a redis:// or rediss:// URL into client options fit
// for rate limiting: the client honours context deadlines, dials once, and
// does not retry, so a Redis outage costs a request at most the limiter's
// short timeout before the fallback decides.
func RedisOptions(rawURL string) (*redis.Options, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	opts.DialTimeout = 250 * time.Millisecond
	opts.ReadTimeout = 250 * time.Millisecond
	opts.WriteTimeout = 250 * time.Millisecond
	opts.PoolTimeout = 100 * time.Millisecond
	return opts, nil
}
