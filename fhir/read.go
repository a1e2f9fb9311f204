package fhir

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/kapgw/kapgw/internal/store"
)

// resourceTypes are the FHIR types the gateway stores and serves.
var resourceTypes = map[string]bool{
	"Patient": true, "Practitioner": true, "PractitionerRole": true, "Organization": true,
	"CareTeam": true, "Condition": true, "EpisodeOfCare": true, "CarePlan": true,
	"Encounter": true, "Medication": true, "MedicationRequest": true,
	"MedicationAdministration": true, "Observation": true, "AdverseEvent": true,
	"Provenance": true, "CodeSystem": true,
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

func handleRead(r Reader) echo.HandlerFunc {
	return func(c echo.Context) error {
		typ, id, err := typeAndID(c)
		if err != nil {
			return err
		}
		v, err := r.Read(c.Request().Context(), typ, id)
		if err != nil {
			return err
		}
		return writeVersion(c, v)
	}
}

func handleVRead(r Reader) echo.HandlerFunc {
	return func(c echo.Context) error {
		typ, id, err := typeAndID(c)
		if err != nil {
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
