package mappers

import (
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// provenance adds the Provenance of the accepted document: it targets every
// resource mapped from it, names the medical practice as author and the
// document (by its sha256) as source. R4 Provenance has no identifier.
func (b *builder) provenance() {
	id := ID("Provenance", b.ep.ID, b.opts.DocumentDigest)
	targets := make([]r4.Reference, len(b.out))
	for i, r := range b.out {
		targets[i] = ref(r.Type, r.ID)
	}
	b.add("Provenance", id, Episode, &r4.Provenance{
		Id:       ptr(id),
		Target:   targets,
		Recorded: b.opts.Recorded.UTC().Format(time.RFC3339Nano),
		Agent: []r4.ProvenanceAgent{{
			Type: ptr(concept(sysProvAgent, "author", "Author", "")),
			Who:  b.org,
		}},
		Entity: []r4.ProvenanceEntity{{
			Role: r4.ProvenanceEntityRoleSource,
			What: r4.Reference{
				Identifier: ptr(b.ident("document-sha256", b.opts.DocumentDigest)),
				Display:    ptr("KAP episode document"),
			},
		}},
	})
}
