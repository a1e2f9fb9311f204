package ratelimit

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// Run with: go test -run '^$' -bench . ./internal/ratelimit/

func BenchmarkLocalAllow(b *testing.B) {
	benchmarkAllow(b, NewLocal(time.Now))
}

func BenchmarkRedisAllow(b *testing.B) {
	r, fc := newSharedRedis(b)
	benchmarkAllow(b, r)
	if n := fc.n.Load(); n != 0 {
		b.Fatalf("fallback decided %d times; the numbers are not Redis's", n)
	}
}

// benchmarkAllow spreads requests over 64 partners, as the FHIR API would,
// from parallel callers.
func benchmarkAllow(b *testing.B, l limiter) {
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = PartnerKey("bench-" + strconv.Itoa(i))
	}
	limit := PerSecond(1_000_000)
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			key := keys[next.Add(1)%int64(len(keys))]
			if _, err := l.Allow(ctx, key, limit); err != nil {
				b.Fatalf("Allow: %v", err)
			}
		}
	})
}
