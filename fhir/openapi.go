package fhir

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPI is the OpenAPI 3.1 description of the intake API.
//
//go:embed openapi.json
var openAPI []byte

func handleOpenAPI() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.Blob(http.StatusOK, mimeJSON, openAPI)
	}
}
