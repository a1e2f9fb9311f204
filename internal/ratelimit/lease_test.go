package ratelimit

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRedisLeasesKeepTheSharedBudget: two instances with leases, eight
// clients each, spend one budget that does not refill during the test.
// Together they never allow more than the budget, lose at most the unspent
// part of a few blocks, and ask Redis far fewer times than they answer.
func TestRedisLeasesKeepTheSharedBudget(t *testing.T) {
	t.Parallel()
	srv := startRedisServer(t)
	const burst = 800
	limit := Limit{Rate: 1, Burst: burst, Period: time.Hour}
	prefix := uniquePrefix(t)
	var instances []*Redis
	for range 2 {
		log, _ := newLogger(t)
		instances = append(instances, NewRedis(newClient(t, srv.url(), true), NewLocal(time.Now), log,
			WithKeyPrefix(prefix), WithTimeout(10*time.Second), WithLeases(16)))
	}
	var allowed, refused atomic.Int64
	var wg sync.WaitGroup
	for _, r := range instances {
		for range 8 {
			wg.Go(func() {
				for refused.Load() < 50 {
					res, err := r.Allow(context.Background(), "client:ehr-1", limit)
					if err != nil {
						t.Error(err)
						return
					}
					if res.Allowed {
						allowed.Add(1)
					} else {
						refused.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	calls := evalCalls(t, srv)
	got := allowed.Load()
	if got > burst {
		t.Fatalf("the two instances allowed %d requests of a budget of %d", got, burst)
	}
	// Each instance holds one block of at most 15 unspent requests; a
	// block lapses only after 50ms without a request of its instance.
	if got < burst-2*15 {
		t.Fatalf("allowed %d of %d: more lost to lapsed blocks than two blocks' worth", got, burst)
	}
	if calls >= got/4 {
		t.Fatalf("%d Redis calls for %d allowed requests: blocks were not leased", calls, got)
	}
	t.Logf("%d allowed, %d Redis calls", got, calls)
}

// TestRedisLeaseRemainingCountsDown: within and across blocks, one client
// of one instance sees RateLimit-Remaining fall by one per request, as it
// would with every request decided by Redis.
func TestRedisLeaseRemainingCountsDown(t *testing.T) {
	t.Parallel()
	rdb := newClient(t, mustEnv(t, "KAPGW_TEST_REDIS_URL"), true)
	log, _ := newLogger(t)
	r := NewRedis(rdb, NewLocal(time.Now), log, WithKeyPrefix(uniquePrefix(t)), WithTimeout(10*time.Second), WithLeases(16))
	limit := Limit{Rate: 1, Burst: 200, Period: time.Hour}
	prev := limit.Burst
	for i := range limit.Burst {
		res := allow(t, r, "client:ehr-1", limit)
		if !res.Allowed {
			t.Fatalf("request %d refused with %d of %d spent", i+1, i, limit.Burst)
		}
		if res.Remaining != prev-1 {
			t.Fatalf("request %d: remaining %d after %d", i+1, res.Remaining, prev)
		}
		prev = res.Remaining
	}
	if res := allow(t, r, "client:ehr-1", limit); res.Allowed || res.RetryAfter <= 0 {
		t.Fatalf("request past the budget: %+v", res)
	}
}

// evalCalls is how many scripts srv has run (redis_rate runs one per
// decision).
func evalCalls(tb testing.TB, srv *redisServer) int64 {
	tb.Helper()
	info, err := newClient(tb, srv.url(), true).Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatalf("redis info: %v", err)
	}
	var n int64
	for line := range strings.SplitSeq(info, "\n") {
		if !strings.HasPrefix(line, "cmdstat_evalsha:") && !strings.HasPrefix(line, "cmdstat_eval:") {
			continue
		}
		_, rest, _ := strings.Cut(line, "calls=")
		v, _, _ := strings.Cut(rest, ",")
		c, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			tb.Fatalf("commandstats line %q: %v", line, err)
		}
		n += c
	}
	return n
}
