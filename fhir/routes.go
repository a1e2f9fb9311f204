package fhir

import (
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// routes lists the whole API surface in one place.
func routes(e *echo.Echo, o Options) {
	e.GET("/healthz", handleHealth())
	e.GET("/readyz", handleReady(o.Ready))

	// Body limits sit on the routes that take a body: group-level middleware
	// would turn echo's 405 for a wrong method into a 404.
	limit := middleware.BodyLimit(bodyLimit(o.MaxBodyBytes))
	kapAPI := e.Group("/kap/v1")
	kapAPI.GET("/openapi.json", handleOpenAPI())
	kapAPI.PUT("/episodes/:id", handleEpisodePut(o.Intake), limit)
	kapAPI.GET("/episodes/:id", handleEpisodeGet(o.Intake))
	kapAPI.GET("/episodes/:id/fhir", handleEpisodeBundle(o.Intake, o.Now))
	kapAPI.POST("/episodes/$validate", handleEpisodeValidate(o.Intake, o.Now), limit)

	api := e.Group("/fhir/r4")
	api.GET("/:type/:id", handleRead(o.Reader))
	api.GET("/:type/:id/_history/:vid", handleVRead(o.Reader))
}
