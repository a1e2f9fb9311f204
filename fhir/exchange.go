package fhir

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kapgw/kapgw/internal/store"
)

// ExchangeLog records exchanges and shows them to admins;
// *exchange.Recorder is it.
type ExchangeLog interface {
	Enqueue(ctx context.Context, e store.Exchange, payload []byte) error
	Exchanges(ctx context.Context, f store.ExchangeFilter) ([]store.Exchange, error)
	Payload(ctx context.Context, id int64, adminID string) ([]byte, error)
}

// exchangeRoutes says which routes are exchanges, of which kind, and
// whether their request body is kept (encrypted) as the payload.
var exchangeRoutes = map[string]struct {
	kind        string
	keepPayload bool
}{
	"/kap/v1/episodes/:id":             {"intake", true},
	"/fhir/r4/:type":                   {"pull", false},
	"/fhir/r4/:type/_search":           {"pull", false},
	"/fhir/r4/:type/_history":          {"pull", false},
	"/fhir/r4/:type/:id":               {"pull", false},
	"/fhir/r4/:type/:id/_history":      {"pull", false},
	"/fhir/r4/:type/:id/_history/:vid": {"pull", false},
	"/fhir/r4/Patient/:id/$everything": {"pull", false},
	"/pharmacy/v1/callbacks":           {"pharmacy", true},
}

// recordExchanges writes one exchange log row per intake PUT, partner
// request on the FHIR API and pharmacy callback, once the response is
// rendered: route, client, references, status, duration and the request
// body (encrypted) where it is the exchanged document. A failure to record
// is logged; it does not change the response already made.
func recordExchanges(log *slog.Logger, x ExchangeLog, maxBody int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if x == nil {
			return next
		}
		if maxBody <= 0 {
			maxBody = 1 << 24
		}
		return func(c echo.Context) error {
			route, ok := exchangeRoutes[c.Path()]
			if !ok || (route.kind == "intake" && c.Request().Method != http.MethodPut) {
				return next(c)
			}
			start := time.Now()
			var body *bytes.Buffer
			if route.keepPayload && c.Request().Body != nil {
				body = &bytes.Buffer{}
				c.Request().Body = teeBody{Reader: io.TeeReader(c.Request().Body, &limitedWriter{w: body, n: maxBody}), Closer: c.Request().Body}
			}
			if err := next(c); err != nil {
				c.Error(err)
			}
			e := exchangeOf(c, route.kind)
			e.Duration = time.Since(start)
			var payload []byte
			if body != nil {
				payload = body.Bytes()
			}
			ctx := c.Request().Context()
			if err := x.Enqueue(ctx, e, payload); err != nil {
				log.WarnContext(ctx, "exchange not recorded", "route", c.Path(), "request_id", requestID(c), "err", err.Error())
			}
			return nil
		}
	}
}

// exchangeOf describes the finished request: ids and codes only.
func exchangeOf(c echo.Context, kind string) store.Exchange {
	status := c.Response().Status
	e := store.Exchange{Kind: kind, Direction: "in", PartnerID: principal(c).ClientID,
		Operation: c.Request().Method + " " + c.Path(), Code: strconv.Itoa(status), Status: statusClass(status),
		ErrorClass: errorClass(status)}
	typ, id := c.Param("type"), c.Param("id")
	switch {
	case kind == "intake":
		e.EpisodeID = id
	case strings.HasPrefix(c.Path(), "/fhir/r4/Patient/"):
		e.Refs = []string{"Patient/" + id}
	case typ != "" && id != "":
		e.Refs = []string{typ + "/" + id}
	case typ != "":
		e.Refs = []string{typ}
	}
	if kind == "pharmacy" {
		e.PartnerID = "pharmacy"
	}
	return e
}

func statusClass(status int) string {
	switch {
	case status >= 500:
		return "error"
	case status >= 400:
		return "rejected"
	}
	return "ok"
}

// errorClass names why a request failed, from its status.
func errorClass(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge:
		return "invalid"
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound, http.StatusGone:
		return "not_found"
	case http.StatusConflict, http.StatusPreconditionFailed:
		return "conflict"
	case http.StatusTooManyRequests:
		return "throttled"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	if status >= 500 {
		return "server_error"
	}
	return ""
}

// teeBody is a request body that copies what the handler reads.
type teeBody struct {
	io.Reader
	io.Closer
}

// limitedWriter keeps at most n bytes and drops the rest silently, so a
// body over the limit (which BodyLimit refuses anyway) is not buffered.
type limitedWriter struct {
	w io.Writer
	n int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	k := min(int64(len(p)), l.n)
	if _, err := l.w.Write(p[:k]); err != nil {
		return 0, err
	}
	l.n -= k
	return len(p), nil
}
