package fhir_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kapgw/kapgw/fhir"
	"github.com/kapgw/kapgw/internal/auth"
	"github.com/kapgw/kapgw/internal/exchange"
	"github.com/kapgw/kapgw/internal/intake"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
	"github.com/kapgw/kapgw/internal/secrets"
	"github.com/kapgw/kapgw/internal/store"
)

// exchangeServer starts the API with the exchange log on, and returns it
// with an admin token.
func exchangeServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, store.Config{DataDir: filepath.Join(dir, "data")}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	dev, err := secrets.OpenDevStore(ctx, log, filepath.Join(dir, "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := dev.Cipher(ctx, secrets.ExchangeKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := startAuthed(t, st, fhir.Options{Log: log, Intake: intake.New(st, time.Now, ""), Reader: st, Ready: st,
		MaxBodyBytes: maxBody, Now: time.Now, Exchanges: exchange.New(st, c, log, time.Now)})
	key := registerClient(t, st, "admin-1", auth.KindAdmin, []string{"system/AuditEvent.rs"}, nil, 1000)
	return srv, token(t, srv, "admin-1", key, "system/AuditEvent.rs")
}

type exchangeList struct {
	Exchanges []struct {
		ID         int64
		Kind       string
		Direction  string
		TraceID    string   `json:"trace_id"`
		EpisodeID  string   `json:"episode_id"`
		PartnerID  string   `json:"partner_id"`
		Refs       []string `json:"refs"`
		Status     string
		Code       string
		HasPayload bool `json:"has_payload"`
	}
	Next string
}

func adminGet(t *testing.T, srv *httptest.Server, tok, path string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestExchangeLogRecordsIntakeAndPullsForAdmins(t *testing.T) {
	t.Parallel()
	srv, adminTok := exchangeServer(t)
	doc := kaptest.Example(kaptest.HomeDosing)
	var ep struct{ ID string }
	_ = json.Unmarshal(doc, &ep)
	resp, _ := send(t, srv, http.MethodPut, "/kap/v1/episodes/"+ep.ID, "application/json", doc)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	if resp, _ := send(t, srv, http.MethodGet, "/fhir/r4/Observation/does-not-exist", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("read missing: %d", resp.StatusCode)
	}

	// The clinic client is not an admin.
	if resp, _ := send(t, srv, http.MethodGet, "/admin/v1/exchanges", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("clinic on admin API: %d, want 403", resp.StatusCode)
	}

	resp, body := adminGet(t, srv, adminTok, "/admin/v1/exchanges?episode="+ep.ID)
	var list exchangeList
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	if len(list.Exchanges) != 1 {
		t.Fatalf("episode exchanges: %s", body)
	}
	in := list.Exchanges[0]
	if in.Kind != "intake" || in.Direction != "in" || in.PartnerID != "clinic-platform" || in.Status != "ok" || in.Code != "201" || !in.HasPayload {
		t.Errorf("intake exchange = %+v", in)
	}
	if bytes.Contains(body, []byte("pt-")) || strings.Contains(string(body), "family") {
		t.Errorf("listing shows document content: %s", body)
	}

	resp, body = adminGet(t, srv, adminTok, "/admin/v1/exchanges?status=rejected&partner=clinic-platform")
	list = exchangeList{}
	_ = json.Unmarshal(body, &list)
	if len(list.Exchanges) != 1 || list.Exchanges[0].Kind != "pull" || list.Exchanges[0].Refs[0] != "Observation/does-not-exist" || list.Exchanges[0].Code != "404" {
		t.Errorf("rejected pulls: %d %s", resp.StatusCode, body)
	}

	resp, payload := adminGet(t, srv, adminTok, "/admin/v1/exchanges/"+itoa(in.ID)+"/payload")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(payload, doc) {
		t.Fatalf("payload: %d, %d bytes, want the document", resp.StatusCode, len(payload))
	}
	_, body = adminGet(t, srv, adminTok, "/admin/v1/exchanges?partner=admin-1")
	list = exchangeList{}
	_ = json.Unmarshal(body, &list)
	if len(list.Exchanges) != 1 || list.Exchanges[0].Kind != "admin" || list.Exchanges[0].Refs[0] != "exchange/"+itoa(in.ID) {
		t.Errorf("payload viewing not audited: %s", body)
	}
	if resp, _ := adminGet(t, srv, adminTok, "/admin/v1/exchanges?since=yesterday"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad since: %d", resp.StatusCode)
	}
	_, body = adminGet(t, srv, adminTok, "/admin/v1/exchanges?_count=1")
	list = exchangeList{}
	_ = json.Unmarshal(body, &list)
	if len(list.Exchanges) != 1 || !strings.Contains(list.Next, "before=") {
		t.Errorf("paging: %s", body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
