package pharmacy_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/pharmacy"
)

// fill is one fill reported by the pharmacy: its refill number and when it
// was dispensed, in days after the first fill.
type fill struct {
	refill int
	day    float64
}

// TestRefills: the home-dosing prescription (12 troches, 2 per session,
// 30 days, 2 refills) lasts 25 days at the earliest (6 sessions, one
// every 5 days, the first on the day of dispensing). A refill dispensed
// sooner after the previous fill, or beyond the 2 refills, writes a
// warning Task; refills on time write none. Every event comes twice and
// each fill's events last first, as a faulty pharmacy would send them.
func TestRefills(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fills []fill
		want  []string // finding codes of the refill Task, none: no Task
		steps []string // the timeline's warning steps, code and detail, once each
	}{
		{"on time", []fill{{0, 0}, {1, 25}, {2, 51}}, nil, nil},
		{"early", []fill{{0, 0}, {1, 24}}, []string{pharmacy.CodeEarlyRefill}, []string{"early-refill refill 1"}},
		{"second early", []fill{{0, 0}, {1, 30}, {2, 40}}, []string{pharmacy.CodeEarlyRefill}, []string{"early-refill refill 2"}},
		{"beyond refills", []fill{{0, 0}, {1, 30}, {2, 60}, {3, 90}}, []string{pharmacy.CodeRefillNotAuthorized}, []string{"refill-not-authorized refill 3"}},
		{"early twice and beyond", []fill{{0, 0}, {1, 10}, {2, 60}, {3, 61}},
			[]string{pharmacy.CodeEarlyRefill, pharmacy.CodeRefillNotAuthorized, pharmacy.CodeEarlyRefill},
			[]string{"early-refill refill 1", "refill-not-authorized refill 3", "early-refill refill 3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t, "sqlite")
			order := orderOf(t, st)
			first := time.Date(2026, 3, 26, 12, 0, 0, 0, time.UTC)
			for _, f := range tc.fills {
				at := first.Add(time.Duration(f.day * float64(24*time.Hour)))
				cb := callbacks(t, st, at)
				for _, status := range []string{pharmacy.FillDelivered, pharmacy.FillShipped, pharmacy.FillDispensed} {
					e := pharmacy.Event{EventID: order + status + string(rune('a'+f.refill)), Type: pharmacy.EventRxFill, FillStatus: status,
						PrescriberOrderNumber: order, Quantity: 12, Refill: f.refill, OccurredAt: at}
					for range 2 {
						if err := deliver(t, cb, at, e); err != nil {
							t.Fatalf("refill %d %s: %v", f.refill, status, err)
						}
					}
				}
				md, err := st.Read(context.Background(), "MedicationDispense", pharmacy.FillDispenseID(order, f.refill))
				if err != nil {
					t.Fatal(err)
				}
				if wantType := map[bool]string{true: "FF", false: "RF"}[f.refill == 0]; gjson.GetBytes(md.Body, "type.coding.0.code").String() != wantType {
					t.Errorf("dispense of refill %d: type %s", f.refill, gjson.GetBytes(md.Body, "type"))
				}
			}
			v, err := st.Read(context.Background(), "Task", pharmacy.TaskID(order, pharmacy.TaskRefill))
			if tc.want == nil {
				if !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("refill Task %s, %v: want none", v.Body, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, in := range gjson.GetBytes(v.Body, "input.#.type.text").Array() {
				got = append(got, in.String())
			}
			var want []string
			for _, c := range tc.want {
				want = append(want, "warn: "+c)
			}
			if !slices.Equal(got, want) || gjson.GetBytes(v.Body, "status").String() != "requested" || gjson.GetBytes(v.Body, "businessStatus.text").String() != "warning" {
				t.Errorf("refill Task %s, want findings %v", v.Body, want)
			}
			// Written once per refill that adds findings, whatever the repeats.
			refills := map[string]bool{}
			for _, s := range tc.steps {
				refills[s[strings.Index(s, " ")+1:]] = true
			}
			if v.VersionID != int64(len(refills)) {
				t.Errorf("refill Task has %d versions, want %d: repeated events must not rewrite it", v.VersionID, len(refills))
			}
			// The timeline names each refill and its warnings.
			steps, err := st.RxTimeline(context.Background(), order)
			if err != nil {
				t.Fatal(err)
			}
			var warned []string
			for _, s := range steps {
				if s.Step == pharmacy.StepWarned {
					warned = append(warned, s.Code+" "+s.Detail)
				}
			}
			if !slices.Equal(warned, tc.steps) {
				t.Errorf("timeline warnings %q, want %q", warned, tc.steps)
			}
			fhirvalid.New(t).Check(t, v.Body)
		})
	}
}

// TestFillDispensesValidate: the first fill and a refill are valid FHIR.
func TestFillDispensesValidate(t *testing.T) {
	t.Parallel()
	st := openStore(t, "sqlite")
	order := orderOf(t, st)
	at := time.Date(2026, 3, 26, 12, 0, 0, 0, time.UTC)
	v := fhirvalid.New(t)
	for refill := range 2 {
		e := pharmacy.Event{EventID: "e" + string(rune('0'+refill)), Type: pharmacy.EventRxFill, FillStatus: pharmacy.FillShipped, PrescriberOrderNumber: order,
			Quantity: 12, Refill: refill, Carrier: "UPS", TrackingNumber: "1Z999AA1012345678" + string(rune('0'+refill)), OccurredAt: at}
		if err := deliver(t, callbacks(t, st, at), at, e); err != nil {
			t.Fatal(err)
		}
		md, err := st.Read(context.Background(), "MedicationDispense", pharmacy.FillDispenseID(order, refill))
		if err != nil {
			t.Fatal(err)
		}
		v.Check(t, md.Body)
	}
	bad := pharmacy.Event{EventID: "e9", Type: pharmacy.EventRxFill, FillStatus: pharmacy.FillShipped, PrescriberOrderNumber: order, Refill: -1, OccurredAt: at}
	if err := deliver(t, callbacks(t, st, at), at, bad); !errors.Is(err, pharmacy.ErrCallbackInvalid) {
		t.Errorf("negative refill number: %v", err)
	}
}
