//go:build unix

package audience

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time this process has used, user and system; the
// bench reports it beside wall time, which other work on the machine skews.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
