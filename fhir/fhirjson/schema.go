package fhirjson

import "strings"

//go:generate go run ./internal/schemagen

// typeID names a samply struct in the generated schema (schema_gen.go).
// tNone means "no schema knowledge": the element is still cleaned of empties
// but has no choice or required-element rules. tResource marks an element
// that holds a whole resource whose type is read from its resourceType.
type typeID uint16

// choiceGroup returns the required choice element of t that key belongs to
// (medicationReference belongs to medication) and its index in the list.
func choiceGroup(t typeID, key []byte) (string, int) {
	groups := choiceGroups(t)
	for i := 0; groups != ""; i++ {
		var g string
		g, groups, _ = strings.Cut(groups, " ")
		if len(key) > len(g) && string(key[:len(g)]) == g && key[len(g)] >= 'A' && key[len(g)] <= 'Z' {
			return g, i
		}
	}
	return "", -1
}

// listIndex returns the position of name in the space separated list, or -1.
func listIndex(list string, name []byte) int {
	for i := 0; list != ""; i++ {
		var item string
		item, list, _ = strings.Cut(list, " ")
		if item == string(name) {
			return i
		}
	}
	return -1
}
