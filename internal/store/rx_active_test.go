package store

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// TestPatientPrescriptionsSQLite and TestPatientPrescriptionsPostgres: in
// an episode's transaction, the patient's MedicationRequests and
// Medications of other episodes are returned, current bodies included, and
// neither the episode's own, nor another patient's, nor one of no episode.
func TestPatientPrescriptionsSQLite(t *testing.T) {
	t.Parallel()
	testPatientPrescriptions(t, openSQLiteTest)
}

func TestPatientPrescriptionsPostgres(t *testing.T) {
	t.Parallel()
	testPatientPrescriptions(t, openPostgresTest)
}

func testPatientPrescriptions(t *testing.T, open opener) {
	t.Helper()
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	apply := func(episode string, after AfterWriteFunc, rs ...Resource) {
		t.Helper()
		c := change(nil, rs...)
		if _, err := s.ApplyEpisodeTx(ctx, episode, func([]byte, string) (EpisodeChange, error) { return c, nil }, after); err != nil {
			t.Fatal(err)
		}
	}
	apply("ep1", nil, res("Patient", "pat1", "pat1", "p"), res("MedicationRequest", "mr-a", "pat1", "v1"), res("Medication", "med-a", "pat1", "m"))
	apply("ep1", nil, res("Patient", "pat1", "pat1", "p"), res("MedicationRequest", "mr-a", "pat1", "v2"), res("Medication", "med-a", "pat1", "m"))
	apply("ep3", nil, res("Patient", "pat2", "pat2", "p"), res("MedicationRequest", "mr-c", "pat2", "other patient"))
	// A resource of no episode (pulled from a partner, written by a
	// callback) is not an episode's prescription.
	if _, err := s.PutResources(ctx, []Resource{res("MedicationRequest", "mr-x", "pat1", "partner copy")}); err != nil {
		t.Fatal(err)
	}
	var got []Resource
	apply("ep2", func(ctx context.Context, tx Tx, _ ApplyResult) error {
		var err error
		got, err = s.PatientPrescriptionsTx(ctx, tx, "pat1", "ep2")
		return err
	}, res("Patient", "pat1", "pat1", "p"), res("MedicationRequest", "mr-b", "pat1", "own"))
	var names []string
	for _, r := range got {
		names = append(names, r.Type+"/"+r.ID)
	}
	if want := []string{"Medication/med-a", "MedicationRequest/mr-a"}; !slices.Equal(names, want) {
		t.Fatalf("got %q, want %q", names, want)
	}
	if !strings.Contains(string(got[1].Body), "<div>v2</div>") {
		t.Errorf("mr-a body %s, want the current version", got[1].Body)
	}
}
