package fhir

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/store"
)

// requireAdmin lets only admin clients through (403 otherwise).
func requireAdmin() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if principal(c).Kind != auth.KindAdmin {
				return newError(http.StatusForbidden, "forbidden", "admin clients only")
			}
			return next(c)
		}
	}
}

// exchangeJSON is one exchange as the admin API shows it: no payload,
// only whether one was kept.
type exchangeJSON struct {
	ID         int64    `json:"id"`
	At         string   `json:"at"`
	Kind       string   `json:"kind"`
	Direction  string   `json:"direction"`
	TraceID    string   `json:"trace_id,omitempty"`
	EpisodeID  string   `json:"episode_id,omitempty"`
	PartnerID  string   `json:"partner_id,omitempty"`
	Refs       []string `json:"refs,omitempty"`
	Operation  string   `json:"operation,omitempty"`
	Status     string   `json:"status"`
	Code       string   `json:"code,omitempty"`
	Attempt    int      `json:"attempt"`
	DurationMS int64    `json:"duration_ms"`
	ErrorClass string   `json:"error_class,omitempty"`
	HasPayload bool     `json:"has_payload"`
}

// exchangePage is a page of the exchange log, newest first.
type exchangePage struct {
	Exchanges []exchangeJSON `json:"exchanges"`
	Next      string         `json:"next,omitempty"`
}

// handleExchanges lists the exchange log for an admin:
// ?trace=&episode=&partner=&status=&since=(RFC 3339)&_count=&before=(id).
func handleExchanges(x ExchangeLog) echo.HandlerFunc {
	return func(c echo.Context) error {
		f, err := exchangeFilter(c.QueryParams())
		if err != nil {
			return err
		}
		rows, err := x.Exchanges(c.Request().Context(), f)
		if err != nil {
			return err
		}
		page := exchangePage{Exchanges: make([]exchangeJSON, 0, len(rows))}
		for _, e := range rows {
			page.Exchanges = append(page.Exchanges, exchangeJSONOf(e))
		}
		if len(rows) == f.Limit {
			q := c.QueryParams()
			q.Set("before", strconv.FormatInt(rows[len(rows)-1].ID, 10))
			page.Next = c.Path() + "?" + q.Encode()
		}
		return c.JSON(http.StatusOK, page)
	}
}

// exchangeFilter parses the query of the exchange listing.
func exchangeFilter(q url.Values) (store.ExchangeFilter, error) {
	f := store.ExchangeFilter{TraceID: q.Get("trace"), EpisodeID: q.Get("episode"), PartnerID: q.Get("partner"),
		Status: q.Get("status"), Limit: 100}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return f, newError(http.StatusBadRequest, "invalid", "since must be an RFC 3339 time")
		}
		f.Since = t
	}
	if s := q.Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return f, newError(http.StatusBadRequest, "invalid", "before must be a positive exchange id")
		}
		f.Before = n
	}
	if s := q.Get("_count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > 1000 {
			return f, newError(http.StatusBadRequest, "invalid", "_count must be between 1 and 1000")
		}
		f.Limit = n
	}
	return f, nil
}

func exchangeJSONOf(e store.Exchange) exchangeJSON {
	return exchangeJSON{ID: e.ID, At: e.At.UTC().Format(time.RFC3339Nano), Kind: e.Kind, Direction: e.Direction,
		TraceID: e.TraceID, EpisodeID: e.EpisodeID, PartnerID: e.PartnerID, Refs: e.Refs, Operation: e.Operation,
		Status: e.Status, Code: e.Code, Attempt: e.Attempt, DurationMS: e.Duration.Milliseconds(),
		ErrorClass: e.ErrorClass, HasPayload: e.HasPayload}
}

// handleExchangePayload shows one exchange's decrypted payload to an admin
// who asks for it explicitly; the viewing is recorded before anything is
// shown, and nothing is shown when it cannot be.
func handleExchangePayload(x ExchangeLog) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id <= 0 {
			return newError(http.StatusNotFound, "not-found", "exchange not found")
		}
		b, err := x.Payload(c.Request().Context(), id, principal(c).ClientID)
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, "application/octet-stream", b)
	}
}
