package config

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Auth configures SMART Backend Services tokens and API rate limits.
type Auth struct {
	// PublicURL is the gateway's public base URL: the iss and aud of its
	// access tokens, and the base of the token URL client assertions must
	// name. Empty means http://{the address the server listens on}.
	PublicURL string
	// TokenLifetime is how long access tokens live (at most 5 minutes).
	TokenLifetime time.Duration
	// RedisURL keeps rate-limit budgets in Redis, shared by every instance;
	// empty limits in process.
	RedisURL string
	// ClientRate is the FHIR API budget, in requests per second, of a
	// client whose registry entry names none.
	ClientRate int
	// TokenRate is the token endpoint's budget per client address, in
	// requests per minute.
	TokenRate int
	// ClientCache is how long a client's registry entry is cached per
	// instance: how long `kapgw partners disable` may take to bite.
	ClientCache time.Duration
	// RateLimitLease is how many of a client's requests one Redis decision
	// may take in advance while its budget is far from spent; 1 asks Redis
	// for every request.
	RateLimitLease int
}

func authSettings() []setting {
	dur := func(f func(c *Config) *time.Duration) func(c *Config, v string) error {
		return func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return errors.New("must be a duration such as 5m")
			}
			*f(c) = d
			return nil
		}
	}
	num := func(f func(c *Config) *int) func(c *Config, v string) error {
		return func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return errors.New("must be an integer")
			}
			*f(c) = n
			return nil
		}
	}
	return []setting{
		{"public-url", "KAPGW_PUBLIC_URL", "", "public base URL of the gateway (token iss/aud, token URL); empty: http://{listen address}",
			func(c *Config, v string) error { c.Auth.PublicURL = strings.TrimSuffix(v, "/"); return nil }},
		{"token-lifetime", "KAPGW_TOKEN_LIFETIME", "5m", "access token lifetime, at most 5m",
			dur(func(c *Config) *time.Duration { return &c.Auth.TokenLifetime })},
		{"redis-url", "KAPGW_REDIS_URL", "", "Redis URL (redis://...) for rate limits shared by all instances; empty limits in process",
			func(c *Config, v string) error { c.Auth.RedisURL = v; return nil }},
		{"client-rate", "KAPGW_CLIENT_RATE", "50", "FHIR API requests per second of a client whose registry entry sets no rate",
			num(func(c *Config) *int { return &c.Auth.ClientRate })},
		{"token-rate", "KAPGW_TOKEN_RATE", "120", "token requests per minute per client address",
			num(func(c *Config) *int { return &c.Auth.TokenRate })},
		{"client-cache", "KAPGW_CLIENT_CACHE", "2s", "how long a client's registry entry is cached (how soon disable takes effect)",
			dur(func(c *Config) *time.Duration { return &c.Auth.ClientCache })},
		{"rate-limit-lease", "KAPGW_RATE_LIMIT_LEASE", "16", "with Redis, how many of a client's requests one Redis decision may take in advance while its budget is far from spent (1: Redis decides every request)",
			num(func(c *Config) *int { return &c.Auth.RateLimitLease })},
	}
}

func (a Auth) validate() []error {
	var errs []error
	if a.PublicURL != "" {
		if u, err := url.Parse(a.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
			errs = append(errs, errors.New("--public-url / KAPGW_PUBLIC_URL: must be an http(s) URL without a query"))
		}
	}
	if a.TokenLifetime <= 0 || a.TokenLifetime > 5*time.Minute {
		errs = append(errs, errors.New("--token-lifetime / KAPGW_TOKEN_LIFETIME: must be between 1s and 5m"))
	}
	if a.RedisURL != "" && !strings.HasPrefix(a.RedisURL, "redis://") && !strings.HasPrefix(a.RedisURL, "rediss://") {
		errs = append(errs, errors.New("--redis-url / KAPGW_REDIS_URL: must start with redis:// or rediss://"))
	}
	if a.ClientRate <= 0 {
		errs = append(errs, errors.New("--client-rate / KAPGW_CLIENT_RATE: must be positive"))
	}
	if a.TokenRate <= 0 {
		errs = append(errs, errors.New("--token-rate / KAPGW_TOKEN_RATE: must be positive"))
	}
	if a.ClientCache < 0 || a.ClientCache > time.Minute {
		errs = append(errs, errors.New("--client-cache / KAPGW_CLIENT_CACHE: must be between 0 and 1m"))
	}
	if a.RateLimitLease < 1 || a.RateLimitLease > 256 {
		errs = append(errs, errors.New("--rate-limit-lease / KAPGW_RATE_LIMIT_LEASE: must be between 1 and 256"))
	}
	return errs
}
