package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// meterName is the instrumentation scope of the gateway's own instruments.
const meterName = "github.com/kapgw/kapgw"

// RateLimitRejections counts requests refused with 429, by policy name.
type RateLimitRejections struct{ c metric.Int64Counter }

// NewRateLimitRejections creates the kapgw.ratelimit.rejections counter. The
// rate-limit middleware calls Add once per 429.
func NewRateLimitRejections(mp metric.MeterProvider) (*RateLimitRejections, error) {
	c, err := mp.Meter(meterName).Int64Counter("kapgw.ratelimit.rejections",
		metric.WithDescription("Requests refused by a rate limit."), metric.WithUnit("{request}"))
	if err != nil {
		return nil, fmt.Errorf("rate-limit rejections counter: %w", err)
	}
	return &RateLimitRejections{c}, nil
}

// Add counts one rejection. policy names the limit (for example "partner"
// or "intake"); never pass a client id, token or key.
func (r *RateLimitRejections) Add(ctx context.Context, policy string) {
	r.c.Add(ctx, 1, attrs(attribute.String("policy", policy)))
}

// VaultErrors counts failed calls to Vault, by operation and error class.
type VaultErrors struct{ c metric.Int64Counter }

// NewVaultErrors creates the kapgw.vault.errors counter. secrets.Client
// reports to it through Instrument.
func NewVaultErrors(mp metric.MeterProvider) (*VaultErrors, error) {
	c, err := mp.Meter(meterName).Int64Counter("kapgw.vault.errors",
		metric.WithDescription("Failed calls to Vault: unreachable, sealed, refused."), metric.WithUnit("{error}"))
	if err != nil {
		return nil, fmt.Errorf("vault errors counter: %w", err)
	}
	return &VaultErrors{c}, nil
}

// Add counts one error. class is a short code such as "unavailable",
// "status_403" or "transport"; never a secret path or message.
func (v *VaultErrors) Add(ctx context.Context, class string) {
	v.c.Add(ctx, 1, attrs(attribute.String("error_class", class)))
}
