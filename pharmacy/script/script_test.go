package script_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/pharmacy/script"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var sent = time.Date(2026, 3, 24, 12, 30, 0, 0, time.UTC)

func episode(t testing.TB, name string) *kap.Episode {
	t.Helper()
	ep, issues := kap.Decode(kaptest.Example(name))
	if issues != nil {
		t.Fatalf("decode %s: %v", name, issues)
	}
	return ep
}

func envelope(ep *kap.Episode) script.Envelope {
	return script.Envelope{From: ep.CareTeam.Organization.ID, MessageID: script.MessageID("NewRx", ep.Prescriptions[0].ID, 1), SentTime: sent}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s", name, got)
	}
}

func TestNewRxGolden(t *testing.T) {
	t.Parallel()
	for _, name := range kaptest.Examples() {
		ep := episode(t, name)
		got, err := script.NewRx(ep, 0, envelope(ep))
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "newrx-"+name+".xml", got)
	}
}

func TestCancelRxGolden(t *testing.T) {
	t.Parallel()
	ep := episode(t, kaptest.HomeDosing)
	env := envelope(ep)
	env.RelatesToMessageID = env.MessageID
	env.MessageID = script.MessageID("CancelRx", ep.Prescriptions[0].ID, 2)
	got, err := script.CancelRx(ep, 0, env)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "cancelrx-home-dosing.xml", got)
	if _, err := script.CancelRx(ep, 0, envelope(ep)); err == nil {
		t.Error("CancelRx without RelatesToMessageID: no error")
	}
}

func TestParseRoundTrip(t *testing.T) {
	t.Parallel()
	ep := episode(t, kaptest.HomeDosing)
	b, err := script.NewRx(ep, 0, envelope(ep))
	if err != nil {
		t.Fatal(err)
	}
	m, err := script.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Body.Kind() != "NewRx" || m.Header.PrescriberOrderNumber != script.OrderNumber(ep, 0) || len(m.Header.PrescriberOrderNumber) > 35 || m.Header.To.ID != "0612345" {
		t.Errorf("parsed header %+v kind %s", m.Header, m.Body.Kind())
	}
	if err := script.CheckPrescription(m.Body.NewRx); err != nil {
		t.Errorf("CheckPrescription: %v", err)
	}
	med := m.Body.NewRx.MedicationPrescribed
	if med.Substitutions != script.SubstitutionNotAllowed || med.CompoundInformation.CompoundIngredientsLotNotUsed[0].Quantity.Value != "1200" {
		t.Errorf("medication %+v", med)
	}
}

func TestSubstitutionAllowed(t *testing.T) {
	t.Parallel()
	ep := episode(t, kaptest.HomeDosing)
	ep.Prescriptions[0].SubstitutionAllowed = true
	b, err := script.NewRx(ep, 0, envelope(ep))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("<Substitutions>0</Substitutions>")) {
		t.Error("substitutionAllowed did not give Substitutions 0")
	}
}

func TestMessageIDStable(t *testing.T) {
	t.Parallel()
	a := script.MessageID("NewRx", "ep-700001-rx1", 1)
	if a != script.MessageID("NewRx", "ep-700001-rx1", 1) || len(a) > 35 {
		t.Errorf("MessageID %q is not stable or too long", a)
	}
	for _, other := range []string{script.MessageID("NewRx", "ep-700001-rx1", 2), script.MessageID("CancelRx", "ep-700001-rx1", 1), script.MessageID("NewRx", "ep-700001-rx2", 1)} {
		if other == a {
			t.Errorf("MessageID collides: %s", a)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	ep := episode(t, kaptest.HomeDosing)
	good, err := script.NewRx(ep, 0, envelope(ep))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"not xml":         "{}",
		"old version":     strings.ReplaceAll(string(good), `TransactionVersion="2017071"`, `TransactionVersion="10.6"`),
		"no message id":   strings.Replace(string(good), "<MessageID>"+envelope(ep).MessageID+"</MessageID>", "", 1),
		"trailing data":   string(good) + "<x/>",
		"no body kind":    strings.NewReplacer("<NewRx>", "<Other>", "</NewRx>", "</Other>").Replace(string(good)),
		"wrong namespace": strings.ReplaceAll(string(good), script.Namespace, "urn:other"),
	} {
		if _, err := script.Parse([]byte(body)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	m, _ := script.Parse(good)
	m.Body.NewRx.Prescriber.NonVeterinarian.Identification.DEANumber = ""
	if err := script.CheckPrescription(m.Body.NewRx); err == nil || !strings.Contains(err.Error(), "DEANumber") {
		t.Errorf("CheckPrescription without DEA: %v", err)
	}
}

// BenchmarkNewRx measures building one NewRx.
func BenchmarkNewRx(b *testing.B) {
	ep := episode(b, kaptest.HomeDosing)
	env := envelope(ep)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := script.NewRx(ep, 0, env); err != nil {
			b.Fatal(err)
		}
	}
}
