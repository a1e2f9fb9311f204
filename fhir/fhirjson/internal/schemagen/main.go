// Command schemagen writes fhir/fhirjson/schema_gen.go from the source of the
// samply FHIR models: which element of which struct holds which struct, where
// a nested resource may appear, which elements samply treats as required and
// which required choice elements it writes in every form at once.
//
// Run it with `go generate ./fhir/fhirjson` after upgrading samply.
package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"reflect"
	"sort"
	"strings"
)

// resources lists the resource types kapgw reads or writes.
var resources = []string{
	"AdverseEvent", "AuditEvent", "Bundle", "CapabilityStatement", "CarePlan", "CareTeam",
	"CodeSystem", "Condition", "Encounter", "EpisodeOfCare", "Medication", "MedicationAdministration",
	"MedicationDispense", "MedicationRequest", "MedicationStatement", "Observation", "OperationOutcome",
	"Organization", "Parameters", "Patient", "Practitioner", "PractitionerRole", "Provenance", "Task",
}

// dataTypes are the R4 type names samply appends to a choice element's name.
var dataTypes = strings.Fields(`Base64Binary Boolean Canonical Code Date DateTime Decimal Id Instant
Integer Markdown Oid PositiveInt String Time UnsignedInt Uri Url Uuid Address Age Annotation Attachment
CodeableConcept Coding ContactPoint Count Distance Duration HumanName Identifier Money Period Quantity
Range Ratio Reference SampledData Signature Timing ContactDetail Contributor DataRequirement Expression
ParameterDefinition RelatedArtifact TriggerDefinition UsageContext Dosage Meta`)

type field struct {
	jsonName string
	goName   string
	typ      string // struct name in the package, "RawMessage", or "" for primitives and enums
	goType   string // the type name as written
	required bool
}

type structInfo struct {
	name    string
	fields  []field
	choices []string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}

func run() error {
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/samply/golang-fhir-models/fhir-models").Output()
	if err != nil {
		return fmt.Errorf("locate samply models: %w", err)
	}
	structs, defaults, err := parseStructs(strings.TrimSpace(string(dir)) + "/fhir")
	if err != nil {
		return err
	}
	reach := reachable(structs)
	src, err := format.Source(render(structs, defaults, reach))
	if err != nil {
		return fmt.Errorf("format: %w", err)
	}
	return os.WriteFile("schema_gen.go", src, 0o644)
}

func parseStructs(dir string) (map[string]*structInfo, map[string]string, error) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, nil, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", dir, err)
	}
	out := map[string]*structInfo{}
	var files []*ast.File
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			files = append(files, f)
			ast.Inspect(f, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok {
					return true
				}
				st, ok := ts.Type.(*ast.StructType)
				if ok && !strings.HasPrefix(ts.Name.Name, "Other") {
					out[ts.Name.Name] = newStruct(ts.Name.Name, st)
				}
				return false
			})
		}
	}
	for _, s := range out {
		for i := range s.fields {
			if t := s.fields[i].typ; t != "RawMessage" && out[t] == nil {
				s.fields[i].typ = ""
			}
		}
	}
	return out, enumDefaults(files), nil
}

// enumDefaults maps each samply code type to the code its zero value writes
// (the first constant of its iota block).
func enumDefaults(files []*ast.File) map[string]string {
	first := map[string]string{} // type -> first constant
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST || len(g.Specs) == 0 {
				continue
			}
			vs := g.Specs[0].(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); ok && len(vs.Names) == 1 {
				first[id.Name] = vs.Names[0].Name
			}
		}
	}
	out := map[string]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Name.Name != "Code" || fd.Recv == nil {
				continue
			}
			typ := typeName(fd.Recv.List[0].Type)
			if code := firstCode(fd, first[typ]); code != "" {
				out[typ] = code
			}
		}
	}
	return out
}

func firstCode(fd *ast.FuncDecl, constant string) string {
	code := ""
	ast.Inspect(fd, func(n ast.Node) bool {
		cc, ok := n.(*ast.CaseClause)
		if !ok || code != "" || len(cc.List) == 0 || len(cc.Body) == 0 {
			return code == ""
		}
		id, ok := cc.List[0].(*ast.Ident)
		ret, ok2 := cc.Body[0].(*ast.ReturnStmt)
		if ok && ok2 && id.Name == constant && len(ret.Results) == 1 {
			if lit, ok := ret.Results[0].(*ast.BasicLit); ok {
				code = strings.Trim(lit.Value, `"`)
			}
		}
		return false
	})
	return code
}

func newStruct(name string, st *ast.StructType) *structInfo {
	s := &structInfo{name: name}
	for _, f := range st.Fields.List {
		if len(f.Names) != 1 || f.Tag == nil {
			continue
		}
		tag := reflect.StructTag(strings.Trim(f.Tag.Value, "`")).Get("json")
		jsonName, opts, _ := strings.Cut(tag, ",")
		fl := field{jsonName: jsonName, goName: f.Names[0].Name, required: opts != "omitempty"}
		fl.typ = typeName(f.Type)
		fl.goType = fl.typ
		_, pointer := f.Type.(*ast.StarExpr)
		_, slice := f.Type.(*ast.ArrayType)
		fl.required = fl.required && !pointer && !slice
		s.fields = append(s.fields, fl)
	}
	s.choices = choiceGroups(s.fields)
	return s
}

