package main

import (
	"log/slog"
	"runtime/debug"

	"github.com/tallyhq/tally/hw"
)

// memoryShare is the part of the memory the machine, or tallyd's control
// group, gives it that tallyd's Go runtime sets as its soft memory limit.
// The rest is for the kernel, the page cache of the raft log and the
// connector processes.
const memoryShare = 0.75

// setMemoryLimit gives the Go runtime a soft memory limit, unless
// GOMEMLIMIT already set one: memoryShare of hw.Memory.Available under
// root ("" for "/"). Below the limit the collector lets the heap grow to
// twice what is live (GOGC), which costs the least CPU; near it the
// collector runs more often, so that an appliance holding many idle
// devices trades CPU for memory instead of running out. It returns the
// limit in force, or 0 when none is set.
func setMemoryLimit(log *slog.Logger, getenv func(string) string, root string) int64 {
	if v := getenv("GOMEMLIMIT"); v != "" {
		limit := debug.SetMemoryLimit(-1) // the runtime has read it
		log.Info("memory limit", "limit", limit, "from", "GOMEMLIMIT="+v)
		return limit
	}
	m, err := hw.ReadMemory(root)
	if err != nil {
		log.Warn("no memory limit: the machine's memory cannot be read", "err", err)
		return 0
	}
	limit := int64(float64(m.Available()) * memoryShare)
	debug.SetMemoryLimit(limit)
	log.Info("memory limit", "limit", limit, "machine", m.Total, "cgroup", m.Limit)
	return limit
}
