package store

import (
	"strconv"
	"strings"
)

// filter collects the AND-ed conditions of a listing query and their
// arguments, numbering placeholders as both dialects accept ($1, $2, ...).
type filter struct {
	where []string
	args  []any
}

// add appends cond, in which a single ? stands for v.
func (f *filter) add(cond string, v any) {
	f.args = append(f.args, v)
	f.where = append(f.where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(f.args))))
}

// clause is " WHERE ..." when there are conditions, else "".
func (f *filter) clause() string {
	if len(f.where) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(f.where, " AND ")
}

// pageSize is a listing's page size: n when within 1..1000, else 100.
func pageSize(n int) int {
	if n <= 0 || n > 1000 {
		return 100
	}
	return n
}
