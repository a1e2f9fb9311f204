package store

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestClientsSQLite and TestClientsPostgres run the client registry,
// assertion id and patient access behaviour on both databases.
func TestClientsSQLite(t *testing.T) {
	t.Parallel()
	testClients(t, openSQLiteTest)
}

func TestClientsPostgres(t *testing.T) {
	t.Parallel()
	testClients(t, openPostgresTest)
}

func testClients(t *testing.T, open opener) {
	t.Helper()
	tests := map[string]func(*testing.T, opener){
		"Registry":      testRegistry,
		"AssertionIDs":  testAssertionIDs,
		"PatientAccess": testPatientAccess,
	}
	for name, test := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open)
		})
	}
}

func testRegistry(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	c := Client{ID: "ehr-a", Name: "EHR A", Kind: "partner", JWKS: []byte(`{"keys":[]}`),
		Scopes: []string{"system/*.rs"}, Orgs: []string{"org-1", "org-2"}, Rate: 10}
	if err := s.AddClient(ctx, c); err != nil {
		t.Fatalf("add: %v", err)
	}
	wantErr(t, "add twice", s.AddClient(ctx, c), ErrExists)
	got, err := s.Client(ctx, "ehr-a")
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if got.Name != "EHR A" || got.Kind != "partner" || string(got.JWKS) != `{"keys":[]}` || got.JWKSURL != "" ||
		!slices.Equal(got.Scopes, c.Scopes) || !slices.Equal(got.Orgs, c.Orgs) || got.Rate != 10 || got.Disabled || got.Version != 1 {
		t.Fatalf("read back %+v", got)
	}
	if err := s.SetClientKeys(ctx, "ehr-a", nil, "https://ehr.example/jwks"); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if err := s.SetClientDisabled(ctx, "ehr-a", true); err != nil {
		t.Fatalf("disable: %v", err)
	}
	wantErr(t, "disable unknown", s.SetClientDisabled(ctx, "nobody", true), ErrNotFound)
	_, err = s.Client(ctx, "nobody")
	wantErr(t, "read unknown", err, ErrNotFound)
	all, err := s.Clients(ctx)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(all) != 1 || all[0].JWKS != nil || all[0].JWKSURL != "https://ehr.example/jwks" || !all[0].Disabled || all[0].Version != 3 {
		t.Fatalf("list %+v", all)
	}
}

func testAssertionIDs(t *testing.T, open opener) {
	ctx := context.Background()
	clk := newClock()
	s := migrated(t, open, clk.now)
	exp := clk.last().Add(time.Minute)
	if err := s.UseAssertionID(ctx, "ehr-a", "j1", exp); err != nil {
		t.Fatalf("first use: %v", err)
	}
	wantErr(t, "replay", s.UseAssertionID(ctx, "ehr-a", "j1", exp), ErrReplay)
	if err := s.UseAssertionID(ctx, "ehr-b", "j1", exp); err != nil {
		t.Fatalf("same jti, other client: %v", err)
	}
	// Once expired, the id is forgotten (the assertion itself is refused by
	// its exp long before).
	if err := s.UseAssertionID(ctx, "ehr-a", "j2", clk.last()); err != nil {
		t.Fatalf("use j2: %v", err)
	}
	if err := s.UseAssertionID(ctx, "ehr-a", "j2", clk.last().Add(time.Minute)); err != nil {
		t.Fatalf("reuse of an expired id: %v", err)
	}
}

func testPatientAccess(t *testing.T, open opener) {
	ctx := context.Background()
	s := migrated(t, open, newClock().now)
	signed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := change(nil, res("Patient", "p1", "p1", "a"))
	c.Access = []PatientAccess{{PatientID: "p1", OrgID: "org-1", SharingFrom: &signed}, {PatientID: "p1", OrgID: "org-2", SharingFrom: &signed}}
	apply(t, s, "e1", c)
	revoked := signed.Add(time.Hour)
	c = change(nil, res("Patient", "p1", "p1", "b"))
	c.Access = []PatientAccess{{PatientID: "p1", OrgID: "org-1", SharingFrom: &signed, SharingUntil: &revoked}}
	apply(t, s, "e1", c)

	rs, err := s.drv.query(ctx, `SELECT org_id, sharing_from, sharing_until FROM patient_access WHERE episode_id = $1`, "e1")
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	defer rs.Close()
	var got []string
	for rs.Next() {
		var org string
		var from, until *int64
		if err := rs.Scan(&org, &from, &until); err != nil {
			t.Fatalf("scan: %v", err)
		}
		if from == nil || *from != signed.UnixMilli() || until == nil || *until != revoked.UnixMilli() {
			t.Fatalf("row %s: from %v until %v", org, from, until)
		}
		got = append(got, org)
	}
	if !slices.Equal(got, []string{"org-1"}) {
		t.Fatalf("rows after the second document: %v, want only org-1", got)
	}
}
