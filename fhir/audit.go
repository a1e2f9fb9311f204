package fhir

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/internal/audit"
	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/store"
)

// Audit is the audit trail of the FHIR API. Writer nil: no auditing; Log
// nil: no AuditEvent endpoints.
type Audit struct {
	Writer AuditWriter
	Log    AuditLog
}

// AuditWriter records every access to patient data durably before its
// response leaves; *audit.Writer is it. Begin announces an access that
// will Record soon (its group commit may wait for it); end is called when
// the access is over.
type AuditWriter interface {
	Begin() (end func())
	Record(ctx context.Context, a audit.Access) error
}

// AuditLog serves AuditEvent reads and searches to admins; *store.Store is
// it.
type AuditLog interface {
	AuditEvents(ctx context.Context, f store.AuditFilter) ([]store.AuditRecord, error)
}

// auditedRoutes maps the FHIR API routes that return patient data to
// their restful-interaction code.
var auditedRoutes = map[string]string{
	"/fhir/r4/:type":                   "search-type",
	"/fhir/r4/:type/_search":           "search-type",
	"/fhir/r4/:type/_history":          "history-type",
	"/fhir/r4/:type/:id":               "read",
	"/fhir/r4/:type/:id/_history":      "history-instance",
	"/fhir/r4/:type/:id/_history/:vid": "vread",
	"/fhir/r4/Patient/:id/$everything": "operation",
	// The intake API's reads return a whole episode: the KAP document
	// or its FHIR resources (GET only; the PUT is the clinic's write).
	"/kap/v1/episodes/:id":      "read",
	"/kap/v1/episodes/:id/fhir": "read",
}

// ctxAccessed is where a handler whose body is not FHIR (the KAP document)
// leaves the patients and resources it returned, for auditAccess.
const ctxAccessed = "kapgw.audit.accessed"

// noteAccessed notes, for auditAccess, that a response returned vs.
func noteAccessed(c echo.Context, vs []store.Version) {
	var a audit.Access
	seen := map[string]bool{}
	for _, v := range vs {
		p := patientOf(v.Type, v.ID, gjson.ParseBytes(v.Body))
		a.Entries = append(a.Entries, audit.Entry{Ref: v.Type + "/" + v.ID, Patient: p})
		if p != "" && !seen[p] {
			seen[p] = true
			a.Patients = append(a.Patients, p)
		}
	}
	c.Set(ctxAccessed, a)
}

// auditAccess holds the response of every authenticated request to an
// audited route until its AuditEvents are committed, and refuses it with
// 503 when they cannot be (fail closed): no response leaves before its
// audit record is durable. Each access is announced to the writer (Begin)
// while it is served, so a group commit can wait for it.
func auditAccess(w AuditWriter) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if w == nil {
			return next
		}
		return func(c echo.Context) error {
			interaction, ok := auditedRoutes[c.Path()]
			if !ok || (c.Request().Method != http.MethodGet && strings.HasPrefix(c.Path(), "/kap/")) {
				return next(c)
			}
			defer w.Begin()()
			res := c.Response()
			orig := res.Writer
			held := &heldResponse{orig: orig}
			res.Writer = held
			err := next(c)
			res.Writer = orig
			p := principal(c)
			if p.ClientID == "" { // refused before anything was read
				return held.release(err)
			}
			a := audit.Access{ClientID: p.ClientID, Interaction: interaction, Status: res.Status}
			if err != nil {
				a.Status = toError(err).Status
			}
			if noted, ok := c.Get(ctxAccessed).(audit.Access); ok && err == nil && a.Status < 400 {
				a.Patients, a.Entries = noted.Patients, noted.Entries
			} else if err == nil && a.Status < 400 {
				a.Patients, a.Entries = accessed(held.buf.Bytes())
			}
			if len(a.Patients) == 0 {
				a.Patients = askedPatient(c)
			}
			if aerr := w.Record(c.Request().Context(), a); aerr != nil {
				held.discard(res)
				return fmt.Errorf("audit %s: %w: %w", interaction, aerr, auditRefused())
			}
			return held.release(err)
		}
	}
}

// auditRefused is the 503 of an access whose audit record could not be
// written; the client may retry.
func auditRefused() *Error {
	e := newError(http.StatusServiceUnavailable, "transient", "the access could not be audited, so it was refused; retry later")
	e.Header = http.Header{"Retry-After": {"1"}}
	return e
}

// heldResponse keeps a handler's status and body until the audit record
// is durable.
type heldResponse struct {
	orig   http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (h *heldResponse) Header() http.Header { return h.orig.Header() }

func (h *heldResponse) WriteHeader(status int) { h.status = status }

func (h *heldResponse) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.buf.Write(b)
}

