package store

import "testing"

func TestAnonymous(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"no placeholders", "SELECT 1", "SELECT 1"},
		{"in order", "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)", "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"},
		{"two digits", "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)", "VALUES (?,?,?,?,?,?,?,?,?,?,?)"},
		{"repeated", "WHERE a = $1 AND b > $2 AND c < $2", "WHERE a = $1 AND b > $2 AND c < $2"},
		{"out of order", "WHERE a = $2 AND b = $1", "WHERE a = $2 AND b = $1"},
		{"not from one", "WHERE a = $2", "WHERE a = $2"},
		{"dollar in a literal", "WHERE a = '$9' AND b = $1", "WHERE a = '$9' AND b = ?"},
		{"empty literal", "WHERE a = '' AND b = $1", "WHERE a = '' AND b = ?"},
		{"bare dollar", "WHERE a = $ AND b = $1", "WHERE a = $ AND b = $1"},
		{"unclosed literal", "WHERE a = '$1", "WHERE a = '$1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := anonymous(tt.in); got != tt.want {
				t.Errorf("anonymous(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
