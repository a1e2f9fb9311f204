package fhir

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/search"
	"github.com/kapgw/kapgw/internal/store"
)

// handleHistory serves GET /{type}/_history and /{type}/{id}/_history,
// newest first, with _since, _count and cursor paging.
func handleHistory(reg *search.Registry, s Searcher, instance bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		typ := c.Param("type")
		if reg.Params(typ) == nil {
			return newError(http.StatusNotFound, "not-supported", "unknown or unsupported resource type")
		}
		id := ""
		if instance {
			var err error
			if _, id, err = typeAndID(c); err != nil {
				return err
			}
		}
		in := auth.Search
		if instance {
			in = auth.Read
		}
		if !principal(c).Can(typ, in) {
			if instance {
				return newError(http.StatusNotFound, "not-found", "resource not found")
			}
			return newError(http.StatusForbidden, "forbidden", "the granted scopes do not allow reading "+typ)
		}
		req, err := historyRequest(c, typ, id)
		if err != nil {
			return err
		}
		res, err := s.HistoryPage(c.Request().Context(), req)
		if err != nil {
			return err
		}
		self := baseURL(c) + "/" + typ
		if id != "" {
			self += "/" + id
		}
		params := withoutIgnored(c.QueryParams(), nil)
		b := newBundle(baseURL(c), "history", -1, pageLinks(self+"/_history", params, res, req.Page))
		for _, h := range res.Hits {
			b.add(h.Type, h.ID, h.Body, historyEntry(h.Version))
		}
		return c.Blob(http.StatusOK, mimeFHIRJSON, b.bytes())
	}
}

// historyRequest reads _since, _count and _cursor.
func historyRequest(c echo.Context, typ, id string) (store.HistoryRequest, error) {
	r := store.HistoryRequest{Type: typ, ID: id, Count: search.DefaultCount, Access: access(c)}
	if v := c.QueryParam("_count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return r, newError(http.StatusBadRequest, "invalid", "_count must be a positive integer")
		}
		r.Count = min(n, search.MaxCount)
	}
	if v := c.QueryParam("_since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return r, newError(http.StatusBadRequest, "invalid", "_since must be an instant (2026-04-03T10:00:00Z)")
		}
		r.Since = t
	}
	page, err := parseCursor(c.QueryParam("_cursor"))
	if page.Backward {
		return r, newError(http.StatusBadRequest, "invalid", "history pages only forward")
	}
	r.Page = page
	return r, err
}

// historyEntry is the request and response a history entry must carry.
func historyEntry(v store.Version) string {
	switch {
	case v.Deleted:
		return `,"request":{"method":"DELETE","url":"` + v.Type + "/" + v.ID + `"},"response":{"status":"204 No Content"}`
	case v.VersionID == 1:
		return `,"request":{"method":"POST","url":"` + v.Type + `"},"response":{"status":"201 Created","etag":"W/\"1\""}`
	}
	vid := strconv.FormatInt(v.VersionID, 10)
	return `,"request":{"method":"PUT","url":"` + v.Type + "/" + v.ID + `"},"response":{"status":"200 OK","etag":"W/\"` + vid + `\""}`
}
