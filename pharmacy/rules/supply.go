package rules

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/kapgw/kapgw/internal/kap"
)

// supply checks quantity and daysSupply against the dose per session (from
// the episode's dosing sessions, else the sig) and the dosing cadence (the
// shortest gap between this prescription's dosing sessions, else the rule
// set's default): the quantity must cover at least one session and at most
// every session that fits in daysSupply.
func (c *checker) supply() {
	perSession, gap := c.cadence()
	if perSession == 0 {
		if m := c.set.unitsSig.FindStringSubmatch(c.rx.Sig); m != nil {
			perSession, _ = strconv.Atoi(m[1])
		}
	}
	if perSession <= 0 {
		c.add(Block, CodeSupply, c.rxExpr+".sig", "the units per dose cannot be read from the sig or the dosing sessions")
		return
	}
	if gap <= 0 {
		gap = c.set.DefaultDosingIntervalDays
	}
	most := perSession * (c.rx.DaysSupply/gap + 1)
	if c.rx.Quantity < perSession || c.rx.Quantity > most {
		c.add(Block, CodeSupply, c.rxExpr+".quantity",
			fmt.Sprintf("the quantity is not consistent with the units per dose and a dosing session at most every %d days over the days supply", gap))
	}
}

// cadence returns the most units one dosing session of this prescription
// used (dose and booster) and the shortest gap in whole days between two
// of its dosing sessions (0 when fewer than two).
func (c *checker) cadence() (units, gap int) {
	var starts []time.Time
	for _, s := range c.ep.Sessions {
		if s.Kind != kap.SessionDosing || s.Status == kap.SessionCancelled || s.Dose == nil || s.Dose.PrescriptionID != c.rx.ID {
			continue
		}
		u := s.Dose.Units
		if s.Dose.Booster != nil {
			u += s.Dose.Booster.Units
		}
		units = max(units, u)
		if t, err := time.Parse(time.RFC3339, s.Start); err == nil {
			starts = append(starts, t)
		}
	}
	slices.SortFunc(starts, time.Time.Compare)
	for i := 1; i < len(starts); i++ {
		d := max(int(starts[i].Sub(starts[i-1]).Hours()/24), 1)
		if gap == 0 || d < gap {
			gap = d
		}
	}
	return units, gap
}
