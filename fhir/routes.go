package fhir

import (
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/search"
)

// routes lists the whole API surface in one place.
//
// Middleware that applies to some routes only (authentication, body limits)
// is attached per route: echo turns group-level middleware into catch-all
// routes, which would answer a wrong method with 404 instead of 405.
func routes(e *echo.Echo, o Options) {
	e.GET("/healthz", handleHealth())
	e.GET("/readyz", handleReady(o.Ready))
	// /metrics is not here: it is served on its own listener (kapgw
	// serve --metrics-addr, loopback by default), never to API clients.

	// guard authenticates and spends the client's rate budget; every
	// route behind it needs a token.
	guard := authenticate(o.Auth, o.RateLimits.Limiter, o.RateLimits.PartnerDefault)
	write := requireScope(auth.ScopeEpisodesWrite, auth.KindClinic)
	read := requireScope(auth.ScopeEpisodesRead, auth.KindClinic, auth.KindAdmin)

	if o.Tokens != nil {
		e.POST("/auth/token", handleToken(o.Tokens), limitIP(o.RateLimits.Limiter, o.RateLimits.Token))
		e.GET("/.well-known/smart-configuration", handleSMARTConfiguration(o.Tokens))
		e.GET("/fhir/r4/.well-known/smart-configuration", handleSMARTConfiguration(o.Tokens))
	}
	limit := middleware.BodyLimit(bodyLimit(o.MaxBodyBytes))

	e.GET("/kap/v1/openapi.json", handleOpenAPI())
	kapAPI := e.Group("/kap/v1")
	kapAPI.PUT("/episodes/:id", handleEpisodePut(o.Intake), guard, write, limit)
	kapAPI.GET("/episodes/:id", handleEpisodeGet(o.Intake), guard, read)
	kapAPI.GET("/episodes/:id/fhir", handleEpisodeBundle(o.Intake, o.Now), guard, read)
	kapAPI.POST("/episodes/$validate", handleEpisodeValidate(o.Intake, o.Now), guard, write, limit)

	api := e.Group("/fhir/r4")
	reg, srch := search.New(), searcherOf(o)
	api.GET("/metadata", handleMetadata(reg, o.Now))
	api.GET("/:type", handleSearch(reg, srch), guard)
	api.POST("/:type/_search", handleSearch(reg, srch), guard, limit)
	api.GET("/:type/_history", handleHistory(reg, srch, false), guard)
	api.GET("/:type/:id", handleRead(srch), guard)
	api.GET("/:type/:id/_history", handleHistory(reg, srch, true), guard)
	api.GET("/:type/:id/_history/:vid", handleVRead(o.Reader, srch), guard)
	api.GET("/Patient/:id/$everything", handleEverything(reg, srch), guard)
	if o.Audit.Log != nil {
		api.GET("/AuditEvent", handleAuditSearch(o.Audit.Log), guard, requireAuditScope(auth.Search))
		api.GET("/AuditEvent/:id", handleAuditRead(o.Audit.Log), guard, requireAuditScope(auth.Read))
	}

	if o.Exchanges != nil {
		admin := requireAdmin()
		e.GET("/admin/v1/exchanges", handleExchanges(o.Exchanges), guard, admin)
		e.GET("/admin/v1/exchanges/:id/payload", handleExchangePayload(o.Exchanges), guard, admin)
	}

	// The pharmacy authenticates each callback with an HMAC over timestamp
	// and body, not with a SMART token.
	if o.Pharmacy != nil {
		e.POST("/pharmacy/v1/callbacks", handlePharmacyCallback(o.Pharmacy))
	}
}
