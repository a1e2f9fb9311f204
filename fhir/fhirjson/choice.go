package fhirjson

import (
	"fmt"
	"strings"
)

// resolveChoices keeps one form of each required choice element written
// since spans[base]. samply writes every form of such an element (an empty
// medicationReference next to the real medicationCodeableConcept; false, 0
// or a struct holding only invented default codes for every unset form), so:
// forms emptied by cleaning are already gone; a set form wins over the
// default-only ones; when only default-only forms remain, the boolean one is
// kept (substitution.allowedBoolean false is a real answer). Two set forms
// are an error, and so is none at all.
func (w *rewriter) resolveChoices(t typeID, base int) {
	spans := w.spans[base:]
	groups := choiceGroups(t)
	for g := 0; groups != ""; g++ {
		var name string
		name, groups, _ = strings.Cut(groups, " ")
		if problem := pickChoice(spans, g); problem != "" && w.err == nil {
			w.err = fmt.Errorf("%s.%s[x] %s", w.pathString(), name, problem)
		}
	}
	for i := len(spans) - 1; i >= 0; i-- {
		if spans[i].drop {
			w.cut(spans[i])
		}
	}
}

// pickChoice marks every span of group g but the one to keep as dropped and
// says what is wrong with the group, if anything.
func pickChoice(spans []choiceSpan, g int) string {
	keep, set := -1, 0
	for i, s := range spans {
		switch {
		case s.group != g:
		case !s.zero:
			set++
			keep = i
		case keep < 0 || set == 0 && s.boolean && !spans[keep].boolean:
			keep = i
		}
	}
	for i := range spans {
		spans[i].drop = spans[i].drop || spans[i].group == g && i != keep
	}
	switch {
	case keep < 0:
		return "is required"
	case set > 1:
		return "has more than one value"
	}
	return ""
}

// cut removes one member from out. A member that was first in its object
// has no leading comma, so the comma after it goes instead.
func (w *rewriter) cut(s choiceSpan) {
	end := s.end
	if w.out[s.start] != ',' && end < len(w.out) && w.out[end] == ',' {
		end++
	}
	w.out = append(w.out[:s.start], w.out[end:]...)
}

// pathString names the current element from its resource, such as
// MedicationRequest.substitution, for error messages (names only, no values).
func (w *rewriter) pathString() string {
	return joinPath(w.path)
}

func joinPath(path []pathElem) string {
	from := 0
	for i, p := range path {
		if p.resource {
			from = i
		}
	}
	var b strings.Builder
	for i, p := range path[from:] {
		if i > 0 {
			b.WriteByte('.')
		}
		b.Write(p.name)
	}
	return b.String()
}
