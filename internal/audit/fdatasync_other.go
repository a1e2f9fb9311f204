//go:build !linux

package audit

import "os"

// fdatasync flushes f to disk; outside Linux it is fsync.
func fdatasync(f *os.File) error { return f.Sync() }
