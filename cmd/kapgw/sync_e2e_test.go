package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/sjson"

	"github.com/kapgw/kapgw/internal/fhirpeer"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
)

// syncCmd runs `kapgw sync ARGS` against the gateway's store.
func (g *gateway) syncCmd(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	all := append([]string{"kapgw", "sync"}, args...)
	for i := 0; i+1 < len(g.flags); i++ {
		if g.flags[i] == "--data-dir" || g.flags[i] == "--database-url" {
			all = append(all, g.flags[i], g.flags[i+1])
		}
	}
	if err := run(context.Background(), all, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatalf("kapgw sync %s: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

// TestSyncPushEndToEnd registers a partner with a destination at a real
// FHIR server that is not ours (Medplum's router, on loopback), accepts an
// episode and then a change to it through the API, and checks that the
// peer ends with exactly one copy of every keyed resource, counted by
// identifier, at the latest version, and that kapgw sync status shows it.
func TestSyncPushEndToEnd(t *testing.T) {
	t.Parallel()
	peer := fhirpeer.Start(t)
	g := startGateway(t, "--data-dir", t.TempDir(), "--client-cache", "0s", "--sync-allow-loopback=true")
	clinic := g.as(g.login(t, "clinic-platform", "clinic", clinicScopes, nil))
	g.login(t, "ehr-1", "partner", []string{"system/*.rs"}, []string{"org-thr-12"})
	g.syncCmd(t, "destination", "add", "--partner", "ehr-1", "--url", peer.Base, "--auth", "none",
		"--concurrency", "4", "--rate", "1000/s", "--sync-allow-loopback")

	doc := kaptest.Example("home-dosing")
	id := "ep-700001"
	if resp, body := clinic.do(t, http.MethodPut, "/kap/v1/episodes/"+id, "application/json", doc); resp.StatusCode != http.StatusCreated {
		t.Fatalf("first PUT: status %d, body %s", resp.StatusCode, body)
	}
	want := keyedResources(t, clinic, id)
	waitPeer(t, peer, want, "Okafor")

	changed, err := sjson.SetBytes(doc, "patient.name.family", "Okafor-Changed")
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := clinic.do(t, http.MethodPut, "/kap/v1/episodes/"+id, "application/json", changed); resp.StatusCode != http.StatusOK {
		t.Fatalf("changed PUT: status %d, body %s", resp.StatusCode, body)
	}
	waitPeer(t, peer, keyedResources(t, clinic, id), "Okafor-Changed")

	status := g.syncCmd(t, "status")
	lines := strings.Split(strings.TrimSpace(status), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "ehr-1 ") || !strings.Contains(lines[1], peer.Base) {
		t.Fatalf("sync status:\n%s", status)
	}
	fields := strings.Fields(lines[1])
	if n := len(want); fields[3] != fmt.Sprint(n) || fields[len(fields)-1] != "0" {
		t.Errorf("sync status shows %s resources and %s open dead letters, want %d and 0:\n%s", fields[3], fields[len(fields)-1], n, status)
	}
	if dead := g.syncCmd(t, "dead-letters", "--all"); strings.Count(dead, "\n") != 1 {
		t.Errorf("dead letters:\n%s", dead)
	}
}

// keyedResources returns the identifiers ("Type system|value") of the
// episode's resources that have one: what a partner is sent.
func keyedResources(t *testing.T, g *gateway, id string) map[string]bool {
	t.Helper()
	resp, body := g.do(t, http.MethodGet, "/kap/v1/episodes/"+id+"/fhir", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET bundle: status %d", resp.StatusCode)
	}
	var b struct {
		Entry []struct{ Resource fhirpeer.Resource }
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range b.Entry {
		if k, ok := identKey(e.Resource); ok {
			out[k] = true
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d keyed resources in the episode", len(out))
	}
	return out
}

func identKey(r fhirpeer.Resource) (string, bool) {
	for _, i := range r.Identifier {
		if i.System != "" && i.Value != "" {
			return r.ResourceType + " " + i.System + "|" + i.Value, true
		}
	}
	return "", false
}

// waitPeer polls the peer until it holds exactly one copy of every wanted
// resource and its Patient carries family, then checks there is nothing
// else.
func waitPeer(t *testing.T, peer *fhirpeer.Peer, want map[string]bool, family string) {
	t.Helper()
	types := map[string]bool{}
	for k := range want {
		types[strings.SplitN(k, " ", 2)[0]] = true
	}
	deadline := time.Now().Add(60 * time.Second)
	var problem string
	for time.Now().Before(deadline) {
		if problem = peerProblem(t, peer, types, want, family); problem == "" {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("peer not in the expected state within 60s: %s", problem)
}

// peerProblem says what the peer lacks or has too much of; "" when right.
func peerProblem(t *testing.T, peer *fhirpeer.Peer, types, want map[string]bool, family string) string {
	t.Helper()
	copies := map[string]int{}
	patientFamily := ""
	for typ := range types {
		all, err := peer.All(context.Background(), typ)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range all {
			k, _ := identKey(r)
			copies[k]++
			if typ == "Patient" && bytes.Contains(r.Raw, []byte(`"family":"`+family+`"`)) {
				patientFamily = family
			}
		}
	}
	for k := range want {
		if copies[k] != 1 {
			return fmt.Sprintf("%s: %d copies", k, copies[k])
		}
	}
	for k, n := range copies {
		if !want[k] {
			return fmt.Sprintf("%s (%d copies) not ours", k, n)
		}
	}
	if patientFamily != family {
		return "Patient not at the latest version (family " + family + ")"
	}
	return ""
}

// TestSyncLoopbackRefusedAndReplay checks both locks on loopback: the CLI
// refuses a loopback destination without --sync-allow-loopback, and a
// gateway started without it refuses to connect to one registered with it,
// dead-lettering the delivery at once; a replay is enqueued once only.
func TestSyncLoopbackRefusedAndReplay(t *testing.T) {
	t.Parallel()
	peer := fhirpeer.Start(t)
	g := startGateway(t, "--data-dir", t.TempDir(), "--client-cache", "0s")
	clinic := g.as(g.login(t, "clinic-platform", "clinic", clinicScopes, nil))
	g.login(t, "ehr-1", "partner", []string{"system/*.rs"}, []string{"org-thr-12"})
	var out bytes.Buffer
	err := run(context.Background(), []string{"kapgw", "sync", "destination", "add", "--partner", "ehr-1",
		"--url", peer.Base, "--auth", "none", "--data-dir", g.flags[1]}, func(string) string { return "" }, &out, io.Discard)
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "--url") || !strings.Contains(err.Error(), "--auth none") {
		t.Fatalf("loopback destination without --sync-allow-loopback: %v", err)
	}
	g.syncCmd(t, "destination", "add", "--partner", "ehr-1", "--url", peer.Base, "--auth", "none", "--sync-allow-loopback")

	doc := kaptest.Example("home-dosing")
	if resp, body := clinic.do(t, http.MethodPut, "/kap/v1/episodes/ep-700001", "application/json", doc); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: status %d, body %s", resp.StatusCode, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	var dead string
	for {
		dead = g.syncCmd(t, "dead-letters")
		if strings.Count(dead, "\n") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter within 30s:\n%s", dead)
		}
		time.Sleep(200 * time.Millisecond)
	}
	row := strings.Fields(strings.Split(dead, "\n")[1])
	if row[1] != "ehr-1" || row[2] != "ep-700001" || row[3] != "address" {
		t.Fatalf("dead letter %v, want ehr-1 ep-700001 address", row)
	}
	if all, err := peer.All(context.Background(), "Patient"); err != nil || len(all) != 0 {
		t.Fatalf("peer holds %d patients (%v), want none", len(all), err)
	}
	if got := g.syncCmd(t, "replay", row[0]); !strings.Contains(got, "enqueued") {
		t.Fatalf("replay: %s", got)
	}
	if got := g.syncCmd(t, "replay", row[0]); !strings.Contains(got, "nothing enqueued") {
		t.Fatalf("second replay: %s", got)
	}
	for { // the replayed delivery is refused again: a second dead letter
		if all := g.syncCmd(t, "dead-letters", "--all"); strings.Count(all, "\n") == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replayed delivery not dead-lettered again within 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
