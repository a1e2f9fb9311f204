package store

import "iter"

// chunkSizes are the row counts of the store's multi-row statements, largest
// first. Cutting every list into these sizes keeps the statement texts to a
// few stable shapes per table, so that the prepared-statement cache (see
// stmtcache.go) hits whatever the size of an episode; cutting by a single
// maximum would make a new text for every distinct remainder. 64 rows of
// at most 14 columns (896 parameters) stays far below both databases'
// parameter limits.
var chunkSizes = [...]int{chunkRows, 16, 4, 1}

// chunkRows is the most rows one multi-row statement carries.
const chunkRows = 64

// chunks yields s cut greedily into slices whose lengths are chunkSizes.
func chunks[T any](s []T) iter.Seq[[]T] {
	return func(yield func([]T) bool) {
		for _, size := range chunkSizes {
			for len(s) >= size {
				if !yield(s[:size:size]) {
					return
				}
				s = s[size:]
			}
		}
	}
}
