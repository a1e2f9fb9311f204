package mappers_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/kapgw/kapgw/fhir/fhirjson"
	"github.com/kapgw/kapgw/internal/fhirvalid"
	"github.com/kapgw/kapgw/mappers"
)

// TestGoldenResourcesValidate checks every resource in every golden file
// with the independent validator (Medplum, pinned in tools/fhir-validate):
// base R4 plus each profile the resource claims that the validator ships.
func TestGoldenResourcesValidate(t *testing.T) {
	t.Parallel()
	v := fhirvalid.New(t)
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var resources []json.RawMessage
		if err := json.Unmarshal(body, &resources); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		raw := make([][]byte, len(resources))
		for i, r := range resources {
			raw[i] = r
		}
		t.Run(filepath.Base(f), func(t *testing.T) { v.Check(t, raw...) })
	}
}

// TestRetiredResourcesValidate checks that the retired copies Retire makes
// (every episode-scoped type) are still valid FHIR.
func TestRetiredResourcesValidate(t *testing.T) {
	t.Parallel()
	v := fhirvalid.New(t)
	for _, name := range examples {
		retired := mappers.Retire(mapExample(t, name), nil)
		if len(retired) == 0 {
			t.Fatalf("%s: nothing retired", name)
		}
		raw := make([][]byte, 0, len(retired))
		for _, r := range retired {
			b, err := fhirjson.Marshal(r.Value)
			if err != nil {
				t.Fatalf("%s %s/%s: %v", name, r.Type, r.ID, err)
			}
			raw = append(raw, b)
		}
		v.Check(t, raw...)
	}
}
