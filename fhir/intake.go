package fhir

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

var validID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// readDocument checks the content type and reads a request body that the
// BodyLimit middleware has capped.
func readDocument(c echo.Context) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || (mt != "application/json" && mt != "application/kap+json") {
		return nil, newError(http.StatusUnsupportedMediaType, "not-supported",
			"Content-Type must be application/json")
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return nil, he
		}
		return nil, newError(http.StatusBadRequest, "structure", "could not read the request body")
	}
	return body, nil
}

// pathID returns the :id path parameter, refusing one that is not a valid id.
func pathID(c echo.Context) (string, error) {
	id := c.Param("id")
	if !validID.MatchString(id) {
		return "", newError(http.StatusBadRequest, "invalid", "the id in the path must match [A-Za-z0-9\\-.]{1,64}")
	}
	return id, nil
}

// putResponse is the body of a successful PUT: every resource of the
// episode and what this document did to it.
type putResponse struct {
	Episode   string        `json:"episode"`
	Created   bool          `json:"created"`
	Resources []putResource `json:"resources"`
	// Prescriptions is an OperationOutcome of the prescription rules and
	// messages (see pharmacy.go), absent when there was nothing to send.
	Prescriptions json.RawMessage `json:"prescriptions,omitempty"`
}

type putResource struct {
	Reference string `json:"reference"`
	VersionID string `json:"versionId"`
	Action    string `json:"action"`
}

func handleEpisodePut(in Intake) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c)
		if err != nil {
			return err
		}
		body, err := readDocument(c)
		if err != nil {
			return err
		}
		res, err := in.Put(c.Request().Context(), id, body)
		if err != nil {
			return err
		}
		out := putResponse{Episode: id, Created: res.Created, Resources: make([]putResource, 0, len(res.Entries))}
		for _, e := range res.Entries {
			out.Resources = append(out.Resources, putResource{
				Reference: e.Type + "/" + e.ID, VersionID: strconv.FormatInt(e.VersionID, 10), Action: string(e.Action)})
		}
		if out.Prescriptions, err = prescriptionOutcome(res.Prescriptions); err != nil {
			return err
		}
		status := http.StatusOK
		if res.Created {
			status = http.StatusCreated
			c.Response().Header().Set(echo.HeaderLocation, "/kap/v1/episodes/"+id)
		}
		return c.JSON(status, out)
	}
}

func handleEpisodeGet(in Intake) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c)
		if err != nil {
			return err
		}
		doc, err := in.Document(c.Request().Context(), id)
		if err != nil {
			return err
		}
		// The KAP document names no FHIR ids: its AuditEvent names the
		// episode's current resources and their patient instead.
		vs, err := in.Current(c.Request().Context(), id)
		if err != nil {
			return err
		}
		noteAccessed(c, vs)
		return c.Blob(http.StatusOK, mimeJSON, doc)
	}
}

func handleEpisodeBundle(in Intake, now func() time.Time) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c)
		if err != nil {
			return err
		}
		vs, err := in.Current(c.Request().Context(), id)
		if err != nil {
			return err
		}
		b := newCollection(baseURL(c), now())
		for _, v := range vs {
			b.add(v.Type, v.ID, v.Body)
		}
		return c.Blob(http.StatusOK, mimeFHIRJSON, b.bytes())
	}
}

func handleEpisodeValidate(in Intake, now func() time.Time) echo.HandlerFunc {
	return func(c echo.Context) error {
		body, err := readDocument(c)
		if err != nil {
			return err
		}
		resources, err := in.Preview(body)
		if err != nil {
			return err
		}
		oo, err := outcome([]Issue{{Severity: "information", Code: "informational",
			Diagnostic: "the document is valid; nothing was stored"}})
		if err != nil {
			return err
		}
		b := newCollection(baseURL(c), now())
		b.addUnnamed(oo)
		for _, r := range resources {
			typ, id := resourceKey(r)
			b.add(typ, id, r)
		}
		return c.Blob(http.StatusOK, mimeFHIRJSON, b.bytes())
	}
}