func typeName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return typeName(t.X)
	case *ast.ArrayType:
		if id, ok := t.Elt.(*ast.Ident); ok && id.Name == "byte" {
			return ""
		}
		return typeName(t.Elt)
	case *ast.Ident:
		return t.Name
	case *ast.SelectorExpr:
		return t.Sel.Name
	}
	return ""
}

// choiceGroups finds required choice elements: two or more required fields
// named prefix+DataType.
func choiceGroups(fields []field) []string {
	count := map[string]int{}
	for _, f := range fields {
		if p := choicePrefix(f); p != "" && f.required {
			count[p]++
		}
	}
	var out []string
	for p, n := range count {
		if n > 1 {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func choicePrefix(f field) string {
	for _, dt := range dataTypes {
		if p, ok := strings.CutSuffix(f.goName, dt); ok && p != "" {
			return f.jsonName[:len(p)]
		}
	}
	return ""
}

func reachable(structs map[string]*structInfo) []string {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		if seen[name] || structs[name] == nil {
			return
		}
		seen[name] = true
		for _, f := range structs[name].fields {
			visit(f.typ)
		}
	}
	for _, r := range resources {
		visit(r)
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func render(structs map[string]*structInfo, defaults map[string]string, names []string) []byte {
	var b bytes.Buffer
	b.WriteString("// Code generated by internal/schemagen from github.com/samply/golang-fhir-models; DO NOT EDIT.\n\npackage fhirjson\n\n")
	b.WriteString("const (\n\ttNone typeID = iota\n\ttResource\n")
	for _, n := range names {
		fmt.Fprintf(&b, "\tt%s\n", n)
	}
	b.WriteString(")\n\n// resourceTypeID returns the schema node of a resource type kapgw knows.\nfunc resourceTypeID(name string) typeID {\n\tswitch name {\n")
	for _, r := range resources {
		fmt.Fprintf(&b, "\tcase %q:\n\t\treturn t%s\n", r, r)
	}
	b.WriteString("\t}\n\treturn tNone\n}\n\n// fieldType returns the schema node of element key inside t.\nfunc fieldType(t typeID, key string) typeID {\n\tswitch t {\n")
	for _, n := range names {
		renderFields(&b, structs[n])
	}
	b.WriteString("\t}\n\treturn tNone\n}\n\n")
	renderDefaults(&b, structs, defaults, names)
	renderLists(&b, "choiceGroups", "the required choice elements of t that samply writes in every form, space separated", structs, names, func(s *structInfo) []string { return s.choices })
	renderLists(&b, "requiredFields", "the elements samply always writes (and invents when decoding) for t, space separated", structs, names, func(s *structInfo) []string { return required(s) })
	return b.Bytes()
}

func renderFields(b *bytes.Buffer, s *structInfo) {
	var cases []string
	for _, f := range s.fields {
		switch f.typ {
		case "":
		case "RawMessage":
			cases = append(cases, fmt.Sprintf("\t\tcase %q:\n\t\t\treturn tResource\n", f.jsonName))
		default:
			cases = append(cases, fmt.Sprintf("\t\tcase %q:\n\t\t\treturn t%s\n", f.jsonName, f.typ))
		}
	}
	if len(cases) == 0 {
		return
	}
	fmt.Fprintf(b, "\tcase t%s:\n\t\tswitch key {\n%s\t\t}\n", s.name, strings.Join(cases, ""))
}

func required(s *structInfo) []string {
	var out []string
	for _, f := range s.fields {
		if f.required && !inChoice(s, f) {
			out = append(out, f.jsonName)
		}
	}
	return out
}

func inChoice(s *structInfo, f field) bool {
	p := choicePrefix(f)
	for _, c := range s.choices {
		if c == p {
			return true
		}
	}
	return false
}

func renderLists(b *bytes.Buffer, fn, doc string, structs map[string]*structInfo, names []string, list func(*structInfo) []string) {
	fmt.Fprintf(b, "// %s returns %s.\nfunc %s(t typeID) string {\n\tswitch t {\n", fn, doc, fn)
	for _, n := range names {
		if l := list(structs[n]); len(l) > 0 {
			fmt.Fprintf(b, "\tcase t%s:\n\t\treturn %q\n", n, strings.Join(l, " "))
		}
	}
	b.WriteString("\t}\n\treturn \"\"\n}\n\n")
}

func renderDefaults(b *bytes.Buffer, structs map[string]*structInfo, defaults map[string]string, names []string) {
	b.WriteString("// defaultCode returns the code samply writes for the required code element\n// key of t when it was never set, or \"\".\nfunc defaultCode(t typeID, key string) string {\n\tswitch t {\n")
	for _, n := range names {
		var cases []string
		for _, f := range structs[n].fields {
			if d, ok := defaults[f.goType]; ok && f.required {
				cases = append(cases, fmt.Sprintf("\t\tcase %q:\n\t\t\treturn %q\n", f.jsonName, d))
			}
		}
		if len(cases) > 0 {
			fmt.Fprintf(b, "\tcase t%s:\n\t\tswitch key {\n%s\t\t}\n", n, strings.Join(cases, ""))
		}
	}
	b.WriteString("\t}\n\treturn \"\"\n}\n\n")
}
