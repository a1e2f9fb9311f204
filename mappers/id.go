package mappers

import (
	"crypto/sha256"
	"encoding/base32"
)

// idEncoding is lowercase RFC 4648 base32 without padding: FHIR ids allow
// [A-Za-z0-9\-.], and lowercase keeps them readable in URLs.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// idHashBytes is how much of the sha256 an id keeps: 160 bits, 32 base32
// characters, so collisions are out of reach for any realistic store.
const idHashBytes = 20

// ID returns the deterministic FHIR id of a resource of resourceType named
// by keys: a short type prefix, "-", and the lowercase base32 of the first
// 20 bytes of sha256(resourceType NUL key1 NUL key2 ...). Ids are valid
// FHIR ids (at most 38 characters) whatever the keys' length, distinct
// across resource types, and stable: the same keys give the same id in
// every episode and every release.
//
// Keys of Shared resources are the clinic's id (Organization adds a
// namespace, "org" or "pharmacy"); keys of Episode resources start with the
// episode id. docs/mapping.md lists the keys of every type.
func ID(resourceType string, keys ...string) string {
	var buf [256]byte
	in := append(buf[:0], resourceType...)
	for _, k := range keys {
		in = append(in, 0)
		in = append(in, k...)
	}
	sum := sha256.Sum256(in)
	prefix := idPrefix(resourceType)
	var out [64]byte // prefixes are short: the id is at most 38 characters
	n := copy(out[:], prefix)
	out[n] = '-'
	idEncoding.Encode(out[n+1:], sum[:idHashBytes])
	return string(out[:n+1+idEncoding.EncodedLen(idHashBytes)])
}

func idPrefix(resourceType string) string {
	switch resourceType {
	case "Patient":
		return "pat"
	case "Organization":
		return "org"
	case "Practitioner":
		return "prac"
	case "PractitionerRole":
		return "role"
	case "CareTeam":
		return "ct"
	case "Condition":
		return "cond"
	case "EpisodeOfCare":
		return "eoc"
	case "CarePlan":
		return "cp"
	case "Encounter":
		return "enc"
	case "Medication":
		return "med"
	case "MedicationRequest":
		return "mr"
	case "MedicationAdministration":
		return "ma"
	case "Observation":
		return "obs"
	case "AdverseEvent":
		return "ae"
	case "Provenance":
		return "prov"
	}
	return "res"
}

func orgID(clinicID string) string      { return ID("Organization", "org", clinicID) }
func pharmacyID(clinicID string) string { return ID("Organization", "pharmacy", clinicID) }
