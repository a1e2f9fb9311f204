package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchEpisode builds the change for synthetic episode n, each resource
// with a body of about 1 KB.
func benchEpisode(n int) EpisodeChange {
	// The shape of a synthetic KAP episode: about 40 resources, two
	// Practitioners and an Organization shared by every episode.
	benchTypes := []struct {
		typ    string
		count  int
		shared bool
	}{
		{"Patient", 1, false}, {"Practitioner", 2, true}, {"Organization", 1, true},
		{"EpisodeOfCare", 1, false}, {"CarePlan", 1, false}, {"CareTeam", 1, false},
		{"Condition", 2, false}, {"Consent", 2, false}, {"Encounter", 10, false},
		{"MedicationRequest", 4, false}, {"MedicationAdministration", 6, false},
		{"Observation", 8, false}, {"QuestionnaireResponse", 2, false},
	}
	pat := fmt.Sprintf("pat-%d", n)
	padding := strings.Repeat("x", 900)
	var rs []Resource
	for _, bt := range benchTypes {
		for i := range bt.count {
			id, patientID := fmt.Sprintf("%s-%d-%d", strings.ToLower(bt.typ), n, i), pat
			if bt.shared {
				id, patientID = fmt.Sprintf("%s-shared-%d", strings.ToLower(bt.typ), i), ""
			}
			if bt.typ == "Patient" {
				id = pat
			}
			rs = append(rs, res(bt.typ, id, patientID, padding))
		}
	}
	return change(nil, rs...)
}

func BenchmarkApplyEpisode(b *testing.B) {
	for name, open := range map[string]opener{"sqlite": openSQLiteTest, "postgres": openPostgresTest} {
		b.Run(name, func(b *testing.B) {
			s := migrated(b, open, time.Now)
			apply(b, s, "warm-up", benchEpisode(-1))
			n := 0
			for b.Loop() {
				apply(b, s, fmt.Sprint("ep-", n), benchEpisode(n))
				n++
			}
			b.ReportMetric(float64(n*len(benchEpisode(0).Resources))/b.Elapsed().Seconds(), "resources/s")
		})
	}
}

func BenchmarkRead(b *testing.B) {
	for name, open := range map[string]opener{"sqlite": openSQLiteTest, "postgres": openPostgresTest} {
		b.Run(name, func(b *testing.B) {
			s := migrated(b, open, time.Now)
			var rs []Resource
			for n := range 10 {
				c := benchEpisode(n)
				apply(b, s, fmt.Sprint("ep-", n), c)
				rs = append(rs, c.Resources...)
			}
			ctx := context.Background()
			i := 0
			for b.Loop() {
				r := rs[i%len(rs)]
				if _, err := s.Read(ctx, r.Type, r.ID); err != nil {
					b.Fatalf("read %s/%s: %v", r.Type, r.ID, err)
				}
				i++
			}
		})
	}
}
