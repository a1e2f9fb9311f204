package search

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Match is one value a condition accepts.
type Match struct {
	// Token: Code, and System when HasSystem ("system|code"; "|code" is a
	// code with no system).
	System    string
	HasSystem bool
	Code      string
	// Reference: "Type/id".
	Ref string
	// Date: Prefix (eq, gt, ge, lt, le) and the range [Lo, Hi) the value
	// covers.
	Prefix string
	Lo, Hi int64
}

// Cond is one search parameter of a query: a resource matches if it has a
// value equal to any of Any.
type Cond struct {
	Param string // "_id", "_lastUpdated", or a parameter of the type
	Kind  Kind
	Any   []Match
}

// Sort is the order of a search's results.
type Sort int

// The orders _sort accepts.
const (
	// ByLastUpdated is commit order (the store's seq): _sort=_lastUpdated,
	// and the default.
	ByLastUpdated Sort = iota
	ByLastUpdatedDesc
	ByDate
	ByDateDesc
)

// Include is one _include or _revinclude: the resources a reference
// parameter of Type points to (include) or the resources of Type whose
// parameter points at a match (revinclude).
type Include struct {
	Type, Param string
	Iterate     bool
}

// String is the Type:param form.
func (i Include) String() string { return i.Type + ":" + i.Param }

// Query is a parsed search.
type Query struct {
	Type       string
	Conds      []Cond
	Sort       Sort
	Count      int
	Total      bool // _total=accurate, or _summary=count
	OnlyCount  bool // _summary=count
	Elements   []string
	Include    []Include
	RevInclude []Include
	// Ignored lists the parameters a lenient search left out.
	Ignored []string
}

// The page sizes.
const (
	DefaultCount = 20
	MaxCount     = 1000
)

// ErrInvalid marks a search that cannot run: a bad value, or an unknown
// parameter in strict mode. Its message names the parameter, never a value.
var ErrInvalid = errors.New("invalid search")

// Controls names the result parameters searches accept, for the
// CapabilityStatement.
func Controls() []string {
	return []string{"_count", "_sort", "_total", "_summary", "_elements"}
}

