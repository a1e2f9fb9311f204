package mappers_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kapgw/kapgw/fhir/fhirjson"
	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/mappers"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current mapping")

// examples are the episode documents in testdata, by file stem.
var examples = []string{
	"example-home-dosing",
	"example-four-dosings",
	"synthetic-mixed",
	"synthetic-entered-in-error",
	"synthetic-minimal",
}

// loadEpisode reads testdata/<name>.json through the intake decoder (so it
// must be a document the gateway accepts) and the Options a store would pass
// for it: a fixed Recorded time and the document's digest.
func loadEpisode(tb testing.TB, name string) (*kap.Episode, mappers.Options) {
	tb.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		tb.Fatalf("read example %s: %v", name, err)
	}
	ep, issues := kap.Decode(body)
	if len(issues) > 0 {
		tb.Fatalf("example %s is not a document the gateway accepts: %v", name, issues)
	}
	sum := sha256.Sum256(body)
	return ep, mappers.Options{
		SystemBase:     "https://gw.kapgw.test/fhir/",
		Recorded:       time.Date(2026, 8, 20, 12, 0, 0, 0, time.UTC),
		DocumentDigest: hex.EncodeToString(sum[:]),
	}
}

func mapExample(tb testing.TB, name string) []mappers.Resource {
	tb.Helper()
	ep, opts := loadEpisode(tb, name)
	res, err := mappers.Map(ep, opts)
	if err != nil {
		tb.Fatalf("map %s: %v", name, err)
	}
	return res
}

// encodeAll renders resources as an indented JSON array, one resource per
// element, through fhirjson.Marshal as the gateway serves them.
func encodeAll(tb testing.TB, values ...any) []byte {
	tb.Helper()
	var out bytes.Buffer
	out.WriteString("[\n")
	for i, v := range values {
		body, err := fhirjson.Marshal(v)
		if err != nil {
			tb.Fatalf("marshal resource %d: %v", i, err)
		}
		out.WriteString("  ")
		if err := json.Indent(&out, body, "  ", "  "); err != nil {
			tb.Fatalf("indent resource %d: %v", i, err)
		}
		if i < len(values)-1 {
			out.WriteByte(',')
		}
		out.WriteByte('\n')
	}
	out.WriteString("]\n")
	return out.Bytes()
}

func values(res []mappers.Resource) []any {
	out := make([]any, len(res))
	for i, r := range res {
		out[i] = r.Value
	}
	return out
}

// checkGolden compares got with testdata/golden/<name>.json, or rewrites
// it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("write golden %s: %v", path, err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden %s (run go test ./mappers -update): %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the mapping; diff it after go test ./mappers -update and review:\n%s", path, firstDiff(want, got))
	}
}

// firstDiff shows the first differing line, enough to start looking.
func firstDiff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(w) && i < len(g); i++ {
		if w[i] != g[i] {
			return "line " + strconv.Itoa(i+1) + ":\n- " + w[i] + "\n+ " + g[i]
		}
	}
	return "lengths differ: " + strconv.Itoa(len(w)) + " lines golden, " + strconv.Itoa(len(g)) + " lines now"
}

func TestMapGolden(t *testing.T) {
	t.Parallel()
	for _, name := range examples {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkGolden(t, name, encodeAll(t, values(mapExample(t, name))...))
		})
	}
}

func TestInstrumentCodeSystemGolden(t *testing.T) {
	t.Parallel()
	cs := mappers.InstrumentCodeSystem(mappers.Options{SystemBase: "https://gw.kapgw.test/fhir"})
	checkGolden(t, "codesystem-kap-instrument", encodeAll(t, cs))
}

func TestInstrumentCodeSystemDefaultBase(t *testing.T) {
	t.Parallel()
	cs := mappers.InstrumentCodeSystem(mappers.Options{})
	if want := mappers.DefaultSystemBase + "/CodeSystem/kap-instrument"; cs.Url == nil || *cs.Url != want {
		t.Fatalf("url = %v, want %s", cs.Url, want)
	}
}

