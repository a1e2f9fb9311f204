package fhir

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// handleMetrics serves the Prometheus exposition of the gateway's own
// registry. Metric labels hold route templates, methods, statuses and codes
// only, so the page carries no PHI.
func handleMetrics(h http.Handler) echo.HandlerFunc {
	if h == nil {
		return func(echo.Context) error {
			return newError(http.StatusNotFound, "not-found", "metrics are not enabled")
		}
	}
	return echo.WrapHandler(h)
}
