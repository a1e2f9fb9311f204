package sync_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/fhirpeer"
	"github.com/kapgw/kapgw/internal/store"
	kapsync "github.com/kapgw/kapgw/internal/sync"
)

// TestConflicts answers the first transactions of a delivery with a 409 or
// 412 (on the whole Bundle or on its entries) and checks the destination's
// rule: resend re-reads and sends once more, and the Medplum peer ends with
// every resource; a second conflict, or the rule review, sends the
// delivery to review (a dead letter with reason review and the status).
// Each request is in the exchange log with its class.
func TestConflicts(t *testing.T) {
	t.Parallel()
	peer := fhirpeer.Start(t)
	cases := []struct {
		name       string
		rule       string
		script     []fhirpeer.Action
		wantDead   int    // dead letters with reason review
		wantCode   string // the conflict's status in the log
		wantPassed int    // requests that reached the peer, at least
	}{
		{"409 resend", "resend", []fhirpeer.Action{fhirpeer.Conflict409}, 0, "409", 1},
		{"412 resend", "resend", []fhirpeer.Action{fhirpeer.Precondition412}, 0, "412", 1},
		{"entry 409 resend", "", []fhirpeer.Action{fhirpeer.EntryConflict}, 0, "409", 1},
		{"409 twice", "resend", []fhirpeer.Action{fhirpeer.Conflict409, fhirpeer.Conflict409}, 1, "409", 0},
		{"409 review", "review", []fhirpeer.Action{fhirpeer.Conflict409}, 1, "409", 0},
		{"412 review", "review", []fhirpeer.Action{fhirpeer.Precondition412}, 1, "412", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			fault := fhirpeer.NewFault(t, peer.Base)
			fault.Script(tc.script...)
			rig := newPushRig(t, store.Destination{BaseURL: fault.Base, Auth: "none", Concurrency: 2, Rate: 1000,
				Allow: string(kapsync.AllowLoopback), OnConflict: tc.rule}, noSecrets{}, nil)
			doc := homeDosing(t)
			if _, err := rig.intake.Put(ctx, "ep-700001", doc); err != nil {
				t.Fatal(err)
			}
			want, err := rig.st.EpisodeResources(ctx, "ep-700001")
			if err != nil {
				t.Fatal(err)
			}
			rig.start(t)
			settled := func() bool {
				dead, err := rig.st.DeadLetters(ctx, true)
				if err != nil {
					t.Fatal(err)
				}
				return len(dead) > 0 || done(t, rig.st, want)
			}
			waitFor(t, 20*time.Second, "delivered or dead-lettered", settled)
			time.Sleep(300 * time.Millisecond) // a wrong second delivery would show now

			dead, err := rig.st.DeadLetters(ctx, true)
			if err != nil {
				t.Fatal(err)
			}
			review := slices.DeleteFunc(slices.Clone(dead), func(d store.DeadLetter) bool { return d.Reason != "review" || d.Code != tc.wantCode })
			if len(dead) != tc.wantDead || len(review) != tc.wantDead {
				t.Errorf("dead letters %+v, want %d with reason review and code %s", dead, tc.wantDead, tc.wantCode)
			}
			if got := fault.Counts()[fhirpeer.Pass]; got < tc.wantPassed || (tc.wantPassed == 0 && got != 0) {
				t.Errorf("%d requests reached the peer, want %d or more (none for review)", got, tc.wantPassed)
			}
			rows := pushRows(t, rig.st)
			conflicts := slices.DeleteFunc(slices.Clone(rows), func(e store.Exchange) bool { return e.ErrorClass != "conflict" })
			if len(conflicts) != len(tc.script) {
				t.Fatalf("exchange log has %d conflict rows for %d conflicts: %+v", len(conflicts), len(tc.script), rows)
			}
			c := conflicts[0]
			if c.Code != tc.wantCode || c.Status != "error" || c.Attempt != 1 || !c.HasPayload || len(c.Refs) == 0 || c.Direction != "out" {
				t.Errorf("conflict row %+v", c)
			}
			checkPayload(t, rig, c)
		})
	}
}

// checkPayload reads a push row's payload as the admin API would: it is
// ciphertext at rest and decrypts to the transaction Bundle whose entries
// are the row's references.
func checkPayload(t *testing.T, rig *pushRig, e store.Exchange) {
	t.Helper()
	ctx := context.Background()
	stored, err := rig.st.ExchangeByID(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored.Payload, "resourceType") || stored.Payload == "" {
		t.Fatalf("payload of exchange %d is not ciphertext", e.ID)
	}
	plain, err := rig.xlog.Payload(ctx, e.ID, "admin-1")
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Type  string `json:"type"`
		Entry []struct {
			Request struct{ Method, URL string } `json:"request"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(plain, &b); err != nil {
		t.Fatal(err)
	}
	if b.Type != "transaction" || len(b.Entry) != len(e.Refs) {
		t.Fatalf("payload is a %q Bundle of %d entries for %d refs", b.Type, len(b.Entry), len(e.Refs))
	}
	for i, r := range e.Refs {
		typ, _, _ := strings.Cut(r, "/")
		if en := b.Entry[i].Request; en.Method != "PUT" || !strings.HasPrefix(en.URL, typ+"?identifier=") {
			t.Errorf("entry %d request %s %s for %s", i, en.Method, en.URL, r)
		}
	}
}
