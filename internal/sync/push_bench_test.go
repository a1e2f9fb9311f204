package sync_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/tidwall/sjson"

	"github.com/kapgw/kapgw/internal/fhirpeer"
	"github.com/kapgw/kapgw/internal/store"
	kapsync "github.com/kapgw/kapgw/internal/sync"
)

// timedStore is the store as the worker sees it, noting when each version
// became visible at the partner (RecordDelivered runs once the partner
// answered the transaction) and how long deliveries held their leases.
type timedStore struct {
	*store.Store
	mu        gosync.Mutex
	visible   map[string][]seen // by "Type/id"
	resources int
	last      time.Time
	leases    map[string]time.Time
	held      time.Duration
}

type seen struct {
	version int64
	at      time.Time
}

func (s *timedStore) RecordDelivered(ctx context.Context, partnerID string, ds []store.Delivered) error {
	err := s.Store.RecordDelivered(ctx, partnerID, ds)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		k := d.Type + "/" + d.ID
		s.visible[k] = append(s.visible[k], seen{d.VersionID, now})
	}
	s.resources += len(ds)
	s.last = now
	return err
}

func (s *timedStore) AcquireLease(ctx context.Context, partnerID, patientID, holder string, ttl time.Duration) (bool, error) {
	ok, err := s.Store.AcquireLease(ctx, partnerID, patientID, holder, ttl)
	if ok {
		s.mu.Lock()
		s.leases[holder] = time.Now()
		s.mu.Unlock()
	}
	return ok, err
}

func (s *timedStore) ReleaseLease(ctx context.Context, partnerID, patientID, holder string) error {
	s.mu.Lock()
	if at, ok := s.leases[holder]; ok {
		s.held += time.Since(at)
		delete(s.leases, holder)
	}
	s.mu.Unlock()
	return s.Store.ReleaseLease(ctx, partnerID, patientID, holder)
}

// visibleAt returns when ref was first visible at the partner at version v
// or later.
func (s *timedStore) visibleAt(ref string, v int64) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.visible[ref] {
		if x.version >= v {
			return x.at, true
		}
	}
	return time.Time{}, false
}

// BenchmarkPushToPeer measures push to the Medplum peer on loopback, on
// SQLite: throughput (resources/s) delivering pushBurst new episodes put
// at once, then the lag from intake to visible at the partner (p50/p99)
// under a steady load of pushRate changes per second for pushSteady, and
// the share of delivery time spent waiting for the peer (the exchange
// log's request durations over the time deliveries held their leases).
// Run it with -benchtime=1x:
//
//	go test ./internal/sync -run '^$' -bench BenchmarkPushToPeer -benchtime=1x
func BenchmarkPushToPeer(b *testing.B) {
	for range b.N {
		pushFigures(b)
	}
}

const (
	pushBurst  = 40
	pushRate   = 5 // changes per second
	pushSteady = 20 * time.Second
)

func pushFigures(b *testing.B) {
	ctx := context.Background()
	peer := fhirpeer.Start(b)
	var ts *timedStore
	rig := newPushRig(b, store.Destination{BaseURL: peer.Base, Auth: "none", Concurrency: 4, Rate: 1000,
		Allow: string(kapsync.AllowLoopback)}, noSecrets{}, nil, func(st *store.Store) kapsync.Store {
		ts = &timedStore{Store: st, visible: map[string][]seen{}, leases: map[string]time.Time{}}
		return ts
	})
	rig.start(b)
	doc := homeDosing(b)
	episode := func(n, rev int) (string, []byte) {
		ep, pt := fmt.Sprintf("ep-8%05d", n), fmt.Sprintf("pt-8%05d", n)
		d := strings.NewReplacer("ep-700001", ep, "pt-700001", pt, "MRN800001", fmt.Sprintf("MRN8%05d", n)).Replace(string(doc))
		out, err := sjson.SetBytes([]byte(d), "patient.name.family", fmt.Sprintf("Bench-r%d", rev))
		if err != nil {
			b.Fatal(err)
		}
		return ep, out
	}

	// Throughput: a burst of new episodes.
	start := time.Now()
	for n := range pushBurst {
		ep, d := episode(n, 0)
		if _, err := rig.intake.Put(ctx, ep, d); err != nil {
			b.Fatal(err)
		}
	}
	waitFor(b, 5*time.Minute, "burst delivered", func() bool { return deliveredAll(b, rig, pushBurst) })
	ts.mu.Lock()
	burstResources, burstTook := ts.resources, ts.last.Sub(start)
	ts.mu.Unlock()

	// Lag: a steady load of revisions.
	type change struct {
		ref     string
		version int64
		at      time.Time
	}
	var changes []change
	tick := time.NewTicker(time.Second / pushRate)
	defer tick.Stop()
	steadyStart, heldBefore := time.Now(), ts.held
	rowsBefore := len(pushRows(b, rig.st))
	for i := 0; time.Since(steadyStart) < pushSteady; i++ {
		<-tick.C
		ep, d := episode(i%pushBurst, 1+i/pushBurst)
		res, err := rig.intake.Put(ctx, ep, d)
		if err != nil {
			b.Fatal(err)
		}
		at := time.Now()
		for _, e := range res.Entries {
			if e.Type == "Patient" {
				changes = append(changes, change{e.Type + "/" + e.ID, e.VersionID, at})
			}
		}
	}
	var lags []time.Duration
	waitFor(b, 2*time.Minute, "steady load delivered", func() bool {
		lags = lags[:0]
		for _, c := range changes {
			v, ok := ts.visibleAt(c.ref, c.version)
			if !ok {
				return false
			}
			lags = append(lags, v.Sub(c.at))
		}
		return true
	})
	ts.mu.Lock()
	held := ts.held - heldBefore
	ts.mu.Unlock()
	var peerTime time.Duration
	rows := pushRows(b, rig.st)
	for _, e := range rows[rowsBefore:] {
		if e.Operation == "POST transaction" {
			peerTime += e.Duration
		}
	}
	slices.Sort(lags)
	b.ReportMetric(float64(burstResources)/burstTook.Seconds(), "resources/s")
	b.ReportMetric(float64(lags[len(lags)/2].Milliseconds()), "lag-p50-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Milliseconds()), "lag-p99-ms")
	b.ReportMetric(100*peerTime.Seconds()/held.Seconds(), "peer-%")
	b.Logf("burst: %d resources of %d episodes in %s; steady: %d changes at %d/s, %d requests, peer %s of %s held",
		burstResources, pushBurst, burstTook.Round(time.Millisecond), len(changes), pushRate, len(rows)-rowsBefore,
		peerTime.Round(time.Millisecond), held.Round(time.Millisecond))
}

// deliveredAll reports whether the first n bench episodes are delivered at
// their current versions.
func deliveredAll(b *testing.B, rig *pushRig, n int) bool {
	for i := range n {
		vs, err := rig.st.EpisodeResources(context.Background(), fmt.Sprintf("ep-8%05d", i))
		if err != nil {
			b.Fatal(err)
		}
		if !done(b, rig.st, vs) {
			return false
		}
	}
	return true
}
