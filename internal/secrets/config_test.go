package secrets

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := []Config{
		{Addr: "http://127.0.0.1:8200", Auth: AuthToken, Token: "t"},
		{Addr: "https://vault:8200", Auth: AuthAppRole, RoleID: "r", SecretIDFile: "/run/secret-id"},
		{Addr: "https://vault:8200", Auth: AuthKubernetes, KubernetesRole: "kapgw-gateway"},
	}
	for _, c := range valid {
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%s) = %v", c.Auth, err)
		}
	}
	err := Config{Addr: "vault:8200", Auth: "password", Refresh: time.Hour, MaxStale: time.Minute}.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, want := range []string{"http(s) URL", "not one of", "max stale"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not report %q", err, want)
		}
	}
}
