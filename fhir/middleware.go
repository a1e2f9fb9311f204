package fhir

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

const headerRequestID = "X-Request-Id"

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9\-._]{8,64}$`)

// requestIDMiddleware gives every request an id, echoed in X-Request-Id, so a
// partner can quote it and an engineer can find the request in the logs. A
// well-formed id sent by the caller is kept.
func requestIDMiddleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			id := c.Request().Header.Get(headerRequestID)
			if !validRequestID.MatchString(id) {
				var b [12]byte
				_, _ = rand.Read(b[:])
				id = hex.EncodeToString(b[:])
			}
			c.Set(headerRequestID, id)
			c.Response().Header().Set(headerRequestID, id)
			return next(c)
		}
	}
}

func requestID(c echo.Context) string {
	id, _ := c.Get(headerRequestID).(string)
	return id
}

// accessLog writes one line per request: method, route template (never the
// raw URL, which can carry identifiers), status and duration.
func accessLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			log.InfoContext(c.Request().Context(), "request",
				"method", c.Request().Method, "route", c.Path(),
				"status", c.Response().Status, "duration_ms", time.Since(start).Milliseconds(),
				"bytes", c.Response().Size, "request_id", requestID(c))
			return nil
		}
	}
}

// recoverer turns a panic into a 500 OperationOutcome instead of a dropped
// connection.
func recoverer(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if r := recover(); r != nil {
					log.ErrorContext(c.Request().Context(), "panic", "route", c.Path(), "request_id", requestID(c))
					err = fmt.Errorf("panic in %s", c.Path())
				}
			}()
			return next(c)
		}
	}
}

// noStore forbids caches from keeping any response: they carry PHI.
func noStore() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set("Cache-Control", "no-store")
			return next(c)
		}
	}
}

// bodyLimit renders a byte count in the form echo's BodyLimit expects.
func bodyLimit(n int64) string {
	return strconv.FormatInt(n, 10) + "B"
}
