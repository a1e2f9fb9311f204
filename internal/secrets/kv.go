package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// KV reads static secrets from Vault's KV version 2 engine. A value is cached
// for the refresh interval and then read again, so a rotated secret is
// picked up without a restart. While Vault is unreachable or sealed the last
// value is served until it is older than the maximum stale age; then reads
// fail closed.
type KV struct {
	client   *Client
	log      *slog.Logger
	now      func() time.Time
	refresh  time.Duration
	maxStale time.Duration

	mu      sync.Mutex
	entries map[string]*kvEntry // by mount/path
}

// kvEntry is one cached secret version; fetched is the last successful read.
type kvEntry struct {
	mu      sync.Mutex // serialises reads of one secret
	data    map[string]any
	version int
	fetched time.Time
}

// NewKV returns a KV reading through client with the client's refresh and
// stale limits. now is the clock, injected for tests.
func NewKV(client *Client, log *slog.Logger, now func() time.Time) *KV {
	return &KV{
		client:   client,
		log:      log,
		now:      now,
		refresh:  client.cfg.Refresh,
		maxStale: client.cfg.MaxStale,
		entries:  map[string]*kvEntry{},
	}
}

// Secret returns the current value of the field ref points at.
func (k *KV) Secret(ctx context.Context, ref Ref) (string, error) {
	v, _, err := k.SecretVersion(ctx, ref)
	return v, err
}

// SecretVersion returns the field's value and the KV version it came from,
// so callers can rebuild what they derived from it when the version changes.
func (k *KV) SecretVersion(ctx context.Context, ref Ref) (string, int, error) {
	if ref.Scheme != SchemeVault {
		return "", 0, fmt.Errorf("read secret %s: vault cannot resolve %s refs", ref, ref.Scheme)
	}
	e := k.entry(ref.secretKey())
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := k.ensureFresh(ctx, ref, e); err != nil {
		return "", 0, err
	}
	v, ok := e.data[ref.Field].(string)
	if !ok {
		return "", 0, fmt.Errorf("read secret %s: %w: no string field", ref, ErrNotFound)
	}
	return v, e.version, nil
}

func (k *KV) entry(key string) *kvEntry {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.entries[key]
	if !ok {
		e = &kvEntry{}
		k.entries[key] = e
	}
	return e
}

// ensureFresh rereads e when it is older than the refresh interval and falls
// back to the cached value within the stale limit.
func (k *KV) ensureFresh(ctx context.Context, ref Ref, e *kvEntry) error {
	now := k.now()
	if e.data != nil && now.Sub(e.fetched) < k.refresh {
		return nil
	}
	data, version, err := k.read(ctx, ref)
	if err == nil {
		if e.data != nil && version != e.version {
			k.log.InfoContext(ctx, "secret rotated", "secret_ref", ref.secretKey(), "old_version", e.version, "new_version", version)
		}
		e.data, e.version, e.fetched = data, version, now
		return nil
	}
	if e.data == nil || errors.Is(err, ErrNotFound) || now.Sub(e.fetched) >= k.maxStale {
		return fmt.Errorf("read secret %s: %w", ref, err)
	}
	k.log.WarnContext(ctx, "serving cached secret, vault read failed",
		"secret_ref", ref.secretKey(), "version", e.version, "age", now.Sub(e.fetched).String(), "error", err)
	return nil
}

// read fetches the latest version of the secret ref points at.
func (k *KV) read(ctx context.Context, ref Ref) (map[string]any, int, error) {
	s, err := k.client.api.KVv2(ref.Mount).Get(ctx, ref.Path)
	if err != nil {
		return nil, 0, classify(err)
	}
	if s.VersionMetadata == nil || s.Data == nil {
		return nil, 0, fmt.Errorf("%w: deleted or destroyed", ErrNotFound)
	}
	return s.Data, s.VersionMetadata.Version, nil
}
