package mappers

import (
	"strings"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// provenance adds the Provenance of the accepted document: it targets every
// resource mapped from it, names the medical practice as author and the
// document (by its sha256) as source. R4 Provenance has no identifier.
func (b *builder) provenance() {
	id := ID("Provenance", b.ep.ID, b.opts.DocumentDigest)
	targets := make([]r4.Reference, len(b.out))
	refs := make([]string, len(b.out)) // one allocation for every pointer
	size := 0
	for _, r := range b.out {
		size += len(r.Type) + 1 + len(r.ID)
	}
	var all strings.Builder // one allocation for every reference string
	all.Grow(size)
	for _, r := range b.out {
		all.WriteString(r.Type)
		all.WriteByte('/')
		all.WriteString(r.ID)
	}
	joined, at := all.String(), 0
	for i, r := range b.out {
		n := len(r.Type) + 1 + len(r.ID)
		refs[i] = joined[at : at+n]
		at += n
		targets[i] = r4.Reference{Reference: &refs[i]}
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
