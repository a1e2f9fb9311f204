package pharmacy

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/tidwall/gjson"

	"github.com/kapgw/kapgw/mappers"
	"github.com/kapgw/kapgw/pharmacy/rules"
)

// MaxRefillNumber bounds the refill number a callback may name (Schedule
// III allows 5 refills; more is refused as malformed, not merely warned).
const MaxRefillNumber = 99

// Refill finding codes, warnings on the TaskRefill Task.
const (
	// CodeEarlyRefill: a refill was dispensed before the previous fill's
	// units could have been used at the prescribed cadence.
	CodeEarlyRefill = "early-refill"
	// CodeRefillNotAuthorized: a refill beyond the refills the
	// prescription allows.
	CodeRefillNotAuthorized = "refill-not-authorized"
)

// FillDispenseID is the id of the MedicationDispense of one fill of an
// order: DispenseID for the first fill (refill 0), one per refill after.
func FillDispenseID(order string, refill int) string {
	if refill == 0 {
		return DispenseID(order)
	}
	return mappers.ID("MedicationDispense", order, "refill", strconv.Itoa(refill))
}

// fillLocks names the dispenses of fills 0..refill of an order and, for a
// refill, its refill Task: what an RxFill event reads and may write.
func fillLocks(order string, refill int) []string {
	out := make([]string, 0, refill+2)
	for k := 0; k <= refill; k++ {
		out = append(out, "MedicationDispense/"+FillDispenseID(order, k))
	}
	if refill > 0 {
		out = append(out, "Task/"+TaskID(order, TaskRefill))
	}
	return out
}

// cadence is the prescribed pace of an order, read from its
// MedicationRequest: units per session (the dose quantity, 1 when the sig
// did not state it) and days between sessions, so that a full fill
// (dispenseRequest.quantity) lasts the days supply.
type cadence struct {
	unitsPerSession float64
	daysPerSession  float64
	refillsAllowed  int
}

func cadenceOf(mr []byte) (cadence, bool) {
	c := cadence{unitsPerSession: gjson.GetBytes(mr, "dosageInstruction.0.doseAndRate.0.doseQuantity.value").Float()}
	if c.unitsPerSession <= 0 {
		c.unitsPerSession = 1
	}
	qty := gjson.GetBytes(mr, "dispenseRequest.quantity.value").Float()
	days := gjson.GetBytes(mr, "dispenseRequest.expectedSupplyDuration.value").Float()
	c.refillsAllowed = int(gjson.GetBytes(mr, "dispenseRequest.numberOfRepeatsAllowed").Int())
	if qty <= 0 || days <= 0 {
		return c, false
	}
	c.daysPerSession = days * c.unitsPerSession / qty
	return c, true
}

// lasts is how long after it was dispensed a fill of units could at the
// earliest be used up: its sessions, one every daysPerSession, the first
// on the day of dispensing.
func (c cadence) lasts(units int) time.Duration {
	sessions := math.Ceil(float64(units) / c.unitsPerSession)
	return time.Duration(max(sessions-1, 0) * c.daysPerSession * float64(24*time.Hour))
}

// refillFindings checks every refill 1..refill of an order whose fill and
// previous fill are both reported (dispense bodies in cur): a refill
// dispensed (prepared) before the previous fill could be used up at the
// prescribed cadence is early; one beyond the refills allowed is not
// authorized. It is recomputed in full on every fill event, so duplicate
// and out-of-order events give the same findings.
func refillFindings(order string, mr []byte, cur map[string][]byte, refill int) []rules.Finding {
	c, paced := cadenceOf(mr)
	var out []rules.Finding
	for k := 1; k <= refill; k++ {
		if k > c.refillsAllowed {
			if _, ok := cur["MedicationDispense/"+FillDispenseID(order, k)]; ok {
				out = append(out, rules.Finding{Code: CodeRefillNotAuthorized, Severity: rules.Warn,
					Message: fmt.Sprintf("refill %d was dispensed; the prescription allows %d", k, c.refillsAllowed)})
			}
		}
		prev, now := cur["MedicationDispense/"+FillDispenseID(order, k-1)], cur["MedicationDispense/"+FillDispenseID(order, k)]
		if !paced || prev == nil || now == nil {
			continue
		}
		prevAt, err1 := time.Parse(time.RFC3339, gjson.GetBytes(prev, "whenPrepared").String())
		at, err2 := time.Parse(time.RFC3339, gjson.GetBytes(now, "whenPrepared").String())
		units := int(gjson.GetBytes(prev, "quantity.value").Int())
		if err1 != nil || err2 != nil || units <= 0 {
			continue
		}
		if need := c.lasts(units); at.Sub(prevAt) < need {
			out = append(out, rules.Finding{Code: CodeEarlyRefill, Severity: rules.Warn,
				Message: fmt.Sprintf("refill %d was dispensed %s after the previous fill, whose %d units last at least %s at the prescribed cadence",
					k, days(at.Sub(prevAt)), units, days(need))})
		}
	}
	return out
}

// days renders a duration in days with one decimal.
func days(d time.Duration) string {
	return strconv.FormatFloat(d.Hours()/24, 'f', 1, 64) + " days"
}
