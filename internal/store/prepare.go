package store

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/kapgw/kapgw/internal/search"
)

// prepared is what the write of a resource derives from its body alone:
// its content hash and its search index values. Prepare computes it before
// the writer is taken, so that the single SQLite writer spends its time on
// writing.
type prepared struct {
	hash     string
	values   []search.Value // Param is "Type.name"; no value twice
	sortDate int64
}

// Prepare derives, outside any transaction, what writing c's resources
// needs from their bodies (content hashes and search index values), so
// that ApplyEpisode holds the writer for less time. Calling it is
// optional; a change must not be modified after it.
func (s *Store) Prepare(c *EpisodeChange) {
	for i := range c.Resources {
		s.prepare(&c.Resources[i])
	}
}

// prepare returns r's prepared values, computing them if needed.
func (s *Store) prepare(r *Resource) *prepared {
	if r.prepared == nil {
		r.prepared = newPrepared(s.reg, *r)
	}
	return r.prepared
}

func newPrepared(reg *search.Registry, r Resource) *prepared {
	sum := sha256.Sum256(r.Body)
	p := &prepared{hash: hex.EncodeToString(sum[:]), sortDate: noSortDate}
	sortParam := reg.SortDate(r.Type)
	values := reg.Extract(r.Type, r.Body)
	seen := make(map[search.Value]bool, len(values))
	for _, val := range values {
		if val.Kind == search.Date && val.Param == sortParam {
			p.sortDate = min(p.sortDate, val.Lo)
		}
		val.Param = r.Type + "." + val.Param
		// A value found twice (the same coding listed twice) is indexed
		// once, so that a search driven by it returns the version once.
		if !seen[val] {
			seen[val] = true
			p.values = append(p.values, val)
		}
	}
	return p
}
