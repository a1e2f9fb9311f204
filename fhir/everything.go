package fhir

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/search"
	"github.com/kapgw/kapgw/internal/store"
)

// handleEverything serves GET Patient/{id}/$everything: every current
// resource in the patient's compartment the caller may see (_type narrows
// the types, _since to resources updated since), paged like a search.
func handleEverything(reg *search.Registry, s Searcher) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("id")
		if !validID.MatchString(id) {
			return newError(http.StatusBadRequest, "invalid", "the id must match [A-Za-z0-9\\-.]{1,64}")
		}
		ctx := c.Request().Context()
		p := principal(c)
		if ok, err := s.Visible(ctx, access(c), "Patient", id); err != nil {
			return err
		} else if !ok || !p.Can("Patient", auth.Read) {
			return newError(http.StatusNotFound, "not-found", "resource not found")
		}
		r, err := everythingRequest(c, reg, p, id)
		if err != nil {
			return err
		}
		res, err := s.Search(ctx, r)
		if err != nil {
			return err
		}
		self := baseURL(c) + "/Patient/" + id + "/$everything"
		return writeSearchset(c, self, withoutIgnored(c.QueryParams(), nil), r.Query, res, r.Page)
	}
}

// everythingRequest reads _type, _since, _count and _cursor; the types are
// those asked for that the caller's scopes allow.
func everythingRequest(c echo.Context, reg *search.Registry, p auth.Principal, id string) (store.SearchRequest, error) {
	r := store.SearchRequest{Compartment: id, Access: access(c)}
	wanted := reg.Types()
	if v := c.QueryParam("_type"); v != "" {
		wanted = strings.Split(v, ",")
	}
	for _, t := range wanted {
		if reg.Params(t) == nil {
			return r, newError(http.StatusBadRequest, "invalid", "_type lists an unknown resource type")
		}
		if p.Can(t, auth.Read) {
			r.Types = append(r.Types, t)
		}
	}
	if len(r.Types) == 0 {
		r.Types = []string{"-"} // nothing allowed: match nothing
	}
	params := url.Values{}
	if v := c.QueryParam("_count"); v != "" {
		params.Set("_count", v)
	}
	if v := c.QueryParam("_since"); v != "" {
		if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
			return r, newError(http.StatusBadRequest, "invalid", "_since must be an instant (2026-04-03T10:00:00Z)")
		}
		params.Set("_lastUpdated", "ge"+v)
	}
	q, err := reg.Parse("", params, true)
	if err != nil {
		return r, searchError(err)
	}
	r.Query = q
	r.Page, err = parseCursor(c.QueryParam("_cursor"))
	return r, err
}
