package ratelimit

import (
	"context"
	"strings"
	"testing"
	"time"
)

const (
	outageMsg   = "rate limit redis unavailable"
	recoveryMsg = "rate limit redis recovered"
)

func TestRedisOutageFallsBackAndRecovers(t *testing.T) {
	t.Parallel()
	srv := startRedisServer(t)
	log, logs := newLogger(t)
	fc := &fallbackCounter{}
	r := NewRedis(newClient(t, srv.url(), true), NewLocal(time.Now), log,
		WithKeyPrefix(uniquePrefix(t)), WithTimeout(2*time.Second),
		WithProbeInterval(20*time.Millisecond), WithFallbackCounter(fc.count))
	limit := Limit{Rate: 1, Burst: 5, Period: time.Hour}
	key := PartnerKey("client-outage-7")

	for i := range 2 {
		if res := allow(t, r, key, limit); !res.Allowed || res.Remaining != 4-i {
			t.Fatalf("request %d with redis up: got %+v, want allowed", i+1, res)
		}
	}
	if fc.n.Load() != 0 || logs.String() != "" {
		t.Fatalf("with redis up: %d fallback decisions, log %q; want none", fc.n.Load(), logs.String())
	}

	srv.kill(t)
	// The fallback starts from a full budget of its own: 5 allowed, then refused.
	for i := range 8 {
		res := allow(t, r, key, limit)
		if wantAllowed := i < 5; res.Allowed != wantAllowed {
			t.Fatalf("request %d during outage: got %+v, want allowed %t", i+1, res, wantAllowed)
		}
		time.Sleep(5 * time.Millisecond) // let some probes happen
	}
	if got := fc.n.Load(); got != 8 {
		t.Fatalf("during outage: %d fallback decisions counted, want 8", got)
	}
	if got := logs.count(outageMsg); got != 1 {
		t.Fatalf("during outage: outage logged %d times, want once; log:\n%s", got, logs)
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("outage not logged at WARN; log:\n%s", logs)
	}

	srv.start(t)
	waitForRecovery(t, r, logs)
	if got := logs.count(outageMsg); got != 1 {
		t.Fatalf("after recovery: outage logged %d times, want once; log:\n%s", got, logs)
	}
	before := fc.n.Load()
	if res := allow(t, r, PartnerKey("fresh"), limit); !res.Allowed {
		t.Fatalf("after recovery: got %+v, want allowed", res)
	}
	if got := fc.n.Load(); got != before {
		t.Fatalf("after recovery: fallback still deciding (%d, was %d)", got, before)
	}
	t.Logf("log:\n%s", logs)
	if strings.Contains(logs.String(), "client-outage-7") {
		t.Fatal("log contains the partner client id; it must carry no key values")
	}
}

// waitForRecovery makes requests until r logs that Redis is back. go-redis
// stops dialling a server that refused too often and tries again once a
// second, so recovery takes up to a few seconds.
func waitForRecovery(tb testing.TB, r *Redis, logs *logBuffer) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for logs.count(recoveryMsg) == 0 {
		if time.Now().After(deadline) {
			tb.Fatalf("no recovery logged 15s after redis restarted; log:\n%s", logs)
		}
		allow(tb, r, PartnerKey("probe"), PerSecond(1000))
		time.Sleep(20 * time.Millisecond)
	}
	if got := logs.count(recoveryMsg); got != 1 {
		tb.Fatalf("recovery logged %d times, want once; log:\n%s", got, logs)
	}
}

func TestRedisHungServerCostsOnlyTheTimeout(t *testing.T) {
	t.Parallel()
	srv := startRedisServer(t)
	log, logs := newLogger(t)
	fc := &fallbackCounter{}
	// Production client options and the default 50ms timeout.
	r := NewRedis(newClient(t, srv.url(), false), NewLocal(time.Now), log,
		WithKeyPrefix(uniquePrefix(t)), WithProbeInterval(time.Hour), WithFallbackCounter(fc.count))
	limit := PerSecond(100)
	key := PartnerKey("hung")
	if res := allow(t, r, key, limit); !res.Allowed {
		t.Fatalf("with redis up: got %+v, want allowed", res)
	}

	srv.freeze(t)
	start := time.Now()
	res := allow(t, r, key, limit)
	// 50ms plus generous room for a busy test machine; the client's own
	// 250ms read timeout or go-redis's 5s defaults would exceed it.
	if took := time.Since(start); took > 200*time.Millisecond || !res.Allowed {
		t.Fatalf("first request on a hung redis took %s and got %+v, want the fallback's answer within 200ms", took, res)
	}
	start = time.Now()
	allow(t, r, key, limit)
	if took := time.Since(start); took > 45*time.Millisecond { // below the 50ms a try would cost
		t.Fatalf("second request on a hung redis took %s; it should skip redis until the next probe", took)
	}
	if got := fc.n.Load(); got != 2 {
		t.Fatalf("%d fallback decisions counted, want 2", got)
	}
	if got := logs.count(outageMsg); got != 1 {
		t.Fatalf("outage logged %d times, want once; log:\n%s", got, logs)
	}
	srv.thaw(t)
}

func TestRedisCallerCancellationIsNoOutage(t *testing.T) {
	t.Parallel()
	r, fc := newSharedRedis(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := r.Allow(ctx, PartnerKey("gone"), PerSecond(10))
	if err != nil || !res.Allowed {
		t.Fatalf("Allow with a cancelled context: got %+v, %v; want the fallback's answer", res, err)
	}
	if fc.n.Load() != 1 || r.down.Load() {
		t.Fatalf("after a cancelled request: %d fallback decisions, down %t; want 1 decision and redis still up", fc.n.Load(), r.down.Load())
	}
}

func TestRedisOptionsKeepsPasswordOutOfErrors(t *testing.T) {
	t.Parallel()
	_, err := RedisOptions("redis://user:s3cret@127.0.0.1:6379/0\x7f")
	if err == nil {
		t.Fatal("RedisOptions accepted an invalid URL")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatal("RedisOptions error repeats the URL's password")
	}
}
