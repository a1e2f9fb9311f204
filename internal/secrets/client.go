package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"

	"github.com/hashicorp/vault/api"
)

// Client is an authenticated connection to Vault shared by KV and the
// Transit signers. Run keeps its token alive.
type Client struct {
	api  *api.Client
	cfg  Config
	log  *slog.Logger
	host string

	mu    sync.Mutex
	login *api.Secret // the latest login (or token lookup) result
}

// Connect logs in to Vault and fails with a clear error when Vault is
// unreachable, sealed or refuses the credentials, so the gateway can exit at
// start-up instead of serving without its secrets.
func Connect(ctx context.Context, log *slog.Logger, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vault config: %w", err)
	}
	cfg = cfg.withDefaults()
	u, _ := url.Parse(cfg.Addr) // Validate checked it.
	ac, err := api.NewClient(&api.Config{
		Address:    cfg.Addr,
		HttpClient: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		Timeout:    cfg.RequestTimeout,
		MaxRetries: cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("vault client for %s: %w", u.Host, err)
	}
	// api.NewClient picks up VAULT_TOKEN and VAULT_NAMESPACE from the
	// process environment; configuration comes only from cfg.
	ac.ClearToken()
	ac.ClearNamespace()
	c := &Client{api: ac, cfg: cfg, log: log, host: u.Host}
	if err := c.logIn(ctx); err != nil {
		return nil, fmt.Errorf("connect to vault at %s: %w", u.Host, err)
	}
	return c, nil
}

// logIn authenticates with the configured method and installs the token.
func (c *Client) logIn(ctx context.Context) error {
	var (
		s   *api.Secret
		err error
	)
	switch c.cfg.Auth {
	case AuthToken:
		s, err = c.lookupToken(ctx)
	case AuthAppRole:
		s, err = c.loginAppRole(ctx)
	case AuthKubernetes:
		s, err = c.loginKubernetes(ctx)
	default:
		err = fmt.Errorf("unknown auth method %q", c.cfg.Auth)
	}
	if err != nil {
		return err
	}
	c.api.SetToken(s.Auth.ClientToken)
	c.mu.Lock()
	c.login = s
	c.mu.Unlock()
	return nil
}

// currentLogin returns the latest login result.
func (c *Client) currentLogin() *api.Secret {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.login
}

// classify wraps a Vault error with ErrUnavailable or ErrNotFound where it
// applies. Vault's error text names the URL and Vault's own messages, never
// secret values.
func classify(err error) error {
	if errors.Is(err, api.ErrSecretNotFound) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case re.StatusCode == http.StatusTooManyRequests || re.StatusCode >= 500:
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	// Transport failures: refused connections, timeouts, TLS errors.
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
