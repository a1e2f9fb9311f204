package nodetool_test

import (
	"path/filepath"
	"testing"

	"github.com/kapgw/kapgw/internal/nodetool"
)

func TestDir(t *testing.T) {
	t.Parallel()
	dir, err := nodetool.Dir("fhir-validate", "validate.mjs")
	if err != nil || filepath.Base(dir) != "fhir-validate" {
		t.Fatalf("Dir: %q, %v", dir, err)
	}
	if _, err := nodetool.Dir("fhir-validate", "no-such-entry.mjs"); err == nil {
		t.Fatal("a missing entry was found")
	}
}
