package sync_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tidwall/sjson"

	"github.com/kapgw/kapgw/internal/fhirpeer"
	"github.com/kapgw/kapgw/internal/jobs"
	"github.com/kapgw/kapgw/internal/store"
	kapsync "github.com/kapgw/kapgw/internal/sync"
)

type noSecrets struct{}

func (noSecrets) Resolve(context.Context, string) (string, error) {
	return "", fmt.Errorf("no secrets")
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{DataDir: filepath.Join(t.TempDir(), "data")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := jobs.Migrate(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestPushThroughFaults sends many versions of an episode through a proxy
// that fails a third of the requests in every way it knows (500, 429/503
// with Retry-After, slow, dropped, answer lost after the peer committed),
// and checks that the Medplum peer ends with exactly one copy of every
// resource, counted by identifier, at the content of the last version.
func TestPushThroughFaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	peer := fhirpeer.Start(t)
	fault := fhirpeer.NewFault(t, peer.Base)
	fault.Delay = 300 * time.Millisecond
	fault.Random(0.3, 7)

	if err := kapsync.CheckURL(ctx, fault.Base, kapsync.AllowLoopback); err != nil {
		t.Fatal(err)
	}
	if err := kapsync.CheckURL(ctx, fault.Base, kapsync.AllowNone); err == nil {
		t.Fatal("loopback URL accepted without AllowLoopback")
	}
	rig := newPushRig(t, store.Destination{BaseURL: fault.Base, Auth: "none", Concurrency: 4, Rate: 1000,
		Allow: string(kapsync.AllowLoopback)}, noSecrets{}, nil)
	st, q, svc, doc := rig.st, rig.q, rig.intake, homeDosing(t)
	const versions = 12
	var last []byte
	for i := range versions {
		d, err := sjson.SetBytes(doc, "patient.name.family", fmt.Sprintf("Family-%02d", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Put(ctx, "ep-700001", d); err != nil {
			t.Fatalf("put version %d: %v", i, err)
		}
		last = d
		if i == versions/2 {
			if err := q.Start(ctx); err != nil { // deliveries start while changes keep coming
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = q.Stop(context.Background()) })
		}
	}
	_ = last

	want, err := st.EpisodeResources(ctx, "ep-700001")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if done(t, st, want) {
			break
		}
		if time.Now().After(deadline) {
			dl, _ := st.DeadLetters(ctx, true)
			ex, _ := st.Exchanges(ctx, store.ExchangeFilter{Limit: 20})
			t.Fatalf("not delivered in time; faults %v; dead %+v; exchanges %+v", fault.Counts(), dl, ex)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("faults met: %v", fault.Counts())
	requests := 0
	for _, n := range fault.Counts() {
		requests += n
	}
	posts := 0
	for _, e := range pushRows(t, st) {
		if e.Operation == "POST transaction" {
			posts++
		}
	}
	if posts != requests { // every request the partner saw is one exchange row
		t.Errorf("exchange log has %d POST rows for %d requests at the partner", posts, requests)
	}

	counted := 0
	for _, typ := range typesOf(want) {
		all, err := peer.All(ctx, typ)
		if err != nil {
			t.Fatal(err)
		}
		byIdent := map[string]int{}
		for _, r := range all {
			if len(r.Identifier) > 0 {
				byIdent[r.Identifier[0].System+"|"+r.Identifier[0].Value]++
			}
			if typ == "Patient" && !containsFamily(r.Raw, fmt.Sprintf("Family-%02d", versions-1)) {
				t.Errorf("peer Patient/%s is not at the latest version", r.ID)
			}
		}
		for k, n := range byIdent {
			if n != 1 {
				t.Errorf("%s %s: %d copies at the peer", typ, k, n)
			}
		}
		counted += len(all)
	}
	if counted == 0 {
		t.Fatal("nothing at the peer")
	}
	dead, err := st.DeadLetters(ctx, true)
	if err != nil || len(dead) != 0 {
		t.Fatalf("dead letters %v, %v", dead, err)
	}
}

// done reports whether every keyed resource is delivered at its current
// version.
func done(t testing.TB, st *store.Store, want []store.Version) bool {
	t.Helper()
	refs := make([]string, 0, len(want))
	for _, v := range want {
		if v.Type != "Provenance" {
			refs = append(refs, v.Type+"/"+v.ID)
		}
	}
	held, err := st.DeliveredFor(context.Background(), "ehr-1", refs)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range want {
		if v.Type == "Provenance" {
			continue
		}
		if h, ok := held[v.Type+"/"+v.ID]; !ok || h.VersionID < v.VersionID || h.RemoteID == "" {
			return false
		}
	}
	return true
}

func typesOf(vs []store.Version) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range vs {
		if !seen[v.Type] && v.Type != "Provenance" {
			seen[v.Type] = true
			out = append(out, v.Type)
		}
	}
	return out
}

func containsFamily(raw []byte, family string) bool {
	return len(raw) > 0 && (string(raw) != "" && contains(string(raw), `"family":"`+family+`"`))
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
