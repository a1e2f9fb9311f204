// Package auth decides who is calling and what they may do: SMART Backend
// Services client credentials, SMART v1/v2 scopes, and the patients a
// partner EHR may see.
package auth

import (
	"strings"

	"github.com/kapgw/kapgw/internal/store"
)

// Kind is the kind of a registered client.
type Kind string

// Client kinds.
const (
	KindPartner Kind = "partner" // a partner EHR: reads FHIR
	KindClinic  Kind = "clinic"  // the clinic platform: writes episodes
	KindAdmin   Kind = "admin"   // an integration engineer: admin endpoints, AuditEvents
)

// Interaction is one FHIR interaction a scope can grant, by its SMART v2
// letter.
type Interaction byte

// Interactions, as SMART v2 scope letters.
const (
	Create Interaction = 'c'
	Read   Interaction = 'r'
	Update Interaction = 'u'
	Delete Interaction = 'd'
	Search Interaction = 's'
)

// Principal is the authenticated caller of one request.
type Principal struct {
	ClientID string
	Kind     Kind
	Scopes   []string // granted scopes, e.g. "system/CarePlan.rs", "system/*.read", "kap/episodes.write"
	Access   store.Access
	// Rate is the client's budget on the FHIR API in requests per second
	// (its registry entry); 0 means the gateway's default.
	Rate int
}

// Can reports whether the granted scopes allow an interaction on a resource
// type. It understands SMART v2 (system/Type.cruds) and v1 (system/Type.read,
// system/Type.write, system/Type.*) scopes, with * for every type. Only
// admin clients can do anything with admin-only types (AuditEvent), so a
// partner's system/*.rs never covers them.
func (p Principal) Can(resourceType string, in Interaction) bool {
	if adminOnlyType(resourceType) && p.Kind != KindAdmin {
		return false
	}
	for _, s := range p.Scopes {
		if scopeAllows(s, resourceType, in) {
			return true
		}
	}
	return false
}

// HasScope reports whether a non-FHIR scope (such as kap/episodes.write)
// was granted.
func (p Principal) HasScope(scope string) bool {
	for _, s := range p.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

func scopeAllows(scope, resourceType string, in Interaction) bool {
	rest, ok := strings.CutPrefix(scope, "system/")
	if !ok {
		return false
	}
	typ, perms, ok := strings.Cut(rest, ".")
	if !ok || (typ != "*" && typ != resourceType) {
		return false
	}
	if strings.IndexByte(perms, '?') >= 0 {
		return false // v2 scope parameters narrow further; the gateway cannot, so it grants nothing
	}
	switch perms {
	case "read":
		return in == Read || in == Search
	case "write":
		return in == Create || in == Update || in == Delete
	case "*":
		return true
	}
	return strings.IndexByte(perms, byte(in)) >= 0 && validV2(perms)
}

// validV2 reports whether perms is a SMART v2 permission string: a subset
// of c, r, u, d, s in that order.
func validV2(perms string) bool {
	order := "cruds"
	last := -1
	for i := 0; i < len(perms); i++ {
		at := strings.IndexByte(order, perms[i])
		if at <= last {
			return false
		}
		last = at
	}
	return perms != ""
}
