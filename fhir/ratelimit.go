package fhir

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"

	"github.com/labstack/echo/v4"

	"github.com/kapgw/kapgw/internal/ratelimit"
)

// Limiter decides whether a key may make another request;
// *ratelimit.Redis and *ratelimit.Local are two.
type Limiter interface {
	Allow(ctx context.Context, key string, limit ratelimit.Limit) (ratelimit.Result, error)
}

// Rate limits of the HTTP surface.
type RateLimits struct {
	// Limiter keeps the budgets; nil means an in-process limiter.
	Limiter Limiter
	// PartnerDefault is the FHIR API budget, per second, of a client whose
	// registry entry names none.
	PartnerDefault int
	// Token is the token endpoint's budget per client IP address.
	Token ratelimit.Limit
}

// limitClient spends one request of the authenticated client's budget (its
// registry rate) and refuses with 429 when it is spent. It runs after
// authenticate.
func limitClient(l Limiter, def int) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := principal(c)
			rate := p.Rate
			if rate <= 0 {
				rate = def
			}
			if err := spend(c, l, ratelimit.PartnerKey(p.ClientID), ratelimit.PerSecond(rate)); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// limitIP spends one request of the caller's address's budget. The address
// is the connection's peer, never a forwarding header a client could set.
func limitIP(l Limiter, limit ratelimit.Limit) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
			if err != nil {
				host = c.Request().RemoteAddr
			}
			addr, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("client address %q: %w", host, err)
			}
			if err := spend(c, l, ratelimit.IPKey(addr), limit); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// spend takes one request from key's budget, sets the RateLimit headers and
// returns a 429 throttled error when none was left.
func spend(c echo.Context, l Limiter, key string, limit ratelimit.Limit) error {
	res, err := l.Allow(c.Request().Context(), key, limit)
	if err != nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	ratelimit.SetHeaders(c.Response().Header(), res)
	if res.Allowed {
		return nil
	}
	// The headers set above, Retry-After included, stay on the error response.
	return newError(http.StatusTooManyRequests, "throttled", "too many requests; retry after the Retry-After delay")
}
