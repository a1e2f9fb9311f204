package store

import (
	"strconv"
	"strings"
)

// anonymous rewrites query's placeholders $1, $2, ... $n as bare ? when
// they appear exactly in that order, once each; any other query comes back
// unchanged. The store writes $n for both databases, but SQLite looks the
// name of every numbered parameter up in a list when a statement is bound
// (sqlite3_bind_parameter_name, as modernc's driver calls it for each
// argument), so binding a statement of n numbered parameters costs n²/2
// comparisons: a 64-row insert of 14 columns took twice as long per row as
// 64 single-row inserts (BenchmarkAddExchanges). Bare ? parameters have
// no names and bind in constant time each.
func anonymous(query string) string {
	if !strings.Contains(query, "$") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query))
	next, quoted, last := 1, false, 0
	for i := 0; i < len(query); i++ {
		switch c := query[i]; {
		case c == '\'':
			quoted = !quoted
		case c == '$' && !quoted:
			j := i + 1
			for j < len(query) && query[j] >= '0' && query[j] <= '9' {
				j++
			}
			if j == i+1 {
				return query // a $ that is not a placeholder
			}
			if n, err := strconv.Atoi(query[i+1 : j]); err != nil || n != next {
				return query // out of order or repeated: keep the numbers
			}
			next++
			b.WriteString(query[last:i])
			b.WriteByte('?')
			last, i = j, j-1
		}
	}
	if quoted {
		return query
	}
	b.WriteString(query[last:])
	return b.String()
}
