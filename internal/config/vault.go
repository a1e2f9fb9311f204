package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kapgw/kapgw/internal/secrets"
)

// Profiles. production refuses to start without Vault, with a development
// token, or with any local: secret reference.
const (
	ProfileDev        = "dev"
	ProfileProduction = "production"
)

// vaultSettings are the profile and the Vault connection settings.
func vaultSettings() []setting {
	str := func(f func(c *Config) *string) func(c *Config, v string) error {
		return func(c *Config, v string) error { *f(c) = v; return nil }
	}
	dur := func(f func(c *Config) *time.Duration) func(c *Config, v string) error {
		return func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return errors.New("must be a duration such as 1m")
			}
			*f(c) = d
			return nil
		}
	}
	return []setting{
		{"profile", "KAPGW_PROFILE", ProfileDev, "dev or production (production requires Vault and refuses local: secret refs)",
			str(func(c *Config) *string { return &c.Profile })},
		{"vault-addr", "KAPGW_VAULT_ADDR", "", "Vault base URL; empty uses the development secret store under --data-dir",
			str(func(c *Config) *string { return &c.Vault.Addr })},
		{"vault-auth", "KAPGW_VAULT_AUTH", secrets.AuthToken, "Vault auth method: token (development), approle, kubernetes",
			str(func(c *Config) *string { return &c.Vault.Auth })},
		{"vault-token", "KAPGW_VAULT_TOKEN", "", "Vault token for token auth (development only)",
			str(func(c *Config) *string { return &c.Vault.Token })},
		{"vault-approle-mount", "KAPGW_VAULT_APPROLE_MOUNT", "approle", "AppRole auth mount",
			str(func(c *Config) *string { return &c.Vault.AppRoleMount })},
		{"vault-role-id", "KAPGW_VAULT_ROLE_ID", "", "AppRole role_id",
			str(func(c *Config) *string { return &c.Vault.RoleID })},
		{"vault-secret-id-file", "KAPGW_VAULT_SECRET_ID_FILE", "", "file holding the AppRole secret_id (read at every login)",
			str(func(c *Config) *string { return &c.Vault.SecretIDFile })},
		{"vault-k8s-mount", "KAPGW_VAULT_K8S_MOUNT", "kubernetes", "Kubernetes auth mount",
			str(func(c *Config) *string { return &c.Vault.KubernetesMount })},
		{"vault-k8s-role", "KAPGW_VAULT_K8S_ROLE", "", "Vault role bound to the pod's service account",
			str(func(c *Config) *string { return &c.Vault.KubernetesRole })},
		{"vault-k8s-jwt-file", "KAPGW_VAULT_K8S_JWT_FILE", secrets.DefaultKubernetesJWTFile, "service account token file",
			str(func(c *Config) *string { return &c.Vault.KubernetesJWTFile })},
		{"vault-timeout", "KAPGW_VAULT_TIMEOUT", "10s", "timeout of each Vault call",
			dur(func(c *Config) *time.Duration { return &c.Vault.RequestTimeout })},
		{"vault-refresh", "KAPGW_VAULT_REFRESH", "1m", "how long a static secret is used before Vault is asked again (rotation delay)",
			dur(func(c *Config) *time.Duration { return &c.Vault.Refresh })},
		{"vault-max-stale", "KAPGW_VAULT_MAX_STALE", "15m", "how long cached static secrets are served while Vault is unreachable",
			dur(func(c *Config) *time.Duration { return &c.Vault.MaxStale })},
	}
}

// validateVault checks the profile and, when Vault is configured, its
// settings.
func (c Config) validateVault() []error {
	var errs []error
	switch c.Profile {
	case ProfileDev, ProfileProduction:
	default:
		errs = append(errs, errors.New("--profile / KAPGW_PROFILE: must be dev or production"))
	}
	if c.Vault.Addr == "" {
		if c.Profile == ProfileProduction {
			errs = append(errs, errors.New("--profile production / KAPGW_PROFILE: refuses to start without Vault: set --vault-addr / KAPGW_VAULT_ADDR (the development secret store is for development only)"))
		}
		if strings.HasPrefix(c.DatabaseURL, secrets.SchemeVault+":") {
			errs = append(errs, errors.New("--database-url / KAPGW_DATABASE_URL: a vault: ref needs --vault-addr / KAPGW_VAULT_ADDR"))
		}
		return errs
	}
	if err := c.Vault.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--vault-* / KAPGW_VAULT_*: %w", err))
	}
	if c.Profile == ProfileProduction && c.Vault.Auth == secrets.AuthToken {
		errs = append(errs, errors.New("--profile production / KAPGW_PROFILE: token auth is for development; use --vault-auth approle or kubernetes"))
	}
	return errs
}

// refuseLocalRefs rejects, under the production profile, every setting whose
// value is a local: secret reference (the development store answers those;
// Vault never does).
func refuseLocalRefs(raw map[string]*string) []error {
	if p := raw["profile"]; p == nil || *p != ProfileProduction {
		return nil
	}
	var errs []error
	for _, s := range settings() {
		if v := raw[s.flag]; v != nil && strings.HasPrefix(*v, secrets.SchemeLocal+":") {
			errs = append(errs, fmt.Errorf("--%s / %s: --profile production refuses local: secret refs; use vault:", s.flag, s.env))
		}
	}
	return errs
}
