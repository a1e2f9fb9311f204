package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// harness is one limiter under the shared behaviour suite: Local on a
// settable clock, or Redis on the shared test server and its real clock.
type harness struct {
	limiter limiter
	// wait lets d pass for the limiter.
	wait func(d time.Duration)
	// fallbacks reports how many decisions did not come from the limiter
	// under test (always 0 for Local).
	fallbacks func() int64
}

func TestLocalBehaviour(t *testing.T) {
	t.Parallel()
	runBehaviour(t, func(tb testing.TB) harness {
		clk := newClock()
		return harness{
			limiter:   NewLocal(clk.Now),
			wait:      clk.Advance,
			fallbacks: func() int64 { return 0 },
		}
	})
}

func TestRedisBehaviour(t *testing.T) {
	t.Parallel()
	runBehaviour(t, func(tb testing.TB) harness {
		r, fc := newSharedRedis(tb)
		return harness{limiter: r, wait: time.Sleep, fallbacks: fc.n.Load}
	})
}

// TestRedisLeasedBehaviour: with leases on, every decision the suite
// checks (bursts of a few requests) is still Redis's own.
func TestRedisLeasedBehaviour(t *testing.T) {
	t.Parallel()
	runBehaviour(t, func(tb testing.TB) harness {
		r, fc := newSharedRedis(tb)
		WithLeases(16)(r)
		return harness{limiter: r, wait: time.Sleep, fallbacks: fc.n.Load}
	})
}

// runBehaviour checks what both limiters must do alike.
func runBehaviour(t *testing.T, newHarness func(testing.TB) harness) {
	t.Run("AllowsBurstThenRefuses", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		testBurstThenRefuse(t, h)
	})
	t.Run("RefillsAfterRetryAfter", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		testRefill(t, h)
	})
	t.Run("KeysAreIndependent", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		testIndependentKeys(t, h)
	})
	t.Run("RejectsInvalidLimit", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		if _, err := h.limiter.Allow(context.Background(), PartnerKey("p1"), Limit{Rate: 0, Burst: 1, Period: time.Second}); err == nil {
			t.Fatal("Allow with rate 0: got no error")
		}
	})
	t.Run("ConcurrentUseSpendsExactlyTheBurst", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		testConcurrent(t, h)
	})
}

func testBurstThenRefuse(t *testing.T, h harness) {
	t.Helper()
	limit := Limit{Rate: 1, Burst: 3, Period: time.Hour}
	key := PartnerKey("burst")
	for i := range limit.Burst {
		r := allow(t, h.limiter, key, limit)
		if !r.Allowed || r.Limit != 3 || r.Remaining != 2-i || r.RetryAfter != 0 {
			t.Fatalf("request %d: got %+v, want allowed, limit 3, remaining %d, no retry", i+1, r, 2-i)
		}
		// Redis computes in float seconds on its own clock: allow for rounding and for the time the test takes.
		if want := time.Duration(i+1) * time.Hour; r.ResetAfter < want-time.Second || r.ResetAfter > want+time.Millisecond {
			t.Fatalf("request %d: reset after %s, want about %s", i+1, r.ResetAfter, want)
		}
	}
	r := allow(t, h.limiter, key, limit)
	if r.Allowed || r.Remaining != 0 || r.Limit != 3 {
		t.Fatalf("request beyond burst: got %+v, want refused with 0 remaining", r)
	}
	// One request's worth of budget comes back per hour.
	if r.RetryAfter < time.Hour-time.Second || r.RetryAfter > time.Hour+time.Millisecond {
		t.Fatalf("request beyond burst: retry after %s, want about 1h", r.RetryAfter)
	}
	if n := h.fallbacks(); n != 0 {
		t.Fatalf("fallback decided %d times, want 0", n)
	}
}

func testRefill(t *testing.T, h harness) {
	t.Helper()
	limit := Limit{Rate: 20, Burst: 1, Period: time.Second}
	key := PartnerKey("refill")
	if r := allow(t, h.limiter, key, limit); !r.Allowed {
		t.Fatalf("first request: got %+v, want allowed", r)
	}
	r := allow(t, h.limiter, key, limit)
	if r.Allowed || r.RetryAfter <= 0 || r.RetryAfter > 50*time.Millisecond {
		t.Fatalf("second request: got %+v, want refused with retry after in (0, 50ms]", r)
	}
	h.wait(r.RetryAfter + time.Millisecond)
	if r := allow(t, h.limiter, key, limit); !r.Allowed {
		t.Fatalf("request after retry after: got %+v, want allowed", r)
	}
	if n := h.fallbacks(); n != 0 {
		t.Fatalf("fallback decided %d times, want 0", n)
	}
}

func testIndependentKeys(t *testing.T, h harness) {
	t.Helper()
	limit := Limit{Rate: 1, Burst: 1, Period: time.Hour}
	a, b := PartnerKey("a"), PartnerKey("b")
	if r := allow(t, h.limiter, a, limit); !r.Allowed {
		t.Fatalf("first request of a: got %+v, want allowed", r)
	}
	if r := allow(t, h.limiter, a, limit); r.Allowed {
		t.Fatalf("second request of a: got %+v, want refused", r)
	}
	if r := allow(t, h.limiter, b, limit); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("first request of b: got %+v, want allowed with 0 remaining", r)
	}
}

func testConcurrent(t *testing.T, h harness) {
	t.Helper()
	const workers, each = 16, 10
	limit := Limit{Rate: 1, Burst: 100, Period: time.Hour}
	key := PartnerKey("concurrent")
	var allowed, failed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				r, err := h.limiter.Allow(context.Background(), key, limit)
				if err != nil {
					failed.Add(1)
					continue
				}
				if r.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 || allowed.Load() != 100 {
		t.Fatalf("%d requests: %d allowed, %d errors, want 100 allowed, 0 errors", workers*each, allowed.Load(), failed.Load())
	}
	if n := h.fallbacks(); n != 0 {
		t.Fatalf("fallback decided %d times, want 0", n)
	}
}
