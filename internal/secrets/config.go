package secrets

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Auth methods a Config may name.
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
)

// DefaultKubernetesJWTFile is where Kubernetes mounts a pod's service
// account token.
const DefaultKubernetesJWTFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// Config says how the gateway reaches and authenticates to Vault. It holds no
// secret values except a development token; AppRole and Kubernetes
// credentials are read from files at login time so they can be rotated.
type Config struct {
	// Addr is Vault's base URL, for example https://vault.internal:8200.
	Addr string
	// Auth is AuthToken (development), AuthAppRole or AuthKubernetes.
	Auth string
	// Token is the development token used with AuthToken.
	Token string
	// AppRoleMount is the AppRole auth mount; default "approle".
	AppRoleMount string
	// RoleID is the AppRole role_id (not a secret on its own).
	RoleID string
	// SecretIDFile holds the AppRole secret_id, read at every login.
	SecretIDFile string
	// KubernetesMount is the Kubernetes auth mount; default "kubernetes".
	KubernetesMount string
	// KubernetesRole is the Vault role bound to the pod's service account.
	KubernetesRole string
	// KubernetesJWTFile holds the service account token; default
	// DefaultKubernetesJWTFile.
	KubernetesJWTFile string
	// RequestTimeout bounds each call to Vault; default 10s.
	RequestTimeout time.Duration
	// MaxRetries is how often the client retries 5xx answers; default 0 so
	// that callers (and their job queues) own retrying.
	MaxRetries int
	// Refresh is how long a KV value is used before Vault is asked again, so
	// rotations are picked up within it; default 1m.
	Refresh time.Duration
	// MaxStale is how long a cached KV value is still served after its last
	// successful read while Vault cannot be reached; default 15m. After
	// that reads fail closed.
	MaxStale time.Duration
}

// withDefaults fills the zero fields that have defaults.
func (c Config) withDefaults() Config {
	if c.AppRoleMount == "" {
		c.AppRoleMount = "approle"
	}
	if c.KubernetesMount == "" {
		c.KubernetesMount = "kubernetes"
	}
	if c.KubernetesJWTFile == "" {
		c.KubernetesJWTFile = DefaultKubernetesJWTFile
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.Refresh == 0 {
		c.Refresh = time.Minute
	}
	if c.MaxStale == 0 {
		c.MaxStale = 15 * time.Minute
	}
	return c
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if u, err := url.Parse(c.Addr); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("vault address must be an http(s) URL"))
	}
	switch c.Auth {
	case AuthToken:
		if c.Token == "" {
			errs = append(errs, errors.New("vault token auth needs a token"))
		}
	case AuthAppRole:
		if c.RoleID == "" || c.SecretIDFile == "" {
			errs = append(errs, errors.New("vault approle auth needs a role id and a secret id file"))
		}
	case AuthKubernetes:
		if c.KubernetesRole == "" {
			errs = append(errs, errors.New("vault kubernetes auth needs a role"))
		}
	default:
		errs = append(errs, fmt.Errorf("vault auth method %q is not one of token, approle, kubernetes", c.Auth))
	}
	if c.RequestTimeout < 0 || c.Refresh < 0 || c.MaxStale < 0 || c.MaxRetries < 0 {
		errs = append(errs, errors.New("vault timeouts, intervals and retries must not be negative"))
	}
	if c.MaxStale < c.Refresh {
		errs = append(errs, errors.New("vault max stale age must be at least the refresh interval"))
	}
	return errors.Join(errs...)
}
