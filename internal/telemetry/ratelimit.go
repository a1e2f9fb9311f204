package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/metric"
)

// RateLimitFallbacks counts rate-limit decisions taken by the in-process
// fallback limiter while Redis is unreachable.
type RateLimitFallbacks struct{ c metric.Int64Counter }

// NewRateLimitFallbacks creates the kapgw.ratelimit.fallbacks counter. The
// Redis limiter calls Add once per decision it could not take in Redis, so
// an outage shows on dashboards even though no request fails.
func NewRateLimitFallbacks(mp metric.MeterProvider) (*RateLimitFallbacks, error) {
	c, err := mp.Meter(meterName).Int64Counter("kapgw.ratelimit.fallbacks",
		metric.WithDescription("Rate-limit decisions taken in process because Redis was unreachable."),
		metric.WithUnit("{decision}"))
	if err != nil {
		return nil, fmt.Errorf("rate-limit fallbacks counter: %w", err)
	}
	return &RateLimitFallbacks{c}, nil
}

// Add counts one fallback decision.
func (f *RateLimitFallbacks) Add(ctx context.Context) {
	f.c.Add(ctx, 1)
}
