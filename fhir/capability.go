package fhir

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kapgw/kapgw/internal/search"
)

// The CapabilityStatement's JSON shape: only the elements kapgw fills.
type (
	capStatement struct {
		ResourceType string    `json:"resourceType"`
		Status       string    `json:"status"`
		Date         string    `json:"date"`
		Kind         string    `json:"kind"`
		Software     capName   `json:"software"`
		Impl         capImpl   `json:"implementation"`
		FHIRVersion  string    `json:"fhirVersion"`
		Format       []string  `json:"format"`
		Rest         []capRest `json:"rest"`
	}
	capImpl struct {
		Description string `json:"description"`
		URL         string `json:"url"`
	}
	capName struct {
		Name string `json:"name"`
	}
	capRest struct {
		Mode       string        `json:"mode"`
		Security   capSecurity   `json:"security"`
		Resource   []capResource `json:"resource"`
		Interact   []capCode     `json:"interaction,omitempty"`
		SearchPar  []capParam    `json:"searchParam"`
		Operations []capOp       `json:"operation,omitempty"`
	}
	capSecurity struct {
		Extension   []capExtension `json:"extension"`
		Service     []capConcept   `json:"service"`
		Description string         `json:"description"`
	}
	capExtension struct {
		URL       string         `json:"url"`
		Extension []capExtension `json:"extension,omitempty"`
		ValueURI  string         `json:"valueUri,omitempty"`
	}
	capConcept struct {
		Coding []capCoding `json:"coding"`
	}
	capCoding struct {
		System string `json:"system"`
		Code   string `json:"code"`
	}
	capResource struct {
		Type        string     `json:"type"`
		Interaction []capCode  `json:"interaction"`
		Versioning  string     `json:"versioning"`
		ReadHistory bool       `json:"readHistory"`
		CondRead    string     `json:"conditionalRead"`
		Include     []string   `json:"searchInclude,omitempty"`
		RevInclude  []string   `json:"searchRevInclude,omitempty"`
		SearchParam []capParam `json:"searchParam"`
		Operation   []capOp    `json:"operation,omitempty"`
	}
	capCode struct {
		Code string `json:"code"`
	}
	capParam struct {
		Name          string `json:"name"`
		Type          string `json:"type"`
		Documentation string `json:"documentation,omitempty"`
	}
	capOp struct {
		Name       string `json:"name"`
		Definition string `json:"definition"`
	}
)

// capabilityStatement describes exactly what the FHIR API implements,
// generated from the same parameter table the searches use. base is the
// server's origin, where the SMART token endpoint (/auth/token) lives.
func capabilityStatement(reg *search.Registry, base string, date time.Time) ([]byte, error) {
	tokenURL := base + "/auth/token"
	rest := capRest{
		Mode: "server",
		Security: capSecurity{
			Extension: []capExtension{{URL: "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
				Extension: []capExtension{{URL: "token", ValueURI: tokenURL}}}},
			Service:     []capConcept{{Coding: []capCoding{{System: "http://terminology.hl7.org/CodeSystem/restful-security-service", Code: "SMART-on-FHIR"}}}},
			Description: "SMART Backend Services: client_credentials with a private_key_jwt assertion (RS384, ES384) at the token endpoint",
		},
	}
	types := reg.Types()
	refs := revIncludes(reg)
	for _, t := range types {
		r := capResource{Type: t, Versioning: "versioned", ReadHistory: true, CondRead: "full-support",
			Interaction: []capCode{{Code: "read"}, {Code: "vread"}, {Code: "history-instance"}, {Code: "history-type"}, {Code: "search-type"}},
			SearchParam: []capParam{
				{Name: "_id", Type: "token", Documentation: "The resource id"},
				{Name: "_lastUpdated", Type: "date", Documentation: "When the resource last changed (eq, gt, ge, lt, le); grows with commit order"},
			},
			RevInclude: refs[t],
		}
		for _, p := range reg.Params(t) {
			r.SearchParam = append(r.SearchParam, capParam{Name: p.Name, Type: string(p.Kind), Documentation: p.Doc})
		}
		for _, p := range reg.Includes(t) {
			r.Include = append(r.Include, t+":"+p.Name)
		}
		if t == "Patient" {
			r.Operation = []capOp{{Name: "everything", Definition: "http://hl7.org/fhir/OperationDefinition/Patient-everything"}}
		}
		rest.Resource = append(rest.Resource, r)
	}
	for _, name := range search.Controls() {
		rest.SearchPar = append(rest.SearchPar, capParam{Name: name, Type: controlType(name)})
	}
	cs := capStatement{ResourceType: "CapabilityStatement", Status: "active", Date: date.UTC().Format(time.RFC3339),
		Kind: "instance", Software: capName{Name: "kapgw"},
		Impl: capImpl{Description: "kapgw FHIR R4 API", URL: base + "/fhir/r4"}, FHIRVersion: "4.0.1", Format: []string{"json"}, Rest: []capRest{rest}}
	b, err := json.Marshal(cs)
	if err != nil {
		return nil, fmt.Errorf("encode capability statement: %w", err)
	}
	return b, nil
}

// controlType is the search parameter type of a result parameter.
func controlType(name string) string {
	if name == "_count" {
		return "number"
	}
	return "string"
}

// revIncludes maps each type to the Type:param values that point at it.
func revIncludes(reg *search.Registry) map[string][]string {
	out := map[string][]string{}
	for _, from := range reg.Types() {
		for _, p := range reg.Includes(from) {
			targets := reg.Types()
			if p.Target != "" {
				targets = []string{p.Target}
			}
			for _, t := range targets {
				out[t] = append(out[t], from+":"+p.Name)
			}
		}
	}
	return out
}

// handleMetadata serves the CapabilityStatement, open to every caller as
// SMART requires.
func handleMetadata(reg *search.Registry, now func() time.Time) echo.HandlerFunc {
	return func(c echo.Context) error {
		base := c.Scheme() + "://" + c.Request().Host
		body, err := capabilityStatement(reg, base, now())
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, mimeFHIRJSON, body)
	}
}
