package fhir

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/store"
)

// resourceTypes are the FHIR types the gateway stores and serves.
var resourceTypes = map[string]bool{
	"Patient": true, "Practitioner": true, "PractitionerRole": true, "Organization": true,
	"CareTeam": true, "Condition": true, "EpisodeOfCare": true, "CarePlan": true,
	"Encounter": true, "Medication": true, "MedicationRequest": true,
	"MedicationAdministration": true, "Observation": true, "AdverseEvent": true,
	"Provenance": true, "CodeSystem": true, "MedicationDispense": true, "Task": true,
	"MedicationStatement": true, "AllergyIntolerance": true,
}

// typeAndID checks the :type and :id path parameters.
func typeAndID(c echo.Context) (string, string, error) {
	typ := c.Param("type")
	if !resourceTypes[typ] {
		return "", "", newError(http.StatusNotFound, "not-supported", "unknown or unsupported resource type")
	}
	id := c.Param("id")
	if !validID.MatchString(id) {
		return "", "", newError(http.StatusBadRequest, "invalid", "the id must match [A-Za-z0-9\\-.]{1,64}")
	}
	return typ, id, nil
}

// handleRead serves GET /{type}/{id}: the caller's scopes are checked
// first, its patient access in the same query as the read.
func handleRead(s Searcher) echo.HandlerFunc {
	return func(c echo.Context) error {
		typ, id, err := typeAndID(c)
		if err != nil {
			return err
		}
		if err := scopeAllowsRead(c, typ); err != nil {
			return err
		}
		v, err := s.ReadVisible(c.Request().Context(), access(c), typ, id)
		if err != nil {
			return err
		}
		if notModified(c.Request(), v) {
			c.Response().Header().Set("ETag", `W/"`+strconv.FormatInt(v.VersionID, 10)+`"`)
			return c.NoContent(http.StatusNotModified)
		}
		return writeVersion(c, v)
	}
}

// allowRead answers 404 (never 403, so that existence does not leak) when
// the caller's scopes or patient access do not cover typ/id.
func allowRead(c echo.Context, s Searcher, typ, id string) error {
	if err := scopeAllowsRead(c, typ); err != nil {
		return err
	}
	ok, err := s.Visible(c.Request().Context(), access(c), typ, id)
	if err != nil {
		return err
	}
	if !ok {
		return newError(http.StatusNotFound, "not-found", "resource not found")
	}
	return nil
}

// scopeAllowsRead answers 404 when the caller's scopes do not cover
// reading typ.
func scopeAllowsRead(c echo.Context, typ string) error {
	if !principal(c).Can(typ, auth.Read) {
		return newError(http.StatusNotFound, "not-found", "resource not found")
	}
	return nil
}

// notModified applies If-None-Match (a weak ETag match wins) and, without
// it, If-Modified-Since.
func notModified(r *http.Request, v store.Version) bool {
	if v.Deleted {
		return false
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		etag := `W/"` + strconv.FormatInt(v.VersionID, 10) + `"`
		for tag := range strings.SplitSeq(inm, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" || tag == etag || "W/"+tag == etag {
				return true
			}
		}
		return false
	}
	ims, err := http.ParseTime(r.Header.Get("If-Modified-Since"))
	return err == nil && !v.LastUpdated.Truncate(time.Second).After(ims)
}

func handleVRead(r Reader, s Searcher) echo.HandlerFunc {
	return func(c echo.Context) error {
		typ, id, err := typeAndID(c)
		if err != nil {
			return err
		}
		if err := allowRead(c, s, typ, id); err != nil {
			return err
		}
		vid, err := strconv.ParseInt(c.Param("vid"), 10, 64)
		if err != nil || vid < 1 {
			return newError(http.StatusBadRequest, "invalid", "the version id must be a positive integer")
		}
		v, err := r.VRead(c.Request().Context(), typ, id, vid)
		if err != nil {
			return err
		}
		return writeVersion(c, v)
	}
}

// writeVersion serves stored resource JSON as it is, with its version as
// ETag and its lastUpdated as Last-Modified.
func writeVersion(c echo.Context, v store.Version) error {
	h := c.Response().Header()
	h.Set("ETag", `W/"`+strconv.FormatInt(v.VersionID, 10)+`"`)
	h.Set("Last-Modified", v.LastUpdated.UTC().Format(http.TimeFormat))
	if v.Deleted {
		return newError(http.StatusGone, "deleted", "resource deleted")
	}
	return c.Blob(http.StatusOK, mimeFHIRJSON, v.Body)
}
