package script

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// Parse reads one SCRIPT message and checks its envelope: the 2017071
// namespace and version, a MessageID, a SentTime, and exactly one body kind.
func Parse(b []byte) (*Message, error) {
	var m Message
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode SCRIPT message: %w", err)
	}
	if err := end(dec); err != nil {
		return nil, err
	}
	switch {
	case m.TransactionVersion != Version:
		return nil, fmt.Errorf("SCRIPT version %q, want %s", m.TransactionVersion, Version)
	case m.Header.MessageID == "" || m.Header.SentTime == "":
		return nil, errors.New("SCRIPT header without MessageID or SentTime")
	case m.Body.Kind() == "":
		return nil, errors.New("SCRIPT body holds no known message")
	}
	return &m, nil
}

// end checks that only white space follows the message.
func end(dec *xml.Decoder) error {
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		cd, ok := tok.(xml.CharData)
		if err != nil || !ok || len(bytes.TrimSpace(cd)) > 0 {
			return errors.New("decode SCRIPT message: content after the message")
		}
	}
}

// CheckPrescription reports the first required element a NewRx or CancelRx
// lacks, so that a receiver can answer Error rather than guess.
func CheckPrescription(p *Prescription) error {
	nv := p.Prescriber.NonVeterinarian.Identification
	med := p.MedicationPrescribed
	for _, f := range []struct{ name, value string }{
		{"Pharmacy/Identification/NCPDPID", p.Pharmacy.Identification.NCPDPID},
		{"Patient/HumanPatient/Name/LastName", p.Patient.HumanPatient.Name.LastName},
		{"Patient/HumanPatient/DateOfBirth/Date", p.Patient.HumanPatient.DateOfBirth.Date},
		{"Prescriber/NonVeterinarian/Identification/DEANumber", nv.DEANumber},
		{"Prescriber/NonVeterinarian/Identification/NPI", nv.NPI},
		{"MedicationPrescribed/Quantity/Value", med.Quantity.Value},
		{"MedicationPrescribed/WrittenDate/Date", med.WrittenDate.Date},
		{"MedicationPrescribed/Sig/SigText", med.Sig.SigText},
		{"MedicationPrescribed/CompoundInformation/FinalCompoundPharmaceuticalDosageForm", med.CompoundInformation.FinalCompoundPharmaceuticalDosageForm},
	} {
		if f.value == "" {
			return fmt.Errorf("missing %s", f.name)
		}
	}
	if len(med.CompoundInformation.CompoundIngredientsLotNotUsed) == 0 {
		return errors.New("missing MedicationPrescribed/CompoundInformation/CompoundIngredientsLotNotUsed")
	}
	return nil
}

// Reply returns a message of the given body answering m: To and From
// swapped, RelatesToMessageID set to m's MessageID.
func Reply(m *Message, messageID, sentTime string, body Body) ([]byte, error) {
	r := *m
	r.Header = Header{To: m.Header.From, From: m.Header.To, MessageID: messageID, RelatesToMessageID: m.Header.MessageID,
		SentTime: sentTime, PrescriberOrderNumber: m.Header.PrescriberOrderNumber}
	r.Body = body
	return encode(r)
}