// TestMapDeterministic maps each example twice; the encodings must match.
func TestMapDeterministic(t *testing.T) {
	t.Parallel()
	for _, name := range examples {
		a := encodeAll(t, values(mapExample(t, name))...)
		b := encodeAll(t, values(mapExample(t, name))...)
		if !bytes.Equal(a, b) {
			t.Fatalf("%s: two mappings differ", name)
		}
	}
}

// TestMapOrder checks the documented order of resource types.
func TestMapOrder(t *testing.T) {
	t.Parallel()
	order := []string{"Patient", "Organization", "Practitioner", "PractitionerRole", "CareTeam", "Condition",
		"EpisodeOfCare", "CarePlan", "Encounter", "Medication", "MedicationRequest", "MedicationAdministration",
		"Observation", "AdverseEvent", "Provenance"}
	rank := make(map[string]int, len(order))
	for i, typ := range order {
		rank[typ] = i
	}
	for _, name := range examples {
		res := mapExample(t, name)
		for i := 1; i < len(res); i++ {
			if rank[res[i-1].Type] > rank[res[i].Type] {
				t.Fatalf("%s: %s after %s", name, res[i].Type, res[i-1].Type)
			}
		}
		if last := res[len(res)-1]; last.Type != "Provenance" {
			t.Fatalf("%s: last resource is %s, want Provenance", name, last.Type)
		}
	}
}

func TestMapProvenanceTargetsEverything(t *testing.T) {
	t.Parallel()
	res := mapExample(t, "example-home-dosing")
	body, err := fhirjson.Marshal(res[len(res)-1].Value)
	if err != nil {
		t.Fatalf("marshal provenance: %v", err)
	}
	var prov struct {
		Target []struct{ Reference string }
	}
	if err := json.Unmarshal(body, &prov); err != nil {
		t.Fatalf("decode provenance: %v", err)
	}
	if len(prov.Target) != len(res)-1 {
		t.Fatalf("provenance targets %d resources, want %d", len(prov.Target), len(res)-1)
	}
	for i, tg := range prov.Target {
		if want := res[i].Type + "/" + res[i].ID; tg.Reference != want {
			t.Fatalf("target %d = %s, want %s", i, tg.Reference, want)
		}
	}
}

func TestMapRefusesDanglingReferences(t *testing.T) {
	t.Parallel()
	ep, opts := loadEpisode(t, "example-home-dosing")
	ep.Sessions[3].Dose.PrescriptionID = "rx-missing"
	if _, err := mappers.Map(ep, opts); !errors.Is(err, mappers.ErrReference) {
		t.Fatalf("dose naming an unknown prescription: err = %v, want ErrReference", err)
	}
	ep, opts = loadEpisode(t, "example-home-dosing")
	ep.Measures[0].SessionID = "s-missing"
	if _, err := mappers.Map(ep, opts); !errors.Is(err, mappers.ErrReference) {
		t.Fatalf("measure naming an unknown session: err = %v, want ErrReference", err)
	}
}

func TestMapRefusesIncompleteOptions(t *testing.T) {
	t.Parallel()
	ep, opts := loadEpisode(t, "synthetic-minimal")
	for _, o := range []mappers.Options{{DocumentDigest: opts.DocumentDigest}, {Recorded: opts.Recorded}} {
		if _, err := mappers.Map(ep, o); !errors.Is(err, mappers.ErrOptions) {
			t.Fatalf("err = %v, want ErrOptions", err)
		}
	}
	if _, err := mappers.Map(nil, opts); !errors.Is(err, mappers.ErrOptions) {
		t.Fatalf("nil episode: err = %v, want ErrOptions", err)
	}
}

// TestMapEmptyEpisodeDoesNotPanic maps a zero episode: not a valid
// document, but the mapping must stay total.
func TestMapEmptyEpisodeDoesNotPanic(t *testing.T) {
	t.Parallel()
	_, opts := loadEpisode(t, "synthetic-minimal")
	res, err := mappers.Map(&kap.Episode{}, opts)
	if err != nil {
		t.Fatalf("map empty episode: %v", err)
	}
	encodeAll(t, values(res)...)
}
