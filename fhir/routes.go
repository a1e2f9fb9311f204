package fhir

import (
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// routes lists the whole API surface in one place.
//
// Middleware that applies to some routes only (authentication, body limits)
// is attached per route: echo turns group-level middleware into catch-all
// routes, which would answer a wrong method with 404 instead of 405.
func routes(e *echo.Echo, o Options) {
	e.GET("/healthz", handleHealth())
	e.GET("/readyz", handleReady(o.Ready))
	e.GET("/metrics", handleMetrics(o.Telemetry.Metrics))

	guard := authenticate(o.Auth)
	limit := middleware.BodyLimit(bodyLimit(o.MaxBodyBytes))

	e.GET("/kap/v1/openapi.json", handleOpenAPI())
	kapAPI := e.Group("/kap/v1")
	kapAPI.PUT("/episodes/:id", handleEpisodePut(o.Intake), guard, limit)
	kapAPI.GET("/episodes/:id", handleEpisodeGet(o.Intake), guard)
	kapAPI.GET("/episodes/:id/fhir", handleEpisodeBundle(o.Intake, o.Now), guard)
	kapAPI.POST("/episodes/$validate", handleEpisodeValidate(o.Intake, o.Now), guard, limit)

	api := e.Group("/fhir/r4")
	api.GET("/:type/:id", handleRead(o.Reader), guard)
	api.GET("/:type/:id/_history/:vid", handleVRead(o.Reader), guard)
}
