package kap

import "fmt"

// Scale is the shape of an outcome-measure instrument: how many items it has
// and the highest answer to each. Every item is scored from 0, so the total
// ranges from 0 to Items*MaxItem.
type Scale struct {
	Items   int
	MaxItem int
}

// MaxScore is the highest total score of the instrument.
func (s Scale) MaxScore() int { return s.Items * s.MaxItem }

// ScaleOf returns the shape of an instrument, and false for an unknown one.
// The shapes are those of the standard published forms:
//   - PHQ-9: 9 items scored 0-3, total 0-27;
//   - GAD-7: 7 items scored 0-3, total 0-21;
//   - PCL-5 (DSM-5 version): 20 items scored 0-4, total 0-80;
//   - MADRS: 10 items scored 0-6, total 0-60;
//   - CADSS: the 23 subjective items scored 0-4, total 0-92 (the observer
//     items of the 27-item form are not part of this score).
func ScaleOf(instrument string) (Scale, bool) {
	switch instrument {
	case InstrumentPHQ9:
		return Scale{Items: 9, MaxItem: 3}, true
	case InstrumentGAD7:
		return Scale{Items: 7, MaxItem: 3}, true
	case InstrumentPCL5:
		return Scale{Items: 20, MaxItem: 4}, true
	case InstrumentMADRS:
		return Scale{Items: 10, MaxItem: 6}, true
	case InstrumentCADSS:
		return Scale{Items: 23, MaxItem: 4}, true
	}
	return Scale{}, false
}

// measures checks every measure: unique ids, a sessionId that names a session
// of this document, a score in the instrument's range and, when items are
// given, the right number of items, each in range, summing to the score.
func (c *checker) measures(measures []Measure, sessions map[string]int) {
	ids := make([]string, len(measures))
	for i, m := range measures {
		ids[i] = m.ID
		expr := element("measures", i)
		if _, ok := sessions[m.SessionID]; m.SessionID != "" && !ok {
			c.add(CodeBusinessRule, member(expr, "sessionId"), "names no session in this document")
		}
		scale, ok := ScaleOf(m.Instrument)
		if !ok {
			continue // the schema's enum reports it
		}
		if m.Score < 0 || m.Score > scale.MaxScore() {
			c.add(CodeValue, member(expr, "score"),
				fmt.Sprintf("must be between 0 and %d for %s", scale.MaxScore(), m.Instrument))
		}
		if m.Items != nil {
			c.items(expr, m, scale)
		}
	}
	c.unique("measures", ids)
}

// items checks the item answers of measure m (at expr) against its scale.
func (c *checker) items(expr string, m Measure, scale Scale) {
	items := member(expr, "items")
	if len(m.Items) != scale.Items {
		c.add(CodeValue, items, fmt.Sprintf("%s has %d items", m.Instrument, scale.Items))
	}
	sum := 0
	for j, v := range m.Items {
		sum += v
		if v < 0 || v > scale.MaxItem {
			c.add(CodeValue, element(items, j), fmt.Sprintf("must be between 0 and %d for %s", scale.MaxItem, m.Instrument))
		}
	}
	if sum != m.Score {
		c.add(CodeBusinessRule, items, "item answers must sum to score")
	}
}
