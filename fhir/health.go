package fhir

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

func handleHealth() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}
}

// handleReady answers 200 only when the database is reachable and migrated.
func handleReady(chk Checker) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		if err := chk.Ready(ctx); err != nil {
			return newError(http.StatusServiceUnavailable, "transient", "not ready: database unreachable or not migrated")
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	}
}
