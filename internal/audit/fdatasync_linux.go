package audit

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data (and the size, when it grew) to disk, without
// the metadata fsync would also write.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
