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

// jobRescueAfter is how long a job may stay running before River rescues
// it as stuck (its process was killed): a job whose worker has a longer
// Timeout is left until that has passed, so this only brings forward the
// deliveries of a crashed process (River's default is an hour; it may not
// be below River's default job timeout, a minute).
const jobRescueAfter = time.Minute

// addSyncWorker adds the push worker to workers: it delivers what the
// outbox enqueues, with partner credentials resolved through sec, every
// attempt in the exchange log xlog, outbound requests traced, and loopback
// destinations reachable only when cfg.Sync.AllowLoopback.
func addSyncWorker(workers *river.Workers, log *slog.Logger, cfg config.Config, st *store.Store, xlog kapsync.ExchangeLog, sec kapsync.Resolver, tel *telemetry.Telemetry) {
	w := kapsync.NewWorker(guardedDestinations{Store: st, allowLoopback: cfg.Sync.AllowLoopback}, xlog,
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
