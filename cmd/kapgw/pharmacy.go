package main

import (
	"context"
	"net/http"
	"time"

	"github.com/riverqueue/river"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/config"
	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/jobs"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/pharmacy"
)

// rxService is e-prescribing, wired: the workers that deliver signed
// SCRIPT messages (on the gateway's one job queue), the prescriber hook
// intake runs in the episode's transaction, and the callback receiver. Its
// zero value sends nothing.
type rxService struct {
	st            *store.Store
	journal       pharmacy.Journal
	prescriptions *pharmacy.Prescriptions
	callbacks     *pharmacy.Callbacks
}

// newRx builds e-prescribing when a pharmacy URL is configured, adding its
// workers to workers; bind then gives it the queue.
func newRx(cfg config.Config, st *store.Store, src secrets.Source, signer secrets.Signer, journal pharmacy.Journal, workers *river.Workers) (*rxService, error) {
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
	river.AddWorker(workers, pharmacy.NewSender(client, signer, journal, st, time.Now).WithAttemptLog(st))
	river.AddWorker(workers, pharmacy.NewTaskWriter(st))
	secret := func(ctx context.Context) ([]byte, error) {
		v, err := src.Secret(ctx, ref)
		return []byte(v), err
	}
	return &rxService{
		st:        st,
		journal:   journal,
		callbacks: pharmacy.NewCallbacks(st, secret, journal, cfg.SystemBase, time.Now),
	}, nil
}

// bind makes prescriptions go through q.
func (r *rxService) bind(q *jobs.Queue) {
	if r.st == nil {
		return
	}
	r.prescriptions = pharmacy.NewPrescriptions(q, r.journal, time.Now).WithLedger(r.st).WithRecords(r.st).WithExternal(r.st)
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