// release sends what the handler wrote, then returns its error for the
// error handler.
func (h *heldResponse) release(err error) error {
	if h.status != 0 {
		h.orig.WriteHeader(h.status)
		if _, werr := h.orig.Write(h.buf.Bytes()); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// discard drops the held response so the error handler can answer
// instead.
func (h *heldResponse) discard(res *echo.Response) {
	res.Committed, res.Status, res.Size = false, 0, 0
	for _, k := range []string{"Content-Type", "ETag", "Last-Modified", "Location", "Content-Location"} {
		h.orig.Header().Del(k)
	}
}

// accessed reads which patients and resources a response body holds: the
// resource itself, or each entry of a Bundle.
func accessed(body []byte) (patients []string, entries []audit.Entry) {
	seen := map[string]bool{}
	one := func(r gjson.Result) {
		typ, id := r.Get("resourceType").String(), r.Get("id").String()
		if typ == "" || id == "" || typ == "OperationOutcome" {
			return
		}
		p := patientOf(typ, id, r)
		entries = append(entries, audit.Entry{Ref: typ + "/" + id, Patient: p})
		if p != "" && !seen[p] {
			seen[p] = true
			patients = append(patients, p)
		}
	}
	r := gjson.ParseBytes(body)
	if r.Get("resourceType").String() != "Bundle" {
		one(r)
		return patients, entries
	}
	r.Get("entry").ForEach(func(_, e gjson.Result) bool {
		one(e.Get("resource"))
		return true
	})
	return patients, entries
}

// patientOf is the patient a resource belongs to, from its own id or its
// subject, patient, for or beneficiary reference.
func patientOf(typ, id string, r gjson.Result) string {
	if typ == "Patient" {
		return id
	}
	for _, path := range []string{"subject.reference", "patient.reference", "for.reference", "beneficiary.reference"} {
		if p, ok := strings.CutPrefix(r.Get(path).String(), "Patient/"); ok {
			return p
		}
	}
	return ""
}

// askedPatient is the patient a request named in its path, for accesses
// that returned nothing (a miss or a refusal).
func askedPatient(c echo.Context) []string {
	if id := c.Param("id"); id != "" && (c.Param("type") == "Patient" || strings.HasPrefix(c.Path(), "/fhir/r4/Patient/")) {
		return []string{id}
	}
	return nil
}

// requireAuditScope lets through admin clients granted AuditEvent reads
// or searches (system/AuditEvent.rs): AuditEvents name every partner's
// accesses and are for integration engineers only.
func requireAuditScope(in auth.Interaction) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := principal(c)
			if p.Kind != auth.KindAdmin || !p.Can("AuditEvent", in) {
				return newError(http.StatusForbidden, "forbidden", "AuditEvents are for admin clients with system/AuditEvent.rs")
			}
			return next(c)
		}
	}
}

// handleAuditRead serves one AuditEvent by id.
func handleAuditRead(log AuditLog) echo.HandlerFunc {
	return func(c echo.Context) error {
		recs, err := log.AuditEvents(c.Request().Context(), store.AuditFilter{ID: c.Param("id"), Limit: 1})
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return newError(http.StatusNotFound, "not-found", "resource not found")
		}
		return c.Blob(http.StatusOK, mimeFHIRJSON, recs[0].Body)
	}
}

// handleAuditSearch serves AuditEvent?patient=&agent=&date=&_count= as a
// searchset, newest first, paged with _cursor.
func handleAuditSearch(log AuditLog) echo.HandlerFunc {
	return func(c echo.Context) error {
		q := c.QueryParams()
		f, err := auditFilter(q)
		if err != nil {
			return err
		}
		want := f.Limit
		f.Limit++
		recs, err := log.AuditEvents(c.Request().Context(), f)
		if err != nil {
			return err
		}
		self := baseURL(c) + "/AuditEvent"
		links := [][2]string{{"self", self + "?" + q.Encode()}}
		if len(recs) > want {
			recs = recs[:want]
			next := url.Values{}
			for k, v := range q {
				next[k] = v
			}
			next.Set("_cursor", strconv.FormatInt(recs[len(recs)-1].Seq, 10))
			links = append(links, [2]string{"next", self + "?" + next.Encode()})
		}
		b := newBundle(baseURL(c), "searchset", -1, links)
		for _, r := range recs {
			b.add("AuditEvent", r.ID, r.Body, `,"search":{"mode":"match"}`)
		}
		return c.Blob(http.StatusOK, mimeFHIRJSON, b.bytes())
	}
}

// auditFilter reads the supported AuditEvent search parameters; any other
// is refused rather than ignored, since ignoring a filter would show more
// than was asked for.
func auditFilter(q url.Values) (store.AuditFilter, error) {
	f := store.AuditFilter{Limit: 50}
	for k, vs := range q {
		v := vs[0]
		switch k {
		case "patient":
			f.PatientID = strings.TrimPrefix(v, "Patient/")
		case "agent":
			f.ClientID = v
		case "_id":
			f.ID = v
		case "date":
			for _, d := range vs {
				if err := dateBound(&f, d); err != nil {
					return f, err
				}
			}
		case "_count":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				return f, newError(http.StatusBadRequest, "invalid", "_count must be between 1 and 1000")
			}
			f.Limit = n
		case "_cursor":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return f, newError(http.StatusBadRequest, "invalid", "_cursor is not a cursor this server issued")
			}
			f.Before = n
		default:
			return f, newError(http.StatusBadRequest, "not-supported", "AuditEvent search supports patient, agent, date, _id, _count")
		}
	}
	return f, nil
}

// dateBound applies date=geT or date=ltT (RFC 3339).
func dateBound(f *store.AuditFilter, d string) error {
	prefix, rest := d[:min(2, len(d))], d[min(2, len(d)):]
	t, err := time.Parse(time.RFC3339, rest)
	if err != nil || (prefix != "ge" && prefix != "lt") {
		return newError(http.StatusBadRequest, "invalid", "date must be geYYYY-MM-DDThh:mm:ssZ or lt...")
	}
	if prefix == "ge" {
		f.Since = t
	} else {
		f.Until = t
	}
	return nil
}
