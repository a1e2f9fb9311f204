package sync_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
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
	if ok && !strings.Contains(patientID, "/") { // a patient's lease, not a shared resource's
		s.mu.Lock()
		s.leases[holder] = time.Now()
		s.mu.Unlock()
	}
	return ok, err
}

func (s *timedStore) ReleaseLease(ctx context.Context, partnerID, patientID, holder string) error {
	s.mu.Lock()
	if at, ok := s.leases[holder]; ok && !strings.Contains(patientID, "/") {
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

// BenchmarkPush measures push on SQLite with the queue polling as kapgw
// serve's does (River's default, 1s): throughput (resources/s) delivering
// pushBurst new episodes put at once, then the lag from intake to visible
// at the partner (p50/p99) under a steady load of pushRate changes per
// second for pushSteady, and the share of delivery time spent in the
// partner's round trips (measured at the transport) over the time
// deliveries held their leases. The partners are the Medplum peer and an
// echo partner that answers every transaction at once, which shows the
// gateway's own ceiling. Both on loopback; run with -benchtime=1x:
//
//	go test ./internal/sync -run '^$' -bench BenchmarkPush -benchtime=1x
func BenchmarkPush(b *testing.B) {
	b.Run("peer=medplum", func(b *testing.B) {
		for range b.N {
			pushFigures(b, fhirpeer.Start(b).Base)
		}
	})
	b.Run("peer=echo", func(b *testing.B) {
		for range b.N {
			pushFigures(b, startEcho(b, 0).url)
		}
	})
}

// timedTransport sums the time spent in round trips to the partner.
type timedTransport struct {
	next  http.RoundTripper
	mu    gosync.Mutex
	total time.Duration
}

func (t *timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	if err == nil {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body, err = io.NopCloser(bytes.NewReader(body)), rerr
	}
	t.mu.Lock()
	t.total += time.Since(start)
	t.mu.Unlock()
	return resp, err
}

func (t *timedTransport) spent() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

const (
	pushBurst  = 16
	pushRate   = 2 // changes per second
	pushSteady = 20 * time.Second
)

func pushFigures(b *testing.B, base string) {
	ctx := context.Background()
	var ts *timedStore
	rig := newPushRig(b, store.Destination{BaseURL: base, Auth: "none", Concurrency: 4, Rate: 1000,
		Allow: string(kapsync.AllowLoopback)}, noSecrets{}, nil, withPoll(0), withStore(func(st *store.Store) kapsync.Store {
		ts = &timedStore{Store: st, visible: map[string][]seen{}, leases: map[string]time.Time{}}
		return ts
	}))
	tt := &timedTransport{}
	rig.worker.WithTransport(func(next http.RoundTripper) http.RoundTripper { tt.next = next; return tt })
	rig.start(b)
	doc := homeDosing(b)

	// Throughput: a burst of new episodes.
	start := time.Now()
	for n := range pushBurst {
		ep, d := benchEpisode(b, doc, n, 0)
		if _, err := rig.intake.Put(ctx, ep, d); err != nil {
			b.Fatal(err)
		}
	}
	waitFor(b, 5*time.Minute, "burst delivered", func() bool { return deliveredAll(b, rig, pushBurst) })
	ts.mu.Lock()
	burstResources, burstTook, burstHeld := ts.resources, ts.last.Sub(start), ts.held
	ts.mu.Unlock()
	burstPeer := tt.spent()

	// Lag: a steady load of revisions.
	rowsBefore := len(pushRows(b, rig.st))
	lags := steadyLags(b, rig, ts, doc)
	ts.mu.Lock()
	held := ts.held - burstHeld
	ts.mu.Unlock()
	peerTime := tt.spent() - burstPeer
	rows := pushRows(b, rig.st)
	b.ReportMetric(float64(burstResources)/burstTook.Seconds(), "resources/s")
	b.ReportMetric(float64(lags[len(lags)/2].Milliseconds()), "lag-p50-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Milliseconds()), "lag-p99-ms")
	b.ReportMetric(100*burstPeer.Seconds()/burstHeld.Seconds(), "burst-peer-%")
	b.ReportMetric(100*peerTime.Seconds()/held.Seconds(), "steady-peer-%")
	b.Logf("burst: %d resources of %d episodes in %s, peer %s of %s held; steady: %d changes at %d/s, %d exchange rows, peer %s of %s held",
		burstResources, pushBurst, burstTook.Round(time.Millisecond), burstPeer.Round(time.Millisecond), burstHeld.Round(time.Millisecond),
		len(lags), pushRate, len(rows)-rowsBefore, peerTime.Round(time.Millisecond), held.Round(time.Millisecond))
}

// benchEpisode is revision rev of bench episode n: its own episode,
// patient and MRN, the family name changing with the revision.
func benchEpisode(b *testing.B, doc []byte, n, rev int) (string, []byte) {
	b.Helper()
	ep, pt := fmt.Sprintf("ep-8%05d", n), fmt.Sprintf("pt-8%05d", n)
	d := strings.NewReplacer("ep-700001", ep, "pt-700001", pt, "MRN800001", fmt.Sprintf("MRN8%05d", n)).Replace(string(doc))
	out, err := sjson.SetBytes([]byte(d), "patient.name.family", fmt.Sprintf("Bench-r%d", rev))
	if err != nil {
		b.Fatal(err)
	}
	return ep, out
}

// steadyLags puts pushRate revisions a second for pushSteady, round-robin
// over the burst's episodes, and returns, sorted, each one's lag from the
// intake's return to its Patient version being visible at the partner.
func steadyLags(b *testing.B, rig *pushRig, ts *timedStore, doc []byte) []time.Duration {
	b.Helper()
	type change struct {
		ref     string
		version int64
		at      time.Time
	}
	var changes []change
	tick := time.NewTicker(time.Second / pushRate)
	defer tick.Stop()
	for i, start := 0, time.Now(); time.Since(start) < pushSteady; i++ {
		<-tick.C
		ep, d := benchEpisode(b, doc, i%pushBurst, 1+i/pushBurst)
		res, err := rig.intake.Put(context.Background(), ep, d)
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
	slices.Sort(lags)
	return lags
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
