package fhir

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kapgw/kapgw/internal/store"
)

// cursor is the opaque _cursor of a next or previous link: the snapshot seq
// of the search and the key of the neighbouring result. Only its shape is
// checked: a forged cursor can page only through what the caller may see
// anyway.
type cursor struct {
	AsOf     int64 `json:"a"`
	Sort     int64 `json:"s"`
	Seq      int64 `json:"q"`
	Backward bool  `json:"b,omitempty"`
}

func (c cursor) String() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseCursor reads a _cursor value ("" is the first page).
func parseCursor(s string) (store.Page, error) {
	if s == "" {
		return store.Page{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c cursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.AsOf <= 0 {
		return store.Page{}, newError(http.StatusBadRequest, "invalid", "_cursor is not a cursor this server issued")
	}
	return store.Page{AsOf: c.AsOf, After: &store.Key{Sort: c.Sort, Seq: c.Seq}, Backward: c.Backward}, nil
}

// pageLinks returns the self, next and previous links of a page: self is
// the request's own parameters (without those ignored), next and previous
// add a _cursor.
func pageLinks(self string, params url.Values, res store.SearchResult, page store.Page) [][2]string {
	links := [][2]string{{"self", withQuery(self, params)}}
	hits := res.Hits
	if len(hits) == 0 {
		return links
	}
	moreAfter := res.More || (page.Backward && page.After != nil)
	moreBefore := (page.After != nil && !page.Backward) || (page.Backward && res.More)
	if moreAfter {
		k := hits[len(hits)-1].Key
		links = append(links, [2]string{"next", withCursor(self, params, cursor{AsOf: res.AsOf, Sort: k.Sort, Seq: k.Seq})})
	}
	if moreBefore {
		k := hits[0].Key
		links = append(links, [2]string{"previous", withCursor(self, params, cursor{AsOf: res.AsOf, Sort: k.Sort, Seq: k.Seq, Backward: true})})
	}
	return links
}

func withCursor(base string, params url.Values, c cursor) string {
	p := url.Values{}
	for k, v := range params {
		p[k] = v
	}
	p.Set("_cursor", c.String())
	return withQuery(base, p)
}

func withQuery(base string, params url.Values) string {
	if len(params) == 0 {
		return base
	}
	return base + "?" + params.Encode()
}

// bundleWriter writes a searchset or history Bundle around stored resource
// JSON without decoding it.
type bundleWriter struct {
	buf     bytes.Buffer
	base    string
	entries int
}

// newBundle starts a Bundle of type typ with total (when >= 0) and links.
func newBundle(base, typ string, total int, links [][2]string) *bundleWriter {
	b := &bundleWriter{base: base}
	b.buf.WriteString(`{"resourceType":"Bundle","type":"` + typ + `"`)
	if total >= 0 {
		b.buf.WriteString(`,"total":` + strconv.Itoa(total))
	}
	b.buf.WriteString(`,"link":[`)
	for i, l := range links {
		if i > 0 {
			b.buf.WriteByte(',')
		}
		rel, _ := json.Marshal(l[0])
		u, _ := json.Marshal(l[1])
		b.buf.WriteString(`{"relation":` + string(rel) + `,"url":` + string(u) + `}`)
	}
	b.buf.WriteString(`],"entry":[`)
	return b
}

// add appends a resource; extra is more members of the entry (search,
// request, response), already encoded, each starting with a comma.
func (b *bundleWriter) add(typ, id string, resource []byte, extra string) {
	if b.entries > 0 {
		b.buf.WriteByte(',')
	}
	b.entries++
	b.buf.WriteString(`{`)
	if id != "" {
		u, _ := json.Marshal(b.base + "/" + typ + "/" + id)
		b.buf.WriteString(`"fullUrl":` + string(u) + `,`)
	}
	b.buf.WriteString(`"resource":`)
	b.buf.Write(resource)
	b.buf.WriteString(extra + `}`)
}

// bytes closes the Bundle; an empty one has no entry element.
func (b *bundleWriter) bytes() []byte {
	if b.entries == 0 {
		out := bytes.TrimSuffix(b.buf.Bytes(), []byte(`,"entry":[`))
		return append(out, '}')
	}
	b.buf.WriteString(`]}`)
	return b.buf.Bytes()
}
