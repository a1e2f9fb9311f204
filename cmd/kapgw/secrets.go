package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/kapgw/kapgw/internal/config"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/telemetry"
)

// openSecrets connects to Vault when one is configured (failing at once when
// it is unreachable, sealed or refuses the login) and keeps its token alive
// until stop is called; otherwise it opens the development store under the
// data directory, which warns loudly. Vault calls are traced and their
// failures counted.
func openSecrets(ctx context.Context, log *slog.Logger, cfg config.Config, tel *telemetry.Telemetry) (b *secrets.Backend, stop func(), err error) {
	if cfg.Vault.Addr == "" {
		b, err := secrets.NewDevBackend(ctx, log, cfg.DataDir)
		if err != nil {
			return nil, nil, fmt.Errorf("development secrets: %w", err)
		}
		return b, func() {}, nil
	}
	c, err := secrets.Connect(ctx, log, cfg.Vault)
	if err != nil {
		return nil, nil, err
	}
	vaultErrors, err := telemetry.NewVaultErrors(tel.MeterProvider)
	if err != nil {
		return nil, nil, err
	}
	if err := c.Instrument(tel.Transport, vaultErrors.Add); err != nil {
		return nil, nil, err
	}
	b, err = secrets.NewVaultBackend(ctx, log, c, time.Now)
	if err != nil {
		return nil, nil, fmt.Errorf("vault: %w", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(rctx) // Run only returns, with nil, when rctx ends.
	}()
	log.InfoContext(ctx, "vault connected", "auth_method", cfg.Vault.Auth)
	return b, func() { cancel(); <-done }, nil
}
