// Package kaptest supports tests of code that receives KAP episode documents:
// the two valid documents of the shared contract, and a catalogue of bad
// documents, each one small defect away from a valid one, with the issue an
// API user should see for it.
package kaptest

import (
	"embed"
	"fmt"
)

// examples holds copies of /work/shared/kap-episode/example-*.json.
//
//go:embed testdata/*.json
var examples embed.FS

// Example names.
const (
	// HomeDosing is an episode with one at-home (telehealth) dosing session
	// with a booster, and one in-person dosing session.
	HomeDosing = "home-dosing"
	// FourDosings is an episode with four dosing sessions, two at home.
	FourDosings = "four-dosings"
)

// Example returns a fresh copy of the valid example document name
// (HomeDosing or FourDosings). It panics on an unknown name: that is a bug in
// the calling test.
func Example(name string) []byte {
	body, err := examples.ReadFile("testdata/" + name + ".json")
	if err != nil {
		panic(fmt.Sprintf("kaptest: no example %q", name))
	}
	return body
}

// Examples returns the names of every valid example.
func Examples() []string {
	return []string{HomeDosing, FourDosings}
}
