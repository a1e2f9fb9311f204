package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/config"
	"github.com/kapgw/kapgw/internal/ratelimit"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
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
// publicURL, and the rate limiter (Redis when configured).
func newGate(ctx context.Context, log *slog.Logger, cfg config.Auth, st *store.Store, signer secrets.Signer, publicURL string) (*gate, error) {
	icfg := auth.IssuerConfig{URL: publicURL, Lifetime: cfg.TokenLifetime}
	g := &gate{
		issuer:   auth.NewIssuer(st, st, auth.NewKeys(time.Now), signer, icfg, time.Now),
		verifier: auth.NewVerifier(auth.NewClients(st, cfg.ClientCache, time.Now), signer, publicURL, time.Now),
		limits:   fhir.RateLimits{PartnerDefault: cfg.ClientRate, Token: ratelimit.PerMinute(cfg.TokenRate)},
		close:    func() {},
	}
	local := ratelimit.NewLocal(time.Now)
	if cfg.RedisURL == "" {
		g.limits.Limiter = local
		log.InfoContext(ctx, "auth ready", "token_url", icfg.TokenURL(), "rate_limits", "in-process")
		return g, nil
	}
	opts, err := ratelimit.RedisOptions(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("rate limits: %w", err)
	}
	rdb := redis.NewClient(opts)
	g.limits.Limiter = ratelimit.NewRedis(rdb, local, log)
	g.close = func() { _ = rdb.Close() }
	log.InfoContext(ctx, "auth ready", "token_url", icfg.TokenURL(), "rate_limits", "redis")
	return g, nil
}

// publicURL is the configured public URL, or http://{listen address}.
func publicURL(cfg config.Auth, ln net.Listener) string {
	if cfg.PublicURL != "" {
		return cfg.PublicURL
	}
	return "http://" + ln.Addr().String()
}
