package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/trace"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/config"
	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/jobs"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/pharmacy"
)

// rxService is e-prescribing, wired: the job queue that delivers signed
// SCRIPT messages, the prescriber hook intake runs in the episode's
// transaction, and the callback receiver. Its zero value sends nothing.
type rxService struct {
	queue         *jobs.Queue
	prescriptions *pharmacy.Prescriptions
	callbacks     *pharmacy.Callbacks
}

// newRx builds e-prescribing when a pharmacy URL is configured.
func newRx(log *slog.Logger, cfg config.Config, st *store.Store, src secrets.Source, signer secrets.Signer, journal pharmacy.Journal, tp trace.TracerProvider) (*rxService, error) {
	if cfg.Pharmacy.URL == "" {
		return &rxService{}, nil
	}
	client, err := pharmacy.NewClient(cfg.Pharmacy.URL, &http.Client{Timeout: cfg.Pharmacy.Timeout})
	if err != nil {
		return nil, err
	}
	ref, err := secrets.ParseRef(cfg.Pharmacy.CallbackSecret)
	if err != nil {
		return nil, err
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, pharmacy.NewSender(client, signer, journal, st, time.Now).WithAttemptLog(st))
	river.AddWorker(workers, pharmacy.NewTaskWriter(st))
	q, err := jobs.New(st, log, jobs.Config{Workers: workers, TracerProvider: tp})
	if err != nil {
		return nil, err
	}
	secret := func(ctx context.Context) ([]byte, error) {
		v, err := src.Secret(ctx, ref)
		return []byte(v), err
	}
	return &rxService{
		queue:         q,
		prescriptions: pharmacy.NewPrescriptions(q, journal, time.Now).WithLedger(st),
		callbacks:     pharmacy.NewCallbacks(st, secret, journal, cfg.SystemBase, time.Now),
	}, nil
}

// start works delivery jobs until stop.
func (r *rxService) start(ctx context.Context) error {
	if r.queue == nil {
		return nil
	}
	if err := r.queue.Start(ctx); err != nil {
		return fmt.Errorf("start job queue: %w", err)
	}
	return nil
}

// stop lets running deliveries finish within timeout.
func (r *rxService) stop(log *slog.Logger, timeout time.Duration) {
	if r.queue == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := r.queue.Stop(ctx); err != nil {
		log.Warn("job queue stop", "err", err.Error())
	}
}

// intake makes in send prescriptions when a pharmacy is configured.
func (r *rxService) intake(in *intake.Service) *intake.Service {
	if r.prescriptions == nil {
		return in
	}
	return in.WithPrescriber(r.prescriptions)
}

// fhirCallbacks is the callback receiver for fhir.Options (nil: no route).
func (r *rxService) fhirCallbacks() fhir.PharmacyCallbacks {
	if r.callbacks == nil {
		return nil
	}
	return r.callbacks
}
