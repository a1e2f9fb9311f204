package secrets

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Transit keys the gateway signs with; deploy/vault/bootstrap.sh creates
// them and the development store generates them.
const (
	TransitMount = "transit"
	TokenKey     = "kapgw-token" // signs the gateway's access tokens
	RxKey        = "kapgw-rx"    // signs prescriptions
)

// Source resolves secret references to values.
type Source interface {
	Secret(ctx context.Context, ref Ref) (string, error)
}

// Signers are the gateway's signing keys.
type Signers struct {
	Token Signer // access tokens
	Rx    Signer // prescriptions
}

// Backend is where the gateway's secrets come from, chosen at start-up:
// Vault in production, the development store otherwise. run.go hands Source
// and Signers to the components that need them.
type Backend struct {
	Source  Source
	Signers Signers
	// Vault is the connected client, nil with the development store.
	Vault *Client
	// Dev is the development store, nil with Vault.
	Dev *DevStore
}

// NewVaultBackend reads static secrets through KV and signs through Transit.
// It fails when a Transit key is missing or unreadable, so a misconfigured
// Vault stops start-up rather than the first signature.
func NewVaultBackend(ctx context.Context, log *slog.Logger, c *Client, now func() time.Time) (*Backend, error) {
	tok, err := NewTransitSigner(ctx, c, TransitMount, TokenKey)
	if err != nil {
		return nil, err
	}
	rx, err := NewTransitSigner(ctx, c, TransitMount, RxKey)
	if err != nil {
		return nil, err
	}
	return &Backend{Source: NewKV(c, log, now), Signers: Signers{Token: tok, Rx: rx}, Vault: c}, nil
}

// NewDevBackend opens the development store under dataDir; OpenDevStore
// logs the loud warning.
func NewDevBackend(ctx context.Context, log *slog.Logger, dataDir string) (*Backend, error) {
	d, err := OpenDevStore(ctx, log, dataDir, TokenKey, RxKey)
	if err != nil {
		return nil, err
	}
	tok, err := d.Signer(TokenKey)
	if err != nil {
		return nil, err
	}
	rx, err := d.Signer(RxKey)
	if err != nil {
		return nil, err
	}
	return &Backend{Source: d, Signers: Signers{Token: tok, Rx: rx}, Dev: d}, nil
}

// Resolve returns s itself, or the secret it names when it is a vault: or
// local: reference (for example a database URL kept in Vault).
func (b *Backend) Resolve(ctx context.Context, s string) (string, error) {
	if !IsRef(s) {
		return s, nil
	}
	ref, err := ParseRef(s)
	if err != nil {
		return "", err
	}
	v, err := b.Source.Secret(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	return v, nil
}

// IsRef reports whether s is written as a secret reference.
func IsRef(s string) bool {
	return strings.HasPrefix(s, SchemeVault+":") || strings.HasPrefix(s, SchemeLocal+":")
}
