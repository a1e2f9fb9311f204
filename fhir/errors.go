package fhir

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/store"
)

// errorHandler renders every failure as an OperationOutcome. It is the only
// place that turns an error into a response.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		ctx := c.Request().Context()
		e := toError(err)
		if e.Status >= 500 {
			log.ErrorContext(ctx, "request failed", "err", err.Error(),
				"route", c.Path(), "request_id", requestID(c))
		}
		if e.Status == http.StatusInternalServerError {
			e = &Error{Status: e.Status, Issues: []Issue{{Severity: "error", Code: "exception",
				Diagnostic: "internal error; quote request id " + requestID(c)}}}
		}
		for k, vs := range e.Header {
			for _, v := range vs {
				c.Response().Header().Add(k, v)
			}
		}
		body, merr := outcome(e.Issues)
		if merr != nil {
			log.ErrorContext(ctx, "encode operation outcome", "err", merr.Error())
			c.Response().WriteHeader(http.StatusInternalServerError)
			return
		}
		if c.Request().Method == http.MethodHead {
			c.Response().WriteHeader(e.Status)
			return
		}
		_ = c.Blob(e.Status, mimeFHIRJSON, body)
	}
}

// toError classifies any error as a status and issues.
func toError(err error) *Error {
	var fe *Error
	var issues kap.Issues
	var he *echo.HTTPError
	switch {
	case errors.As(err, &fe):
		return fe
	case errors.As(err, &issues):
		return documentError(issues)
	case errors.As(err, new(intake.IDMismatchError)):
		return &Error{Status: http.StatusBadRequest, Issues: []Issue{{Severity: "error", Code: "invalid",
			Diagnostic: "the document id differs from the id in the request path", Expression: "id"}}}
	case errors.Is(err, store.ErrNotFound):
		return newError(http.StatusNotFound, "not-found", "resource not found")
	case errors.Is(err, store.ErrGone):
		return newError(http.StatusGone, "deleted", "resource deleted")
	case errors.Is(err, context.DeadlineExceeded):
		return newError(http.StatusServiceUnavailable, "timeout", "the request took too long")
	case errors.As(err, &he):
		return httpError(he)
	}
	return newError(http.StatusInternalServerError, "exception", "internal error")
}

// documentError renders the issues of a refused KAP document. A document that
// is not well-formed JSON of the right shape gets 400; one that is well-formed
// but breaks the contract's rules gets 422.
func documentError(issues kap.Issues) *Error {
	status := http.StatusUnprocessableEntity
	out := make([]Issue, 0, len(issues))
	for _, is := range issues {
		if is.Code == "structure" {
			status = http.StatusBadRequest
		}
		out = append(out, Issue{Severity: "error", Code: is.Code, Diagnostic: is.Message, Expression: is.Expression})
	}
	return &Error{Status: status, Issues: out}
}

// httpError maps echo's own errors (unknown route, wrong method, body too
// large) to issue codes.
func httpError(he *echo.HTTPError) *Error {
	code := "processing"
	msg := http.StatusText(he.Code)
	switch he.Code {
	case http.StatusNotFound:
		code, msg = "not-found", "no such endpoint"
	case http.StatusMethodNotAllowed:
		code = "not-supported"
	case http.StatusRequestEntityTooLarge:
		code, msg = "too-long", "request body exceeds the size limit"
	case http.StatusUnsupportedMediaType:
		code = "not-supported"
	case http.StatusBadRequest:
		code = "invalid"
	case http.StatusUnauthorized:
		code = "login"
	case http.StatusForbidden:
		code = "forbidden"
	case http.StatusTooManyRequests:
		code = "throttled"
	}
	if he.Code >= 500 {
		code = "exception"
	}
	return newError(he.Code, code, msg)
}
