package mappers_test

import (
	"testing"

	"github.com/kapgw/kapgw/fhir/fhirjson"
	"github.com/kapgw/kapgw/mappers"
)

func BenchmarkMap(b *testing.B) {
	ep, opts := loadEpisode(b, "example-home-dosing")
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		res, err := mappers.Map(ep, opts)
		if err != nil {
			b.Fatalf("map: %v", err)
		}
		n = len(res)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "episodes/s")
	b.ReportMetric(float64(n), "resources/episode")
}

func BenchmarkMapAndEncode(b *testing.B) {
	ep, opts := loadEpisode(b, "example-home-dosing")
	b.ReportAllocs()
	for b.Loop() {
		res, err := mappers.Map(ep, opts)
		if err != nil {
			b.Fatalf("map: %v", err)
		}
		for _, r := range res {
			if _, err := fhirjson.Marshal(r.Value); err != nil {
				b.Fatalf("marshal %s: %v", r.Type, err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "episodes/s")
}
