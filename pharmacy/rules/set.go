// Package rules decides whether a ketamine prescription may be sent to the
// compounding pharmacy. The limits come from a dated, versioned rule set
// (an embedded JSON file per version, named for its effective date) so that
// a change in the law, such as the end of the DEA telehealth flexibilities,
// is a new data file rather than new code.
//
// Findings name a rule code, a severity and the field of the episode
// document at fault; they never carry document values, so they may be
// logged, stored in a FHIR Task and returned to the clinic.
package rules

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"time"
)

//go:embed *.json
var files embed.FS

const day = "2006-01-02"

// Set is one version of the prescribing rules, in force from EffectiveFrom
// until the next version's EffectiveFrom.
type Set struct {
	// Version names the set; it is its effective date.
	Version       string `json:"version"`
	EffectiveFrom string `json:"effectiveFrom"`
	// Source says where the limits come from.
	Source string `json:"source"`
	// MinPatientAgeYears is the youngest a patient may be on writtenAt.
	MinPatientAgeYears int `json:"minPatientAgeYears"`
	// MaxRefills is the Schedule III refill limit (21 CFR 1306.22).
	MaxRefills int `json:"maxRefills"`
	// FillWindowMonths is how long after writtenAt a Schedule III
	// prescription may still be filled, and therefore sent.
	FillWindowMonths int `json:"fillWindowMonths"`
	// TelehealthPrescribingUntil is the last day (a full date) a controlled
	// substance may be prescribed without an in-person medical evaluation.
	TelehealthPrescribingUntil string `json:"telehealthPrescribingUntil"`
	// DefaultDosingIntervalDays is the shortest gap between dosing sessions
	// assumed when the episode has fewer than two for the prescription.
	DefaultDosingIntervalDays int `json:"defaultDosingIntervalDays"`
	// UnitsPerDoseSig finds the units per dose in a sig when no dosing
	// session records them; its first group is the count.
	UnitsPerDoseSig string `json:"unitsPerDoseSig"`
	// Interactions are drug classes from partner records that warn.
	Interactions []Interaction `json:"interactions"`

	from     time.Time
	teleEnd  time.Time
	unitsSig *regexp.Regexp
}

// Interaction is a class of medications that interacts with ketamine.
type Interaction struct {
	Class   string   `json:"class"`
	Message string   `json:"message"`
	RxNorm  []string `json:"rxnorm"`
	Names   []string `json:"names"`
}

// Sets returns every embedded rule set, oldest first.
func Sets() ([]*Set, error) {
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		return nil, fmt.Errorf("list rule sets: %w", err)
	}
	sets := make([]*Set, 0, len(names))
	for _, name := range names {
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read rule set %s: %w", name, err)
		}
		s, err := Parse(b)
		if err != nil {
			return nil, fmt.Errorf("rule set %s: %w", name, err)
		}
		sets = append(sets, s)
	}
	slices.SortFunc(sets, func(a, b *Set) int { return a.from.Compare(b.from) })
	return sets, nil
}

// For returns the rule set in force at t: the one with the latest
// EffectiveFrom not after t.
func For(t time.Time) (*Set, error) {
	sets, err := Sets()
	if err != nil {
		return nil, err
	}
	return Pick(sets, t)
}

// Pick returns the set of sets (oldest first, as Sets returns them) in
// force at t, so that callers load the sets once.
func Pick(sets []*Set, t time.Time) (*Set, error) {
	var in *Set
	for _, s := range sets {
		if !s.from.After(t) {
			in = s
		}
	}
	if in == nil {
		return nil, fmt.Errorf("no rule set in force at %s", t.UTC().Format(day))
	}
	return in, nil
}

// Parse reads and checks one rule set.
func Parse(b []byte) (*Set, error) {
	var s Set
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	var err error
	if s.from, err = time.Parse(day, s.EffectiveFrom); err != nil {
		return nil, fmt.Errorf("effectiveFrom: %w", err)
	}
	end, err := time.Parse(day, s.TelehealthPrescribingUntil)
	if err != nil {
		return nil, fmt.Errorf("telehealthPrescribingUntil: %w", err)
	}
	s.teleEnd = end.AddDate(0, 0, 1) // the whole last day is allowed
	if s.unitsSig, err = regexp.Compile(s.UnitsPerDoseSig); err != nil {
		return nil, fmt.Errorf("unitsPerDoseSig: %w", err)
	}
	if s.MaxRefills < 0 || s.FillWindowMonths <= 0 || s.DefaultDosingIntervalDays <= 0 || s.unitsSig.NumSubexp() < 1 {
		return nil, fmt.Errorf("limits out of range")
	}
	return &s, nil
}
