package fhir

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/kapgw/kapgw/internal/auth"
)

// Tokens is the SMART Backend Services token endpoint; *auth.Issuer is it.
type Tokens interface {
	Token(ctx context.Context, form url.Values) (auth.Token, error)
	TokenURL() string
}

// maxTokenRequestBytes caps a token request: a form with one assertion.
const maxTokenRequestBytes = 16 << 10

// handleToken answers POST /auth/token. Unlike every other route, its
// refusals are RFC 6749 JSON ({"error": "invalid_client"}), not
// OperationOutcomes, because OAuth clients expect exactly that; the
// gateway's own failures still go to the error handler.
func handleToken(t Tokens) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Pragma", "no-cache")
		mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return c.JSON(http.StatusBadRequest, &auth.OAuthError{Code: "invalid_request",
				Description: "the body must be application/x-www-form-urlencoded"})
		}
		r := c.Request()
		r.Body = http.MaxBytesReader(c.Response(), r.Body, maxTokenRequestBytes)
		if err := r.ParseForm(); err != nil {
			return c.JSON(http.StatusBadRequest, &auth.OAuthError{Code: "invalid_request", Description: "unreadable form"})
		}
		tok, err := t.Token(r.Context(), r.PostForm)
		var oe *auth.OAuthError
		if errors.As(err, &oe) {
			if oe.Status == http.StatusUnauthorized {
				h.Set("WWW-Authenticate", `Bearer realm="kapgw"`)
			}
			return c.JSON(oe.Status, oe)
		}
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, tok)
	}
}
