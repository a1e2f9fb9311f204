package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestLocalDropsKeysWhoseBudgetIsFull(t *testing.T) {
	t.Parallel()
	clk := newClock()
	l := NewLocal(clk.Now)
	limit := PerSecond(10)
	for i := range 100 {
		allow(t, l, PartnerKey(fmt.Sprint(i)), limit)
	}
	if n := localKeys(t, l); n != 100 {
		t.Fatalf("after 100 keys: tracking %d, want 100", n)
	}
	clk.Advance(sweepEvery)
	allow(t, l, PartnerKey("late"), limit)
	if n := localKeys(t, l); n != 1 {
		t.Fatalf("after a sweep: tracking %d keys, want only the new one", n)
	}
}

func TestLocalStaysWithinMaxKeys(t *testing.T) {
	t.Parallel()
	clk := newClock()
	l := NewLocal(clk.Now, WithMaxKeys(50))
	limit := Limit{Rate: 1, Burst: 2, Period: time.Hour}
	for i := range 1000 {
		if r := allow(t, l, IPKey(ipv4(i)), limit); !r.Allowed {
			t.Fatalf("first request of key %d: got %+v, want allowed", i, r)
		}
		clk.Advance(time.Millisecond)
	}
	if n := localKeys(t, l); n != 50 {
		t.Fatalf("after 1000 keys: tracking %d, want the maximum of 50", n)
	}
}

func TestLocalRefusedRequestsSpendNothing(t *testing.T) {
	t.Parallel()
	clk := newClock()
	l := NewLocal(clk.Now)
	limit := Limit{Rate: 1, Burst: 1, Period: time.Minute}
	key := PartnerKey("hammer")
	allow(t, l, key, limit)
	for range 100 {
		if r := allow(t, l, key, limit); r.Allowed {
			t.Fatalf("hammering: got %+v, want refused", r)
		}
	}
	clk.Advance(time.Minute)
	if r := allow(t, l, key, limit); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("one period after the last allowed request: got %+v, want allowed", r)
	}
}

func localKeys(tb testing.TB, l *Local) int {
	tb.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tat)
}
