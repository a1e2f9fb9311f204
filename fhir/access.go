package fhir

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/store"
)

// Authenticator identifies the caller of a request from its credentials.
// An error means the caller is not authenticated (401).
type Authenticator interface {
	Authenticate(r *http.Request) (auth.Principal, error)
}

const ctxPrincipal = "kapgw.principal"

// authenticate runs a on every request of the routes it guards and keeps
// the principal for the handlers.
func authenticate(a Authenticator) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, err := a.Authenticate(c.Request())
			if err != nil {
				return err
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

// openAuthenticator lets every request do everything. It exists only until
// SMART Backend Services authentication is wired (the partner API issue);
// TODO(issue 3): remove it and make Options.Auth required.
type openAuthenticator struct{}

func (openAuthenticator) Authenticate(*http.Request) (auth.Principal, error) {
	return auth.Principal{Kind: auth.KindAdmin, Scopes: []string{"system/*.*", "kap/episodes.write"},
		Access: store.Access{All: true}}, nil
}
