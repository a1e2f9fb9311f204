// Package script builds and reads the NCPDP SCRIPT 2017071 XML messages the
// gateway exchanges with the compounding pharmacy: NewRx and CancelRx out;
// Status, Verify and Error back. It is pure: values in, bytes out.
//
// Element names follow the 2017071 XML schema as far as this gateway uses
// it. Codes the project could not confirm at the source are marked (check).
package script

import "encoding/xml"

// Namespace and Version identify SCRIPT 2017071 messages.
const (
	Namespace = "http://www.ncpdp.org/schema/SCRIPT"
	Version   = "2017071"
)

// NCI Thesaurus codes used in SCRIPT 2017071.
const (
	// NCIScheduleIII is the DEA Schedule III code (DEASchedule).
	NCIScheduleIII = "C48676"
	// NCITroche and NCILozenge are the FDA SPL dose forms (check).
	NCITroche  = "C29269"
	NCILozenge = "C29167"
	// NCIMilligram is the strength unit of measure.
	NCIMilligram = "C28253"
	// NCIEach counts dispensed units of a compound (check).
	NCIEach = "C64933"
	// QuantityOriginal is CodeListQualifier 38, the original quantity.
	QuantityOriginal = "38"
)

// Substitutions codes: 0 lets the pharmacy substitute, 1 means the
// prescriber does not allow it (the default for compounded ketamine).
const (
	SubstitutionAllowed    = "0"
	SubstitutionNotAllowed = "1"
)

// Message is one SCRIPT message, any kind.
type Message struct {
	XMLName            xml.Name `xml:"http://www.ncpdp.org/schema/SCRIPT Message"`
	DatatypesVersion   string   `xml:"DatatypesVersion,attr"`
	TransportVersion   string   `xml:"TransportVersion,attr"`
	TransactionDomain  string   `xml:"TransactionDomain,attr"`
	TransactionVersion string   `xml:"TransactionVersion,attr"`
	StructuresVersion  string   `xml:"StructuresVersion,attr"`
	ECLVersion         string   `xml:"ECLVersion,attr"`
	Header             Header   `xml:"Header"`
	Body               Body     `xml:"Body"`
}

// Header routes a message and names it.
type Header struct {
	To                    Party  `xml:"To"`
	From                  Party  `xml:"From"`
	MessageID             string `xml:"MessageID"`
	RelatesToMessageID    string `xml:"RelatesToMessageID,omitempty"`
	SentTime              string `xml:"SentTime"`
	PrescriberOrderNumber string `xml:"PrescriberOrderNumber,omitempty"`
}

// Party is a sender or receiver with its identifier qualifier: P for a
// pharmacy's NCPDP ID, C for the prescribing clinic (check).
type Party struct {
	Qualifier string `xml:"Qualifier,attr"`
	ID        string `xml:",chardata"`
}

// Body holds exactly one message kind.
type Body struct {
	NewRx            *Prescription     `xml:"NewRx,omitempty"`
	CancelRx         *Prescription     `xml:"CancelRx,omitempty"`
	Status           *Status           `xml:"Status,omitempty"`
	Verify           *Verify           `xml:"Verify,omitempty"`
	Error            *Error            `xml:"Error,omitempty"`
	CancelRxResponse *CancelRxResponse `xml:"CancelRxResponse,omitempty"`
}

// Kind returns the name of the message kind the body holds, "" if none.
func (b Body) Kind() string {
	switch {
	case b.NewRx != nil:
		return "NewRx"
	case b.CancelRx != nil:
		return "CancelRx"
	case b.Status != nil:
		return "Status"
	case b.Verify != nil:
		return "Verify"
	case b.Error != nil:
		return "Error"
	case b.CancelRxResponse != nil:
		return "CancelRxResponse"
	}
	return ""
}

// Prescription is the body of NewRx and CancelRx.
type Prescription struct {
	Patient              Patient    `xml:"Patient"`
	Pharmacy             Pharmacy   `xml:"Pharmacy"`
	Prescriber           Prescriber `xml:"Prescriber"`
	MedicationPrescribed Medication `xml:"MedicationPrescribed"`
}

// Patient is the person the prescription is for.
type Patient struct {
	HumanPatient HumanPatient `xml:"HumanPatient"`
}

// HumanPatient carries the patient's demographics.
type HumanPatient struct {
	Identification       *PatientID      `xml:"Identification,omitempty"`
	Name                 Name            `xml:"Name"`
	Gender               string          `xml:"Gender"`
	DateOfBirth          Date            `xml:"DateOfBirth"`
	Address              Address         `xml:"Address"`
	CommunicationNumbers *Communications `xml:"CommunicationNumbers,omitempty"`
}

// PatientID is the clinic's medical record number.
type PatientID struct {
	MedicalRecordIdentificationNumberEHR string `xml:"MedicalRecordIdentificationNumberEHR"`
}

// Name is a person's name.
type Name struct {
	LastName   string `xml:"LastName"`
	FirstName  string `xml:"FirstName"`
	MiddleName string `xml:"MiddleName,omitempty"`
	Suffix     string `xml:"Suffix,omitempty"`
	Prefix     string `xml:"Prefix,omitempty"`
}

// Date is a SCRIPT date element: <Date>YYYY-MM-DD</Date>.
type Date struct {
	Date string `xml:"Date"`
}

// Address is a US postal address.
type Address struct {
	AddressLine1  string `xml:"AddressLine1"`
	AddressLine2  string `xml:"AddressLine2,omitempty"`
	City          string `xml:"City"`
	StateProvince string `xml:"StateProvince"`
	PostalCode    string `xml:"PostalCode"`
	CountryCode   string `xml:"CountryCode"`
}

