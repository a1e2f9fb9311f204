package mappers

import (
	"fmt"
	"strconv"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/kapgw/kapgw/internal/kap"
)

// observations adds one Observation per measure, then the vital signs of
// each session in document order.
func (b *builder) observations() error {
	for _, m := range b.ep.Measures {
		if err := b.measure(m); err != nil {
			return err
		}
	}
	for _, s := range b.ep.Sessions {
		for i, v := range s.Vitals {
			b.vitals(s, i, v)
		}
	}
	return nil
}

func (b *builder) measure(m kap.Measure) error {
	code, ok := b.instrumentCode(m.Instrument)
	if !ok {
		return fmt.Errorf("measure %s: unknown instrument %q", m.ID, m.Instrument)
	}
	id := ID("Observation", b.ep.ID, "measure", m.ID)
	res := &r4.Observation{
		Id:                ptr(id),
		Identifier:        []r4.Identifier{b.ident("measure", b.episodeKey(m.ID))},
		Status:            r4.ObservationStatusFinal,
		Category:          []r4.CodeableConcept{concept(sysObsCat, "survey", "Survey", "")},
		Code:              code,
		Subject:           &b.patient,
		EffectiveDateTime: ptr(m.TakenAt),
		ValueInteger:      ptr(m.Score),
	}
	if m.SessionID != "" {
		if _, ok := b.sessionIdx[m.SessionID]; !ok {
			return fmt.Errorf("measure %s: session %s: %w", m.ID, m.SessionID, ErrReference)
		}
		res.Encounter = b.encounterRef(m.SessionID)
	}
	b.add("Observation", id, Episode, res)
	return nil
}

// instrumentCode codes an instrument's total score: LOINC where LOINC has
// a total-score code, the gateway's kap-instrument CodeSystem otherwise.
func (b *builder) instrumentCode(instrument string) (r4.CodeableConcept, bool) {
	switch instrument {
	case kap.InstrumentPHQ9:
		return concept(sysLOINC, "44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]", "PHQ-9 total score"), true
	case kap.InstrumentGAD7:
		return concept(sysLOINC, "70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]", "GAD-7 total score"), true
	}
	for _, c := range instrumentConcepts {
		if c.instrument == instrument {
			return concept(instrumentSystem(b.base), c.code, c.display, instrument+" total score"), true
		}
	}
	return r4.CodeableConcept{}, false
}

// vitalSign is one vital-sign Observation kind.
type vitalSign struct {
	key      string // identifier and id key
	profiles []string
	code     r4.CodeableConcept
}

func bpSign() vitalSign {
	return vitalSign{"bp", []string{profVitalBP, profUSCoreBP},
		concept(sysLOINC, "85354-9", "Blood pressure panel with all children optional", "Blood pressure")}
}

func heartRateSign() vitalSign {
	return vitalSign{"heart-rate", []string{profVitalHR, profUSCoreHR},
		concept(sysLOINC, "8867-4", "Heart rate", "Heart rate")}
}

// spO2Code carries both LOINC codes: R4's oxygensat profile requires
// 2708-6 and US Core's pulse-oximetry profile requires 59408-5.
func spO2Code() r4.CodeableConcept {
	return r4.CodeableConcept{
		Coding: []r4.Coding{
			coding(sysLOINC, "2708-6", "Oxygen saturation in Arterial blood"),
			coding(sysLOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
		},
		Text: ptr("Oxygen saturation"),
	}
}

// vitals adds the Observations of one vitals set. Blood pressure needs
// both values (US Core requires both components); a missing value of any
// other kind simply emits nothing.
func (b *builder) vitals(s kap.Session, i int, v kap.Vitals) {
	if v.Systolic != nil && v.Diastolic != nil {
		obs := b.vitalObservation(s, i, v, bpSign())
		obs.Component = []r4.ObservationComponent{
			{Code: concept(sysLOINC, "8480-6", "Systolic blood pressure", ""), ValueQuantity: ucum(intNumber(*v.Systolic), "mmHg", "mm[Hg]")},
			{Code: concept(sysLOINC, "8462-4", "Diastolic blood pressure", ""), ValueQuantity: ucum(intNumber(*v.Diastolic), "mmHg", "mm[Hg]")},
		}
	}
	if v.HeartRate != nil {
		obs := b.vitalObservation(s, i, v, heartRateSign())
		obs.ValueQuantity = ucum(intNumber(*v.HeartRate), "beats/minute", "/min")
	}
	if v.SpO2 != nil {
		obs := b.vitalObservation(s, i, v, vitalSign{"spo2", []string{profVitalSpO2, profUSCoreSpO2}, spO2Code()})
		obs.ValueQuantity = ucum(intNumber(*v.SpO2), "%", "%")
	}
}

func (b *builder) vitalObservation(s kap.Session, i int, v kap.Vitals, kind vitalSign) *r4.Observation {
	idx := strconv.Itoa(i)
	id := ID("Observation", b.ep.ID, "vitals", s.ID, idx, kind.key)
	obs := &r4.Observation{
		Id:                ptr(id),
		Meta:              meta(kind.profiles...),
		Identifier:        []r4.Identifier{b.ident("vitals", b.episodeKey(s.ID, "vitals", idx, kind.key))},
		Status:            r4.ObservationStatusFinal,
		Category:          []r4.CodeableConcept{concept(sysObsCat, "vital-signs", "Vital Signs", "")},
		Code:              kind.code,
		Subject:           &b.patient,
		Encounter:         b.encounterRef(s.ID),
		EffectiveDateTime: ptr(v.TakenAt),
	}
	b.add("Observation", id, Episode, obs)
	return obs
}
