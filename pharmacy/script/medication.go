package script

import (
	"strconv"

	"github.com/kapgw/kapgw/internal/kap"
)

// snomedSublingual is the route every lozenge form is taken by (check).
const snomedSublingual = "37839007"

// doseForm returns the NCI dose form code and its plain name.
func doseForm(form string) (code, text string) {
	switch form {
	case "troche":
		return NCITroche, "troche"
	case "lozenge":
		return NCILozenge, "lozenge"
	}
	return "", form
}

func medication(rx kap.Prescription) Medication {
	code, text := doseForm(rx.Formulation.Form)
	mg := num(rx.Formulation.KetamineMGPerUnit)
	subst := SubstitutionNotAllowed
	if rx.SubstitutionAllowed {
		subst = SubstitutionAllowed
	}
	return Medication{
		DrugDescription: "Ketamine HCl " + mg + " mg sublingual " + text + " (compounded)",
		DrugCoded:       DrugCoded{DEASchedule: Code{NCIScheduleIII}},
		Quantity:        Quantity{Value: strconv.Itoa(rx.Quantity), CodeListQualifier: QuantityOriginal, QuantityUnitOfMeasure: Code{NCIEach}},
		DaysSupply:      rx.DaysSupply,
		WrittenDate:     Date{writtenDate(rx.WrittenAt)},
		Substitutions:   subst,
		NumberOfRefills: rx.Refills,
		Note:            rx.NoteToPharmacist,
		Sig: Sig{SigText: rx.Sig, Instruction: Instruction{DoseAdministration: DoseAdministration{
			RouteOfAdministration: CodedText{Text: "sublingual", Qualifier: "SNOMED", Code: snomedSublingual},
		}}},
		CompoundInformation: Compound{
			FinalCompoundPharmaceuticalDosageForm: code,
			CompoundIngredientsLotNotUsed: []CompoundIngredient{{
				CompoundIngredient: Ingredient{
					CompoundIngredientItemDescription: "Ketamine HCl",
					Strength:                          Strength{StrengthValue: mg, StrengthForm: Code{code}, StrengthUnitOfMeasure: Code{NCIMilligram}},
					DEASchedule:                       &Code{NCIScheduleIII},
				},
				Quantity: Quantity{
					Value:                 num(rx.Formulation.KetamineMGPerUnit * float64(rx.Quantity)),
					CodeListQualifier:     QuantityOriginal,
					QuantityUnitOfMeasure: Code{NCIMilligram},
				},
			}},
		},
	}
}

// writtenDate is the calendar date of writtenAt as the clinic wrote it
// (its own offset), which is the date on the prescription.
func writtenDate(at string) string {
	if len(at) >= 10 {
		return at[:10]
	}
	return at
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