var elementName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9]*$`)

// Parse turns the parameters of a search on typ into a Query. Unknown
// parameters are refused when strict and otherwise listed in Ignored;
// paging parameters the API itself adds (_cursor) are left to the caller.
func (r *Registry) Parse(typ string, params url.Values, strict bool) (Query, error) {
	q := Query{Type: typ, Count: DefaultCount}
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := r.parseParam(&q, name, params[name], strict); err != nil {
			return Query{}, err
		}
	}
	return q, nil
}

// parseParam adds one parameter (with all its repetitions) to q.
func (r *Registry) parseParam(q *Query, name string, vals []string, strict bool) error {
	base, modifier, _ := strings.Cut(name, ":")
	switch {
	case name == "_cursor" || name == "_format" || name == "_pretty":
		return nil
	case name == "_count":
		return parseCount(q, last(vals))
	case name == "_sort":
		return r.parseSort(q, last(vals))
	case name == "_total":
		return parseTotal(q, last(vals))
	case name == "_summary":
		if last(vals) != "count" {
			return invalid(name, "only _summary=count is supported")
		}
		q.OnlyCount, q.Total = true, true
		return nil
	case name == "_elements":
		return parseElements(q, vals)
	case base == "_include" || base == "_revinclude":
		return r.parseIncludes(q, base, modifier, vals)
	case modifier != "":
		return r.unknown(q, name, strict)
	case name == "_id":
		return addConds(q, name, Token, vals, parseID)
	case name == "_lastUpdated":
		return addConds(q, name, Date, vals, parseDate)
	}
	p, ok := r.Param(q.Type, name)
	if !ok {
		return r.unknown(q, name, strict)
	}
	return addConds(q, name, p.Kind, vals, parserOf(p))
}

func (r *Registry) unknown(q *Query, name string, strict bool) error {
	if strict {
		return invalid(name, "unknown search parameter")
	}
	q.Ignored = append(q.Ignored, name)
	return nil
}

func last(vals []string) string { return vals[len(vals)-1] }

func invalid(param, msg string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, param, msg)
}

func parseCount(q *Query, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return invalid("_count", "must be a non-negative integer")
	}
	q.Count = min(n, MaxCount)
	return nil
}

func (r *Registry) parseSort(q *Query, v string) error {
	switch v {
	case "_lastUpdated":
		q.Sort = ByLastUpdated
	case "-_lastUpdated":
		q.Sort = ByLastUpdatedDesc
	case "date", "-date":
		if r.SortDate(q.Type) == "" {
			return invalid("_sort", "this type has no date parameter")
		}
		q.Sort = ByDate
		if v == "-date" {
			q.Sort = ByDateDesc
		}
	default:
		return invalid("_sort", "supported: _lastUpdated, -_lastUpdated, date, -date")
	}
	return nil
}

func parseTotal(q *Query, v string) error {
	switch v {
	case "accurate":
		q.Total = true
	case "none", "estimate":
	default:
		return invalid("_total", "must be none, estimate or accurate")
	}
	return nil
}

func parseElements(q *Query, vals []string) error {
	for _, v := range vals {
		for e := range strings.SplitSeq(v, ",") {
			if !elementName.MatchString(e) {
				return invalid("_elements", "must list top-level element names")
			}
			q.Elements = append(q.Elements, e)
		}
	}
	return nil
}

// parseIncludes adds _include or _revinclude values (Type:param, with an
// optional :iterate modifier on the parameter name).
func (r *Registry) parseIncludes(q *Query, kind, modifier string, vals []string) error {
	if modifier != "" && modifier != "iterate" {
		return invalid(kind, "the only modifier is :iterate")
	}
	for _, v := range vals {
		typ, param, ok := strings.Cut(v, ":")
		if target, _, has := strings.Cut(param, ":"); has {
			param = target // Type:param:Target: the target is implied by the parameter
		}
		p, known := r.Param(typ, param)
		if !ok || !known || p.Kind != Reference {
			return invalid(kind, "unknown include; see the CapabilityStatement")
		}
		inc := Include{Type: typ, Param: param, Iterate: modifier == "iterate"}
		if kind == "_include" {
			if typ != q.Type && !inc.Iterate {
				return invalid(kind, "the include's type must be the searched type")
			}
			q.Include = append(q.Include, inc)
		} else {
			q.RevInclude = append(q.RevInclude, inc)
		}
	}
	return nil
}

// addConds adds one condition per repetition (AND); commas within a value
// separate alternatives (OR).
func addConds(q *Query, name string, kind Kind, vals []string, parse func(string) (Match, error)) error {
	for _, v := range vals {
		c := Cond{Param: name, Kind: kind}
		for alt := range strings.SplitSeq(v, ",") {
			m, err := parse(alt)
			if err != nil {
				return invalid(name, err.Error())
			}
			c.Any = append(c.Any, m)
		}
		q.Conds = append(q.Conds, c)
	}
	return nil
}

func parserOf(p Param) func(string) (Match, error) {
	switch p.Kind {
	case Reference:
		return func(v string) (Match, error) { return parseRef(p, v) }
	case Date:
		return parseDate
	}
	return parseToken
}

var idForm = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

func parseID(v string) (Match, error) {
	if !idForm.MatchString(v) {
		return Match{}, errors.New("not a resource id")
	}
	return Match{Code: v}, nil
}

func parseToken(v string) (Match, error) {
	if v == "" {
		return Match{}, errors.New("empty value")
	}
	sys, code, has := strings.Cut(v, "|")
	if !has {
		return Match{Code: v}, nil
	}
	if code == "" {
		return Match{}, errors.New("system| without a code is not supported")
	}
	return Match{System: sys, HasSystem: true, Code: code}, nil
}

// parseRef accepts an id (the parameter's target type is implied), or
// Type/id, or an absolute URL ending in Type/id.
func parseRef(p Param, v string) (Match, error) {
	parts := strings.Split(v, "/")
	switch {
	case len(parts) == 1 && p.Target != "" && idForm.MatchString(v):
		return Match{Ref: p.Target + "/" + v}, nil
	case len(parts) >= 2:
		typ, id := parts[len(parts)-2], parts[len(parts)-1]
		if idForm.MatchString(id) && typ != "" && (p.Target == "" || typ == p.Target) {
			return Match{Ref: typ + "/" + id}, nil
		}
	}
	return Match{}, errors.New("must be an id or Type/id")
}

func parseDate(v string) (Match, error) {
	prefix := "eq"
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
		prefix, v = v[:2], v[2:]
	}
	switch prefix {
	case "eq", "gt", "ge", "lt", "le":
	default:
		return Match{}, errors.New("supported prefixes: eq, gt, ge, lt, le")
	}
	lo, hi, ok := ParseRange(v)
	if !ok {
		return Match{}, errors.New("not a FHIR date or dateTime")
	}
	return Match{Prefix: prefix, Lo: lo, Hi: hi}, nil
}
