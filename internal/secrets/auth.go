package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// lookupToken checks the development token and describes its lifetime in the
// shape a login returns.
func (c *Client) lookupToken(ctx context.Context) (*api.Secret, error) {
	lc, err := c.loginClient()
	if err != nil {
		return nil, err
	}
	lc.SetToken(c.cfg.Token)
	s, err := lc.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("look up token: %w", classify(err))
	}
	ttl, err := s.TokenTTL()
	if err != nil {
		return nil, fmt.Errorf("look up token: %w", err)
	}
	renewable, err := s.TokenIsRenewable()
	if err != nil {
		return nil, fmt.Errorf("look up token: %w", err)
	}
	return &api.Secret{Auth: &api.SecretAuth{
		ClientToken:   c.cfg.Token,
		Renewable:     renewable,
		LeaseDuration: int(ttl / time.Second),
	}}, nil
}

// loginAppRole logs in with the role id and the secret id read from its file
// at every login, so a rotated secret id is used without a restart.
func (c *Client) loginAppRole(ctx context.Context) (*api.Secret, error) {
	secretID, err := readCredential(c.cfg.SecretIDFile)
	if err != nil {
		return nil, fmt.Errorf("approle secret id: %w", err)
	}
	return c.loginWith(ctx, "auth/"+c.cfg.AppRoleMount+"/login", map[string]any{
		"role_id": c.cfg.RoleID, "secret_id": secretID,
	})
}

// loginKubernetes logs in with the pod's service account token.
func (c *Client) loginKubernetes(ctx context.Context) (*api.Secret, error) {
	jwt, err := readCredential(c.cfg.KubernetesJWTFile)
	if err != nil {
		return nil, fmt.Errorf("kubernetes service account token: %w", err)
	}
	return c.loginWith(ctx, "auth/"+c.cfg.KubernetesMount+"/login", map[string]any{
		"role": c.cfg.KubernetesRole, "jwt": jwt,
	})
}

// loginWith writes credentials to a login path from a token-less client, so
// requests in flight keep the current token until the new one is installed.
func (c *Client) loginWith(ctx context.Context, path string, data map[string]any) (*api.Secret, error) {
	lc, err := c.loginClient()
	if err != nil {
		return nil, err
	}
	s, err := lc.Logical().WriteWithContext(ctx, path, data)
	if err != nil {
		return nil, fmt.Errorf("log in at %s: %w", path, classify(err))
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, fmt.Errorf("log in at %s: no token in response", path)
	}
	return s, nil
}

func (c *Client) loginClient() (*api.Client, error) {
	lc, err := c.api.Clone()
	if err != nil {
		return nil, fmt.Errorf("clone vault client: %w", err)
	}
	lc.ClearToken()
	return lc, nil
}

// readCredential reads a credential file; errors name the file, not its
// content.
func readCredential(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("read %s: empty", path)
	}
	return v, nil
}

// Run keeps the client's token alive until ctx ends: a lifetime watcher
// renews it, and when renewal is no longer possible (max TTL reached, token
// revoked, Vault down past the token's expiry) Run logs in again, retrying
// with backoff. It returns nil when ctx ends.
func (c *Client) Run(ctx context.Context) error {
	for {
		if err := c.watch(ctx); err != nil {
			c.log.WarnContext(ctx, "vault token renewal stopped", "vault_host", c.host, "error", err)
		}
		if ctx.Err() != nil {
			return nil
		}
		if !c.relogin(ctx) {
			return nil
		}
		c.log.InfoContext(ctx, "vault login renewed", "vault_host", c.host, "auth_method", c.cfg.Auth)
	}
}

// watch renews the current token until renewal ends or ctx ends.
func (c *Client) watch(ctx context.Context) error {
	s := c.currentLogin()
	if s.Auth.LeaseDuration == 0 {
		<-ctx.Done() // A token without TTL (development root token) never expires.
		return nil
	}
	w, err := c.api.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: s})
	if err != nil {
		return fmt.Errorf("start token watcher: %w", err)
	}
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.DoneCh():
			if err == nil {
				err = errors.New("token reached its maximum lifetime")
			}
			return err
		case <-w.RenewCh():
		}
	}
}

// relogin logs in again with exponential backoff; it reports false when ctx
// ended first.
func (c *Client) relogin(ctx context.Context) bool {
	wait := 100 * time.Millisecond
	for {
		err := c.logIn(ctx)
		if err == nil {
			return true
		}
		c.log.ErrorContext(ctx, "vault login failed", "vault_host", c.host, "auth_method", c.cfg.Auth, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		wait = min(2*wait, 30*time.Second)
	}
}
