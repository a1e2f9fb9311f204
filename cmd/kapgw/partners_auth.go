package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/config"
	"github.com/kapgw/kapgw/internal/ratelimit"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/internal/telemetry"
)

// gate is who may call the API and how often: the token endpoint, the
// access-token verifier and the rate limiter.
type gate struct {
	issuer   *auth.Issuer
	verifier *auth.Verifier
	limits   fhir.RateLimits
	close    func()
}

// newGate builds the SMART Backend Services issuer and verifier over the
// client registry in st, signing with signer, for the deployment at
// publicURL, and the rate limiter (Redis when configured, traced and
// measured through tel; refusals and fallback decisions are counted).
func newGate(ctx context.Context, log *slog.Logger, cfg config.Auth, st *store.Store, signer secrets.Signer, publicURL string, tel *telemetry.Telemetry) (*gate, error) {
	icfg := auth.IssuerConfig{URL: publicURL, Lifetime: cfg.TokenLifetime}
	g := &gate{
		issuer:   auth.NewIssuer(st, st, auth.NewKeys(time.Now), signer, icfg, time.Now),
		verifier: auth.NewVerifier(auth.NewClients(st, cfg.ClientCache, time.Now), signer, publicURL, time.Now),
		limits:   fhir.RateLimits{PartnerDefault: cfg.ClientRate, Token: ratelimit.PerMinute(cfg.TokenRate)},
		close:    func() {},
	}
	rejections, err := telemetry.NewRateLimitRejections(tel.MeterProvider)
	if err != nil {
		return nil, err
	}
	local := ratelimit.NewLocal(time.Now)
	if cfg.RedisURL == "" {
		g.limits.Limiter = countRejections{local, rejections}
		log.InfoContext(ctx, "auth ready", "token_url", icfg.TokenURL(), "rate_limits", "in-process")
		return g, nil
	}
	opts, err := ratelimit.RedisOptions(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("rate limits: %w", err)
	}
	fallbacks, err := telemetry.NewRateLimitFallbacks(tel.MeterProvider)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(opts)
	if err := tel.InstrumentRedis(rdb); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("rate limits: %w", err)
	}
	g.limits.Limiter = countRejections{ratelimit.NewRedis(rdb, local, log, ratelimit.WithFallbackCounter(fallbacks.Add), ratelimit.WithLeases(cfg.RateLimitLease)), rejections}
	g.close = func() { _ = rdb.Close() }
	log.InfoContext(ctx, "auth ready", "token_url", icfg.TokenURL(), "rate_limits", "redis")
	return g, nil
}

// countRejections counts every request its Limiter refuses, by the kind of
// budget ("partner" or "ip"), never the key itself.
type countRejections struct {
	fhir.Limiter
	count *telemetry.RateLimitRejections
}

func (c countRejections) Allow(ctx context.Context, key string, limit ratelimit.Limit) (ratelimit.Result, error) {
	res, err := c.Limiter.Allow(ctx, key, limit)
	if err == nil && !res.Allowed {
		policy, _, _ := strings.Cut(key, ":")
		c.count.Add(ctx, policy)
	}
	return res, err
}

// publicURL is the configured public URL, or http://{listen address}.
func publicURL(cfg config.Auth, ln net.Listener) string {
	if cfg.PublicURL != "" {
		return cfg.PublicURL
	}
	return "http://" + ln.Addr().String()
}
