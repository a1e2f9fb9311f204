package mappers

import (
	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/kapgw/kapgw/internal/kap"
)

// instrumentConcept is one code of the kap-instrument CodeSystem.
type instrumentConcept struct {
	instrument string
	code       string
	display    string
	definition string
}

// instrumentConcepts are the total scores LOINC has no code for (checked
// against DOMAIN.md: PCL-5 has a LOINC panel, 101697-1, but no total).
var instrumentConcepts = [...]instrumentConcept{
	{kap.InstrumentPCL5, "pcl5-total", "PCL-5 total score",
		"Total score of the PTSD Checklist for DSM-5 (PCL-5), 0-80: the sum of its 20 items."},
	{kap.InstrumentMADRS, "madrs-total", "MADRS total score",
		"Total score of the Montgomery-Asberg Depression Rating Scale (MADRS), 0-60: the sum of its 10 items."},
	{kap.InstrumentCADSS, "cadss-total", "CADSS total score",
		"Total score of the Clinician-Administered Dissociative States Scale (CADSS), 0-92, as the clinic records it after dosing."},
}

// InstrumentCodeSystemID is the FHIR id of the CodeSystem InstrumentCodeSystem returns.
const InstrumentCodeSystemID = "kap-instrument"

func instrumentSystem(base string) string {
	return base + "/CodeSystem/" + InstrumentCodeSystemID
}

// InstrumentCodeSystem returns the CodeSystem the gateway publishes for the
// outcome measures without a LOINC total-score code (PCL-5, MADRS, CADSS).
// Observations of those measures code their value in it, so a partner can
// resolve the codes at {SystemBase}/CodeSystem/kap-instrument.
func InstrumentCodeSystem(opts Options) *r4.CodeSystem {
	url := instrumentSystem(opts.base())
	cs := &r4.CodeSystem{
		Id:            ptr(InstrumentCodeSystemID),
		Url:           ptr(url),
		Identifier:    []r4.Identifier{{System: ptr("urn:ietf:rfc:3986"), Value: ptr(url)}},
		Version:       ptr("1.0.0"),
		Name:          ptr("KAPInstrument"),
		Title:         ptr("KAP outcome-measure total scores"),
		Status:        r4.PublicationStatusActive,
		Experimental:  ptr(false),
		Publisher:     ptr("kapgw"),
		Description:   ptr("Total scores of outcome measures used in ketamine-assisted psychotherapy that have no LOINC total-score code."),
		CaseSensitive: ptr(true),
		Content:       r4.CodeSystemContentModeComplete,
		Count:         ptr(len(instrumentConcepts)),
	}
	for _, c := range instrumentConcepts {
		cs.Concept = append(cs.Concept, r4.CodeSystemConcept{Code: c.code, Display: ptr(c.display), Definition: ptr(c.definition)})
	}
	return cs
}
