package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/riverqueue/river"

	"github.com/kapgw/kapgw/internal/config"
	"github.com/kapgw/kapgw/internal/jobs"
	"github.com/kapgw/kapgw/internal/store"
	kapsync "github.com/kapgw/kapgw/internal/sync"
	"github.com/kapgw/kapgw/internal/telemetry"
)

// syncBackoff is the retry schedule of deliveries to partners.
var syncBackoff = kapsync.Backoff{Base: time.Second, Cap: 10 * time.Minute}

// syncMaxAttempts bounds a delivery's attempts before its dead letter.
const syncMaxAttempts = 10

// addSyncWorker adds the push worker to workers: it delivers what the
// outbox enqueues, with partner credentials resolved through sec, outbound
// requests traced, and loopback destinations reachable only when
// cfg.Sync.AllowLoopback.
func addSyncWorker(workers *river.Workers, log *slog.Logger, cfg config.Config, st *store.Store, sec kapsync.Resolver, tel *telemetry.Telemetry) {
	w := kapsync.NewWorker(guardedDestinations{Store: st, allowLoopback: cfg.Sync.AllowLoopback},
		sec, log, time.Now, syncBackoff, syncHolder()).WithTransport(tel.Transport)
	river.AddWorker(workers, w)
}

// newOutbox enqueues deliveries on q in each episode's transaction.
func newOutbox(st *store.Store, q *jobs.Queue) *kapsync.Outbox {
	return kapsync.NewOutbox(st, q, time.Now, syncMaxAttempts)
}

// guardedDestinations is the store as the push worker sees it: unless the
// gateway runs with --sync-allow-loopback, every destination is held to
// public addresses whatever it was registered with.
type guardedDestinations struct {
	*store.Store
	allowLoopback bool
}

// Destination returns the partner's destination with its Allow capped.
func (g guardedDestinations) Destination(ctx context.Context, partnerID string) (store.Destination, error) {
	d, err := g.Store.Destination(ctx, partnerID)
	if err == nil && !g.allowLoopback {
		d.Allow = string(kapsync.AllowNone)
	}
	return d, err
}

// syncHolder names this process in delivery leases.
func syncHolder() string {
	host, _ := os.Hostname()
	return host + ":" + strconv.Itoa(os.Getpid())
}

// startQueue starts the gateway's one job queue; the returned stop lets
// running jobs finish within timeout.
func startQueue(ctx context.Context, log *slog.Logger, q *jobs.Queue, timeout time.Duration) (func(), error) {
	if err := q.Start(ctx); err != nil {
		return nil, fmt.Errorf("start job queue: %w", err)
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := q.Stop(sctx); err != nil {
			log.Warn("job queue stop", "err", err.Error())
		}
	}, nil
}
