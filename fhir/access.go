package fhir

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/ratelimit"
	"github.com/kapgw/kapgw/internal/store"
)

// Authenticator identifies the caller of a request from its credentials.
// An error wrapping auth.ErrUnauthenticated means the caller is not
// authenticated (401); any other error is the gateway's own failure (500).
// *auth.Verifier is the one kapgw serves with.
type Authenticator interface {
	Authenticate(r *http.Request) (auth.Principal, error)
}

const ctxPrincipal = "kapgw.principal"

// authenticate runs a on every request of the routes it guards, keeps the
// principal for the handlers, and spends one request of the client's rate
// budget (its registry rate per second, or def).
func authenticate(a Authenticator, l Limiter, def int) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		next = limitClient(l, def)(next)
		return func(c echo.Context) error {
			p, err := a.Authenticate(c.Request())
			if errors.Is(err, auth.ErrUnauthenticated) {
				return unauthenticated()
			}
			if err != nil {
				return fmt.Errorf("authenticate: %w", err)
			}
			c.Set(ctxPrincipal, p)
			return next(c)
		}
	}
}

// principal returns the authenticated caller of the request. Handlers
// behind authenticate always have one; elsewhere it is the zero Principal,
// which may do nothing.
func principal(c echo.Context) auth.Principal {
	p, _ := c.Get(ctxPrincipal).(auth.Principal)
	return p
}

// access is what the caller may see of patient data.
func access(c echo.Context) store.Access {
	return principal(c).Access
}

// denyAll is the Authenticator of a handler built without one: nothing is
// open by default, every guarded route answers 401.
type denyAll struct{}

func (denyAll) Authenticate(*http.Request) (auth.Principal, error) {
	return auth.Principal{}, auth.ErrUnauthenticated
}

// unauthenticated is the 401 of a request without a valid access token. It
// says why only in general terms: details would help an attacker more than
// a partner, whose token endpoint errors already explain.
func unauthenticated() *Error {
	e := newError(http.StatusUnauthorized, "login", "a valid Bearer access token from /auth/token is required")
	e.Header = http.Header{"Www-Authenticate": {`Bearer realm="kapgw"`}}
	return e
}

// requireScope lets a request through only when its principal is of one of
// kinds and was granted scope (403 otherwise).
func requireScope(scope string, kinds ...auth.Kind) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := principal(c)
			if !p.HasScope(scope) || !slices.Contains(kinds, p.Kind) {
				return newError(http.StatusForbidden, "forbidden", "this client may not use this endpoint (needs "+scope+")")
			}
			return next(c)
		}
	}
}

// withAuthDefaults fills what Options may leave out: without an
// Authenticator nothing is open, without a Limiter budgets are kept in
// process.
func withAuthDefaults(o Options) Options {
	if o.Auth == nil {
		o.Auth = denyAll{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RateLimits.Limiter == nil {
		o.RateLimits.Limiter = ratelimit.NewLocal(o.Now)
	}
	if o.RateLimits.PartnerDefault <= 0 {
		o.RateLimits.PartnerDefault = DefaultClientRate
	}
	if o.RateLimits.Token.Validate() != nil {
		o.RateLimits.Token = ratelimit.PerMinute(DefaultTokenRatePerMinute)
	}
	return o
}

// Defaults of RateLimits.
const (
	DefaultClientRate         = 50  // requests per second per client
	DefaultTokenRatePerMinute = 120 // token requests per minute per address
)
