package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/store"
	"github.com/kapgw/kapgw/mappers"
)

// codes are the Observation codes the seed cycles through; a search for
// one patient and one code matches observations/patients/len(codes).
var codes = [...]string{"44249-1", "69737-5", "89204-2", "70274-6", "89208-3", "71969-0", "72133-2", "59460-6", "75626-2", "8867-4"}

// Seed is what seed writes to --out for run: the ids to load, per server,
// and the partner client run gets its kapgw token as.
type Seed struct {
	Kapgw, Peer Target
	ClientID    string
	KeyFile     string
}

// Target names what the read and the search ask one server for.
type Target struct {
	Patient, Observation, Code string
}

// Paths returns the read and search paths of t, relative to a FHIR base.
func (t Target) Paths() (read, search string) {
	return "/Observation/" + t.Observation, "/Observation?patient=" + t.Patient + "&code=http://loinc.org|" + t.Code + "&_count=20"
}

const seedPatients = 50

func runSeed(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "kapgw SQLite data directory (created)")
	dbURL := fs.String("database-url", "", "kapgw PostgreSQL URL instead of --data-dir")
	peer := fs.String("peer", "", "peer FHIR base URL (tools/fhir-peer), empty to skip")
	out := fs.String("out", "seed.json", "where to write the seed description")
	n := fs.Int("observations", 10_000, "Observations to store in each server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := store.Open(ctx, store.Config{DataDir: *dataDir, DatabaseURL: *dbURL}, time.Now)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	seed := Seed{ClientID: "load-partner", KeyFile: strings.TrimSuffix(*out, ".json") + "-key.pem"}
	if seed.Kapgw, err = seedKapgw(ctx, st, *n); err != nil {
		return err
	}
	if err := registerPartner(ctx, st, seed); err != nil {
		return err
	}
	if *peer != "" {
		if seed.Peer, err = seedPeer(ctx, *peer, *n); err != nil {
			return err
		}
	}
	b, _ := json.MarshalIndent(seed, "", "  ")
	if err := os.WriteFile(*out, b, 0o600); err != nil {
		return fmt.Errorf("write seed: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// seedKapgw stores seedPatients episodes (each gives its patient and the
// data-sharing consent of org-med-1) and n Observations spread over them.
func seedKapgw(ctx context.Context, st *store.Store, n int) (Target, error) {
	in := intake.New(st, time.Now, "")
	doc := kaptest.Example(kaptest.HomeDosing)
	var t Target
	for p := range seedPatients {
		ep, pt := fmt.Sprintf("ep-load%05d", p), fmt.Sprintf("pt-load%05d", p)
		d := bytes.ReplaceAll(bytes.ReplaceAll(doc, []byte("ep-700001"), []byte(ep)), []byte("pt-700001"), []byte(pt))
		if _, err := in.Put(ctx, ep, d); err != nil {
			return t, fmt.Errorf("put episode %s: %w", ep, err)
		}
	}
	var batch []store.Resource
	for i := range n {
		pid := mappers.ID("Patient", fmt.Sprintf("pt-load%05d", i%seedPatients))
		id := fmt.Sprintf("obs-load-%06d", i)
		batch = append(batch, store.Resource{Type: "Observation", ID: id, PatientID: pid, Body: observation(id, pid, i)})
		if i == 0 {
			t = Target{Patient: pid, Observation: id, Code: codes[0]}
		}
		if len(batch) == 500 || i == n-1 {
			if _, err := st.PutResources(ctx, batch); err != nil {
				return t, fmt.Errorf("put observations: %w", err)
			}
			batch = batch[:0]
		}
	}
	return t, nil
}

// observation is the i-th seeded Observation of patient pid (id "" for a
// server-assigned one).
func observation(id, pid string, i int) []byte {
	idField := ""
	if id != "" {
		idField = `"id":"` + id + `",`
	}
	day := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(i/seedPatients) * time.Hour)
	return fmt.Appendf(nil, `{"resourceType":"Observation",%s"status":"final",`+
		`"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"survey"}]}],`+
		`"code":{"coding":[{"system":"http://loinc.org","code":"%s"}]},"subject":{"reference":"Patient/%s"},`+
		`"effectiveDateTime":"%s","valueInteger":%d}`, idField, codes[(i/seedPatients)%len(codes)], pid, day.Format(time.RFC3339), i%27)
}

// registerPartner registers the load client as a partner serving org-med-1
// (the example's medical group) with a budget the load never spends, and
// writes its key.
func registerPartner(ctx context.Context, st *store.Store, s Seed) error {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return err
	}
	jwks, err := auth.PublicJWKS("k1", key)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	c := store.Client{ID: s.ClientID, Name: "load generator", Kind: string(auth.KindPartner), JWKS: jwks,
		Scopes: []string{"system/*.rs"}, Orgs: []string{"org-med-1"}, Rate: 1_000_000}
	if err := st.AddClient(ctx, c); err != nil {
		return fmt.Errorf("register %s: %w", c.ID, err)
	}
	return nil
}

// seedPeer creates seedPatients Patients and n Observations (the same
// bodies, server-assigned ids) in the peer with batch Bundles.
func seedPeer(ctx context.Context, base string, n int) (Target, error) {
	var t Target
	pids := make([]string, seedPatients)
	for p := range seedPatients {
		loc, err := postBatch(ctx, base, [][]byte{[]byte(`{"resourceType":"Patient","active":true}`)})
		if err != nil {
			return t, err
		}
		pids[p] = loc[0]
	}
	var batch [][]byte
	for i := range n {
		batch = append(batch, observation("", pids[i%seedPatients], i))
		if len(batch) == 500 || i == n-1 {
			loc, err := postBatch(ctx, base, batch)
			if err != nil {
				return t, err
			}
			if i < 500 {
				t = Target{Patient: pids[0], Observation: loc[0], Code: codes[0]}
			}
			batch = batch[:0]
		}
	}
	return t, nil
}

// postBatch POSTs resources in one batch Bundle and returns their ids.
func postBatch(ctx context.Context, base string, resources [][]byte) ([]string, error) {
	var b bytes.Buffer
	b.WriteString(`{"resourceType":"Bundle","type":"batch","entry":[`)
	for i, r := range resources {
		if i > 0 {
			b.WriteByte(',')
		}
		var head struct{ ResourceType string }
		_ = json.Unmarshal(r, &head)
		fmt.Fprintf(&b, `{"resource":%s,"request":{"method":"POST","url":"%s"}}`, r, head.ResourceType)
	}
	b.WriteString(`]}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base, &b)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("peer batch: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Entry []struct {
			Response struct{ Status, Location string }
			Resource struct{ ID string }
		}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("peer batch: status %d: %v", resp.StatusCode, err)
	}
	ids := make([]string, len(out.Entry))
	for i, e := range out.Entry {
		ids[i] = e.Resource.ID
		if ids[i] == "" {
			parts := strings.Split(e.Response.Location, "/")
			for j := range parts {
				if parts[j] == "Observation" || parts[j] == "Patient" {
					ids[i] = parts[j+1]
				}
			}
		}
		if ids[i] == "" {
			return nil, fmt.Errorf("peer batch entry %d: %s", i, e.Response.Status)
		}
	}
	return ids, nil
}
