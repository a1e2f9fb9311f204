package script

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kapgw/kapgw/internal/kap"
	"github.com/kapgw/kapgw/mappers"
)

// Envelope is what a message needs beyond the episode: who sends it, when,
// and under which ids.
type Envelope struct {
	// From is the sending clinic's id (Qualifier C).
	From string
	// MessageID names this message; use MessageID so that retries of the
	// same prescription version reuse it.
	MessageID string
	// RelatesToMessageID names the NewRx a CancelRx cancels.
	RelatesToMessageID string
	SentTime           time.Time
}

var idEncoding = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// MessageID returns the stable id of a message of kind ("NewRx",
// "CancelRx") for one version of prescription rxID: 26 characters, well
// within SCRIPT's 35, the same on every retry so the pharmacy can
// de-duplicate.
func MessageID(kind, rxID string, version int64) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + rxID + "\x00" + strconv.FormatInt(version, 10)))
	return idEncoding.EncodeToString(sum[:16])
}

// OrderNumber is the PrescriberOrderNumber of prescription i of ep: the id
// of its FHIR MedicationRequest (35 characters, SCRIPT's limit), so that
// the pharmacy's answers name the resource they update.
func OrderNumber(ep *kap.Episode, i int) string {
	return mappers.ID("MedicationRequest", ep.ID, ep.Prescriptions[i].ID)
}

// ErrNoPharmacy reports an episode without a pharmacy to send to.
var ErrNoPharmacy = errors.New("episode names no pharmacy")

// NewRx returns the NewRx message for prescription i of ep.
func NewRx(ep *kap.Episode, i int, env Envelope) ([]byte, error) {
	rx, err := prescription(ep, i)
	if err != nil {
		return nil, err
	}
	return encode(message(ep, i, env, Body{NewRx: rx}))
}

// CancelRx returns the CancelRx message for prescription i of ep; env
// names the NewRx it cancels in RelatesToMessageID.
func CancelRx(ep *kap.Episode, i int, env Envelope) ([]byte, error) {
	if env.RelatesToMessageID == "" {
		return nil, errors.New("cancel: no RelatesToMessageID")
	}
	rx, err := prescription(ep, i)
	if err != nil {
		return nil, err
	}
	return encode(message(ep, i, env, Body{CancelRx: rx}))
}

func message(ep *kap.Episode, i int, env Envelope, body Body) Message {
	return Message{
		DatatypesVersion: Version, TransportVersion: Version, TransactionDomain: "SCRIPT",
		TransactionVersion: Version, StructuresVersion: Version, ECLVersion: Version,
		Header: Header{
			To:                    Party{Qualifier: "P", ID: ep.Pharmacy.NCPDPID},
			From:                  Party{Qualifier: "C", ID: env.From},
			MessageID:             env.MessageID,
			RelatesToMessageID:    env.RelatesToMessageID,
			SentTime:              env.SentTime.UTC().Format("2006-01-02T15:04:05.0Z"),
			PrescriberOrderNumber: OrderNumber(ep, i),
		},
		Body: body,
	}
}

func encode(m Message) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.Body.Kind(), err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func prescription(ep *kap.Episode, i int) (*Prescription, error) {
	if ep.Pharmacy == nil {
		return nil, ErrNoPharmacy
	}
	if i < 0 || i >= len(ep.Prescriptions) {
		return nil, fmt.Errorf("no prescription %d", i)
	}
	pr := ep.CareTeam.Prescriber
	return &Prescription{
		Patient:  patient(ep),
		Pharmacy: Pharmacy{Identification: PharmacyID{NCPDPID: ep.Pharmacy.NCPDPID, NPI: ep.Pharmacy.NPI}, BusinessName: ep.Pharmacy.Name},
		Prescriber: Prescriber{NonVeterinarian: NonVeterinarian{
			Identification: PrescriberID{StateLicenseNumber: license(ep), DEANumber: pr.DEA, NPI: pr.NPI},
			Name:           name(pr.Name),
		}},
		MedicationPrescribed: medication(ep.Prescriptions[i]),
	}, nil
}

// license is the prescriber's license in the state the prescription ships
// to (the patient's state unless shipTo says otherwise).
func license(ep *kap.Episode) string {
	state := ep.Patient.Address.State
	for _, l := range ep.CareTeam.Prescriber.Licenses {
		if l.State == state {
			return l.Number
		}
	}
	return ""
}

func patient(ep *kap.Episode) Patient {
	p := ep.Patient
	hp := HumanPatient{Name: name(p.Name), Gender: gender(p.Sex), DateOfBirth: Date{p.BirthDate}, Address: address(p.Address)}
	if p.MRN != "" {
		hp.Identification = &PatientID{MedicalRecordIdentificationNumberEHR: p.MRN}
	}
	if p.Phone != "" {
		hp.CommunicationNumbers = &Communications{PrimaryTelephone: Telephone{Number: digitsOf(p.Phone)}}
	}
	return Patient{HumanPatient: hp}
}

func name(n kap.Name) Name {
	out := Name{LastName: n.Family, Suffix: n.Suffix, Prefix: n.Prefix}
	if len(n.Given) > 0 {
		out.FirstName = n.Given[0]
		out.MiddleName = strings.Join(n.Given[1:], " ")
	}
	return out
}

func gender(sex string) string {
	switch sex {
	case "female":
		return "F"
	case "male":
		return "M"
	}
	return "U"
}

func address(a kap.Address) Address {
	out := Address{City: a.City, StateProvince: a.State, PostalCode: a.PostalCode, CountryCode: "US"}
	if len(a.Line) > 0 {
		out.AddressLine1 = a.Line[0]
		out.AddressLine2 = strings.Join(a.Line[1:], ", ")
	}
	return out
}

// digitsOf keeps the digits of a phone number, dropping a leading US
// country code: SCRIPT wants ten digits.
func digitsOf(phone string) string {
	var b strings.Builder
	for _, r := range phone {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return strings.TrimPrefix(b.String(), "1")
}