// Communications holds a primary telephone number.
type Communications struct {
	PrimaryTelephone Telephone `xml:"PrimaryTelephone"`
}

// Telephone is one number.
type Telephone struct {
	Number string `xml:"Number"`
}

// Pharmacy is the dispensing pharmacy.
type Pharmacy struct {
	Identification PharmacyID `xml:"Identification"`
	BusinessName   string     `xml:"BusinessName"`
}

// PharmacyID identifies a pharmacy by NCPDP ID and NPI.
type PharmacyID struct {
	NCPDPID string `xml:"NCPDPID"`
	NPI     string `xml:"NPI,omitempty"`
}

// Prescriber is the prescribing clinician.
type Prescriber struct {
	NonVeterinarian NonVeterinarian `xml:"NonVeterinarian"`
}

// NonVeterinarian carries the prescriber's identifiers and name.
type NonVeterinarian struct {
	Identification PrescriberID `xml:"Identification"`
	Name           Name         `xml:"Name"`
}

// PrescriberID holds the identifiers a controlled-substance prescription
// needs: state license, DEA number and NPI.
type PrescriberID struct {
	StateLicenseNumber string `xml:"StateLicenseNumber"`
	DEANumber          string `xml:"DEANumber"`
	NPI                string `xml:"NPI"`
}

// Medication is MedicationPrescribed.
type Medication struct {
	DrugDescription     string    `xml:"DrugDescription"`
	DrugCoded           DrugCoded `xml:"DrugCoded"`
	Quantity            Quantity  `xml:"Quantity"`
	DaysSupply          int       `xml:"DaysSupply"`
	WrittenDate         Date      `xml:"WrittenDate"`
	Substitutions       string    `xml:"Substitutions"`
	NumberOfRefills     int       `xml:"NumberOfRefills"`
	Note                string    `xml:"Note,omitempty"`
	Sig                 Sig       `xml:"Sig"`
	CompoundInformation Compound  `xml:"CompoundInformation"`
}

// DrugCoded carries the controlled-substance schedule of the product.
type DrugCoded struct {
	DEASchedule Code `xml:"DEASchedule"`
}

// Code is an element holding one <Code>.
type Code struct {
	Code string `xml:"Code"`
}

// Quantity is a value with its code list qualifier and unit.
type Quantity struct {
	Value                 string `xml:"Value"`
	CodeListQualifier     string `xml:"CodeListQualifier"`
	QuantityUnitOfMeasure Code   `xml:"QuantityUnitOfMeasure"`
}

// Sig is the prescriber's directions, as text and with the route coded.
type Sig struct {
	SigText     string      `xml:"SigText"`
	Instruction Instruction `xml:"Instruction"`
}

// Instruction holds the coded administration of a structured sig (check).
type Instruction struct {
	DoseAdministration DoseAdministration `xml:"DoseAdministration"`
}

// DoseAdministration codes the route.
type DoseAdministration struct {
	RouteOfAdministration CodedText `xml:"RouteOfAdministration"`
}

// CodedText is a code from a named system with its text.
type CodedText struct {
	Text      string `xml:"Text"`
	Qualifier string `xml:"Qualifier"`
	Code      string `xml:"Code"`
}

// Compound is CompoundInformation: the final dose form and the ingredients.
type Compound struct {
	FinalCompoundPharmaceuticalDosageForm string               `xml:"FinalCompoundPharmaceuticalDosageForm"`
	CompoundIngredientsLotNotUsed         []CompoundIngredient `xml:"CompoundIngredientsLotNotUsed"`
}

// CompoundIngredient is one ingredient with the amount in the whole fill.
type CompoundIngredient struct {
	CompoundIngredient Ingredient `xml:"CompoundIngredient"`
	Quantity           Quantity   `xml:"Quantity"`
}

// Ingredient describes one ingredient and its strength per unit.
type Ingredient struct {
	CompoundIngredientItemDescription string   `xml:"CompoundIngredientItemDescription"`
	Strength                          Strength `xml:"Strength"`
	DEASchedule                       *Code    `xml:"DEASchedule,omitempty"`
}

// Strength is the amount of an ingredient per unit of the dose form.
type Strength struct {
	StrengthValue         string `xml:"StrengthValue"`
	StrengthForm          Code   `xml:"StrengthForm"`
	StrengthUnitOfMeasure Code   `xml:"StrengthUnitOfMeasure"`
}

// Status says the pharmacy took responsibility for the message.
type Status struct {
	Code        string `xml:"Code"`
	Description string `xml:"Description,omitempty"`
}

// Verify is a return receipt.
type Verify struct {
	VerifyStatus Status `xml:"VerifyStatus"`
}

// Error says the pharmacy refused the message; Code and DescriptionCode
// are SCRIPT codes the prescriber sees.
type Error struct {
	Code            string `xml:"Code"`
	DescriptionCode string `xml:"DescriptionCode,omitempty"`
	Description     string `xml:"Description,omitempty"`
}

// CancelRxResponse answers a CancelRx.
type CancelRxResponse struct {
	Response CancelResponse `xml:"Response"`
}

// CancelResponse is Approved or Denied.
type CancelResponse struct {
	Approved *struct{} `xml:"Approved,omitempty"`
	Denied   *Denied   `xml:"Denied,omitempty"`
}

// Denied carries the reason a cancel was refused.
type Denied struct {
	ReasonCode string `xml:"ReasonCode,omitempty"`
}
