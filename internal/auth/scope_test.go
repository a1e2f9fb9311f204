package auth_test

import (
	"strings"
	"testing"

	"github.com/kapgw/kapgw/internal/auth"
)

func TestGrant(t *testing.T) {
	t.Parallel()
	tests := []struct{ requested, allowed, want string }{
		{"system/Observation.rs", "system/*.read", "system/Observation.rs"},
		{"system/Observation.read", "system/*.rs", "system/Observation.read"},
		{"system/*.read", "system/Observation.rs system/CarePlan.r", "system/Observation.rs system/CarePlan.r"},
		{"system/*.cruds", "system/*.rs", "system/*.rs"},
		{"system/Patient.cud", "system/*.rs", ""},
		{"system/Patient.write", "system/*.*", "system/Patient.write"},
		{"system/Observation.rs?category=vital-signs", "system/*.rs", ""},
		{"system/Observation.rs", "system/Observation.rs?category=laboratory", ""},
		{"patient/Observation.rs user/*.read launch openid", "system/*.rs", ""},
		{"system/Observation.sr system/Observation.x", "system/*.rs", ""},
		{"kap/episodes.write system/CarePlan.rs", "kap/episodes.write", "kap/episodes.write"},
		{"system/CarePlan.rs system/CarePlan.rs", "system/*.rs", "system/CarePlan.rs"},
	}
	for _, tc := range tests {
		got := strings.Join(auth.Grant(strings.Fields(tc.requested), strings.Fields(tc.allowed)), " ")
		if got != tc.want {
			t.Errorf("Grant(%q, %q) = %q, want %q", tc.requested, tc.allowed, got, tc.want)
		}
	}
}

func TestCanRefusesScopeParameters(t *testing.T) {
	t.Parallel()
	p := auth.Principal{Scopes: []string{"system/Observation.rs?category=laboratory"}}
	if p.Can("Observation", auth.Read) {
		t.Fatal("a scope with parameters granted every Observation")
	}
}

func TestValidScope(t *testing.T) {
	t.Parallel()
	if auth.ValidScope(auth.KindPartner, auth.ScopeEpisodesWrite) || !auth.ValidScope(auth.KindClinic, auth.ScopeEpisodesWrite) ||
		!auth.ValidScope(auth.KindPartner, "system/*.rs") || auth.ValidScope(auth.KindPartner, "patient/*.rs") {
		t.Fatal("ValidScope")
	}
}

func TestAuditEventsAreForAdminsOnly(t *testing.T) {
	t.Parallel()
	for _, kind := range []auth.Kind{auth.KindPartner, auth.KindClinic} {
		if auth.ValidScope(kind, "system/AuditEvent.rs") || auth.ValidScope(kind, "system/AuditEvent.read") {
			t.Errorf("%s may register an AuditEvent scope", kind)
		}
		p := auth.Principal{Kind: kind, Scopes: []string{"system/*.rs", "system/AuditEvent.rs"}}
		if p.Can("AuditEvent", auth.Read) || p.Can("AuditEvent", auth.Search) || !p.Can("Observation", auth.Read) {
			t.Errorf("%s with system/*.rs: AuditEvent read %v, Observation read %v", kind,
				p.Can("AuditEvent", auth.Read), p.Can("Observation", auth.Read))
		}
	}
	admin := auth.Principal{Kind: auth.KindAdmin, Scopes: []string{"system/AuditEvent.rs"}}
	if !auth.ValidScope(auth.KindAdmin, "system/AuditEvent.rs") || !admin.Can("AuditEvent", auth.Search) {
		t.Error("an admin may not search AuditEvents")
	}
}
