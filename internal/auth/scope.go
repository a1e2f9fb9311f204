package auth

import (
	"strings"

	"github.com/kapgw/kapgw/internal/store"
)

// Scopes of the KAP intake API. Only clinic and admin clients may hold them.
const (
	ScopeEpisodesWrite = "kap/episodes.write"
	ScopeEpisodesRead  = "kap/episodes.read"
)

// fhirScope is a parsed SMART system scope: a resource type (or *) and the
// interactions it grants.
type fhirScope struct {
	typ   string
	perms string // a subset of "cruds", in that order
}

// parseFHIRScope parses "system/Type.perms" in SMART v2 (cruds) or v1
// (read, write, *) syntax. Scopes with v2 parameters ("?category=...") are
// refused: the gateway cannot narrow by them, and granting them whole would
// grant more than was meant.
func parseFHIRScope(s string) (fhirScope, bool) {
	rest, ok := strings.CutPrefix(s, "system/")
	if !ok || strings.ContainsRune(rest, '?') {
		return fhirScope{}, false
	}
	typ, perms, ok := strings.Cut(rest, ".")
	if !ok || typ == "" || !validType(typ) {
		return fhirScope{}, false
	}
	switch perms {
	case "read":
		perms = "rs"
	case "write":
		perms = "cud"
	case "*":
		perms = "cruds"
	default:
		if !validV2(perms) {
			return fhirScope{}, false
		}
	}
	return fhirScope{typ: typ, perms: perms}, true
}

func validType(typ string) bool {
	if typ == "*" {
		return true
	}
	for _, r := range typ {
		if (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') {
			return false
		}
	}
	return true
}

// intersect returns what both scopes grant, and false when that is nothing.
func (a fhirScope) intersect(b fhirScope) (fhirScope, bool) {
	typ := a.typ
	switch {
	case a.typ == "*":
		typ = b.typ
	case b.typ != "*" && a.typ != b.typ:
		return fhirScope{}, false
	}
	var perms []byte
	for i := 0; i < len(a.perms); i++ {
		if strings.IndexByte(b.perms, a.perms[i]) >= 0 {
			perms = append(perms, a.perms[i])
		}
	}
	return fhirScope{typ: typ, perms: string(perms)}, len(perms) > 0
}

func (a fhirScope) String() string { return "system/" + a.typ + "." + a.perms }

// Grant returns the scopes to grant a client that asks for requested and may
// have allowed: their intersection. A requested scope wholly within an
// allowed one is granted as written (v1 or v2); one that reaches further is
// cut down to what is allowed, in v2 syntax. Other scopes (such as
// kap/episodes.write) are granted only when allowed verbatim. Scopes
// outside the system context, with parameters, or unknown are left out.
func Grant(requested, allowed []string) []string {
	var out []string
	add := func(s string) {
		for _, have := range out {
			if have == s {
				return
			}
		}
		out = append(out, s)
	}
	for _, r := range requested {
		rs, ok := parseFHIRScope(r)
		if !ok {
			if !strings.HasPrefix(r, "system/") && contains(allowed, r) {
				add(r)
			}
			continue
		}
		for _, a := range allowed {
			as, ok := parseFHIRScope(a)
			if !ok {
				continue
			}
			if both, ok := rs.intersect(as); ok {
				if both == rs {
					add(r)
				} else {
					add(both.String())
				}
			}
		}
	}
	return out
}

// adminOnlyType reports whether a resource type is for admin clients only,
// whatever scopes another client holds: AuditEvents name every partner's
// accesses to every patient.
func adminOnlyType(typ string) bool { return typ == "AuditEvent" }

// grantTo is Grant for a registered client: its allowed scopes, with the
// intake API scopes left out for partners and admin-only types (AuditEvent)
// for every client but admins. A wildcard (system/*.rs) stays as granted;
// Principal.Can keeps admin-only types out of it.
func grantTo(c store.Client, requested []string) []string {
	granted := Grant(requested, allowedScopes(c))
	if Kind(c.Kind) == KindAdmin {
		return granted
	}
	out := granted[:0]
	for _, s := range granted {
		if fs, ok := parseFHIRScope(s); ok && adminOnlyType(fs.typ) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// allowedScopes are a client's registered scopes; a partner never gets an
// intake API scope, whatever its registry entry says.
func allowedScopes(c store.Client) []string {
	if Kind(c.Kind) != KindPartner {
		return c.Scopes
	}
	var out []string
	for _, s := range c.Scopes {
		if !strings.HasPrefix(s, "kap/") {
			out = append(out, s)
		}
	}
	return out
}

// ValidScope reports whether a scope can be registered for a client of a
// kind: a SMART system scope (one naming AuditEvent only for admins), or
// for clinic and admin clients an intake API scope.
func ValidScope(kind Kind, s string) bool {
	if fs, ok := parseFHIRScope(s); ok {
		return kind == KindAdmin || !adminOnlyType(fs.typ)
	}
	return kind != KindPartner && (s == ScopeEpisodesWrite || s == ScopeEpisodesRead)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
