package fhir

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/search"
	"github.com/kapgw/kapgw/internal/store"
)

// Searcher runs searches and history over the stored resources, and says
// whether a caller may see one of them.
type Searcher interface {
	Search(ctx context.Context, r store.SearchRequest) (store.SearchResult, error)
	HistoryPage(ctx context.Context, r store.HistoryRequest) (store.SearchResult, error)
	Visible(ctx context.Context, a store.Access, typ, id string) (bool, error)
	// ReadVisible reads the current version of what Visible allows, in
	// one step.
	ReadVisible(ctx context.Context, a store.Access, typ, id string) (store.Version, error)
}

var _ Searcher = (*store.Store)(nil)

// handleSearch serves GET /{type} and POST /{type}/_search (form-encoded).
func handleSearch(reg *search.Registry, s Searcher) echo.HandlerFunc {
	return func(c echo.Context) error {
		typ := c.Param("type")
		if reg.Params(typ) == nil {
			return newError(http.StatusNotFound, "not-supported", "unknown or unsupported resource type")
		}
		if !principal(c).Can(typ, auth.Search) {
			return newError(http.StatusForbidden, "forbidden", "the granted scopes do not allow searching "+typ)
		}
		params, err := searchParams(c)
		if err != nil {
			return err
		}
		q, err := reg.Parse(typ, params, strictHandling(c))
		if err != nil {
			return searchError(err)
		}
		page, err := parseCursor(params.Get("_cursor"))
		if err != nil {
			return err
		}
		res, err := s.Search(c.Request().Context(), store.SearchRequest{Query: q, Access: access(c), Page: page})
		if err != nil {
			return err
		}
		self := baseURL(c) + "/" + typ
		return writeSearchset(c, self, withoutIgnored(params, q.Ignored), q, res, page)
	}
}

// searchParams are the parameters of a search: the query string, and on
// POST the form body too.
func searchParams(c echo.Context) (url.Values, error) {
	params := c.QueryParams()
	if c.Request().Method != http.MethodPost {
		return params, nil
	}
	if ct := c.Request().Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil, newError(http.StatusUnsupportedMediaType, "not-supported", "POST _search takes application/x-www-form-urlencoded")
	}
	form, err := c.FormParams()
	if err != nil {
		return nil, newError(http.StatusBadRequest, "invalid", "the form body cannot be parsed")
	}
	out := url.Values{}
	for _, vs := range []url.Values{params, form} {
		for k, v := range vs {
			out[k] = append(out[k], v...)
		}
	}
	return out, nil
}

// strictHandling reports whether the caller asked for Prefer:
// handling=strict (the default is lenient).
func strictHandling(c echo.Context) bool {
	for _, h := range c.Request().Header.Values("Prefer") {
		for p := range strings.SplitSeq(h, ",") {
			if strings.TrimSpace(p) == "handling=strict" {
				return true
			}
		}
	}
	return false
}

// searchError turns a parse failure into a 400.
func searchError(err error) error {
	if errors.Is(err, search.ErrInvalid) {
		return newError(http.StatusBadRequest, "invalid", err.Error())
	}
	return err
}

func withoutIgnored(params url.Values, ignored []string) url.Values {
	out := url.Values{}
	for k, v := range params {
		out[k] = v
	}
	for _, k := range ignored {
		out.Del(k)
	}
	out.Del("_cursor")
	return out
}

// writeSearchset answers a search with a searchset Bundle: matches, then
// the included resources the caller's scopes allow, then a warning
// OperationOutcome listing ignored parameters.
func writeSearchset(c echo.Context, self string, params url.Values, q search.Query, res store.SearchResult, page store.Page) error {
	b := newBundle(baseURL(c), "searchset", res.Total, pageLinks(self, params, res, page))
	for _, h := range res.Hits {
		body := h.Body
		if len(q.Elements) > 0 {
			body = subset(body, q.Elements)
		}
		b.add(h.Type, h.ID, body, `,"search":{"mode":"match"}`)
	}
	p := principal(c)
	for _, v := range res.Included {
		if p.Can(v.Type, auth.Read) || p.Can(v.Type, auth.Search) {
			b.add(v.Type, v.ID, v.Body, `,"search":{"mode":"include"}`)
		}
	}
	if len(q.Ignored) > 0 {
		oo, err := outcome([]Issue{{Severity: "warning", Code: "not-supported",
			Diagnostic: "ignored unknown search parameters: " + strings.Join(q.Ignored, ", ")}})
		if err != nil {
			return err
		}
		b.add("", "", oo, `,"search":{"mode":"outcome"}`)
	}
	return c.Blob(http.StatusOK, mimeFHIRJSON, b.bytes())
}

// subset keeps only the elements asked for (and the mandatory
// resourceType, id and meta), and tags the resource SUBSETTED. The profile
// claims go: a subset need not conform.
func subset(body []byte, elements []string) []byte {
	keep := map[string]bool{"resourceType": true, "id": true, "meta": true}
	for _, e := range elements {
		keep[e] = true
	}
	out := []byte(`{}`)
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		if keep[k.String()] {
			out, _ = sjson.SetRawBytes(out, k.String(), []byte(v.Raw))
		}
		return true
	})
	out, _ = sjson.DeleteBytes(out, "meta.profile")
	out, _ = sjson.SetRawBytes(out, "meta.tag.-1",
		[]byte(`{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}`))
	return out
}

// searcherOf is Options.Search, or the Reader when it can search too (the
// store can), so that handlers built with only a Reader still enforce
// access.
func searcherOf(o Options) Searcher {
	if o.Search != nil {
		return o.Search
	}
	if s, ok := o.Reader.(Searcher); ok {
		return s
	}
	return nil
}
