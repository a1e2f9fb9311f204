package kap_test

import (
	"testing"

	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/internal/kap/kaptest"
)

// FuzzDecode checks that Decode never panics and always answers with either
// an episode or issues, each with a code. Run it with
// go test -run '^$' -fuzz FuzzDecode -fuzztime 2m ./internal/kap/
func FuzzDecode(f *testing.F) {
	for _, name := range kaptest.Examples() {
		f.Add(kaptest.Example(name))
	}
	for _, d := range kaptest.BadDocuments() {
		f.Add(d.Body)
	}
	f.Add([]byte(`{"id":1e999,"sessions":[{"dose":{"mg":-0,"units":1.0e3}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, issues := kap.Decode(data)
		if (e == nil) == (len(issues) == 0) {
			t.Fatalf("Decode returned episode %v with %d issues", e != nil, len(issues))
		}
		for _, is := range issues {
			if is.Code == "" || is.Message == "" {
				t.Fatalf("issue without code or message at %q", is.Expression)
			}
		}
		if e != nil && len(e.Validate()) > 0 {
			t.Fatalf("accepted episode fails Validate")
		}
	})
}
