// Package nodetool finds the repository's small node programs (tools/*)
// that the tests run beside the gateway: the pinned Medplum validator and
// the Medplum FHIR peer.
package nodetool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Dir returns the directory tools/name whose entry file exists, found by
// walking up from the working directory (a package directory when run by
// go test).
func Dir(name, entry string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		tool := filepath.Join(dir, "tools", name)
		if _, err := os.Stat(filepath.Join(tool, entry)); err == nil {
			return tool, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("tools/" + name + "/" + entry + " not found above the working directory")
		}
		dir = parent
	}
}
