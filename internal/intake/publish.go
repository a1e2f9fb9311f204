package intake

import (
	"context"
	"fmt"

	"github.com/kapgw/kapgw/fhir/fhirjson"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/mappers"
)

// Publisher stores resources that no episode produces.
type Publisher interface {
	PutResources(ctx context.Context, res []store.Resource) ([]store.Entry, error)
}

// PublishCodeSystems stores the CodeSystem that names the instruments
// without a LOINC total score (PCL-5, MADRS, CADSS), so partners can read
// and search the codes the gateway's Observations use. It runs at start-up;
// an unchanged CodeSystem gets no new version.
func PublishCodeSystems(ctx context.Context, p Publisher, systemBase string) error {
	cs := mappers.InstrumentCodeSystem(mappers.Options{SystemBase: systemBase})
	body, err := fhirjson.Marshal(cs)
	if err != nil {
		return fmt.Errorf("encode instrument CodeSystem: %w", err)
	}
	if _, err := p.PutResources(ctx, []store.Resource{{Type: "CodeSystem", ID: *cs.Id, Body: body}}); err != nil {
		return fmt.Errorf("publish instrument CodeSystem: %w", err)
	}
	return nil
}
