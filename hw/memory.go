package hw

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Memory is the memory the machine has and what the control group tallyd
// runs in lets it use.
type Memory struct {
	// Total is MemTotal of /proc/meminfo, in bytes.
	Total uint64
	// Limit is the memory limit of the process's control group (cgroup v2
	// memory.max, or v1 memory.limit_in_bytes), in bytes; 0 when none is
	// set or it cannot be read.
	Limit uint64
}

// Available is what the process may use: Limit when it is set and below
// Total, else Total.
func (m Memory) Available() uint64 {
	if m.Limit > 0 && m.Limit < m.Total {
		return m.Limit
	}
	return m.Total
}

// ReadMemory reads the machine's memory and the process's control group
// limit from the file system under root ("" for "/"). It fails only when
// MemTotal cannot be read; a control group without a limit, or one that
// cannot be read, leaves Limit at 0.
func ReadMemory(root string) (Memory, error) {
	fs := sysfs{root: root}
	if root == "" {
		fs.root = "/"
	}
	total, err := parseMemTotal(fs.read("proc", "meminfo"))
	if err != nil {
		return Memory{}, err
	}
	m := Memory{Total: total}
	for _, path := range cgroupPaths(fs.read("proc", "self", "cgroup")) {
		var raw []byte
		if path.v1 {
			raw = fs.read("sys", "fs", "cgroup", "memory", path.dir, "memory.limit_in_bytes")
		} else {
			raw = fs.read("sys", "fs", "cgroup", path.dir, "memory.max")
		}
		if limit, ok := parseCgroupLimit(raw); ok && (m.Limit == 0 || limit < m.Limit) {
			m.Limit = limit
		}
	}
	return m, nil
}

// parseMemTotal returns MemTotal of a /proc/meminfo text, in bytes.
func parseMemTotal(meminfo []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "MemTotal:" || f[2] != "kB" {
			continue
		}
		kb, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil || kb == 0 || kb > 1<<44 {
			return 0, fmt.Errorf("meminfo: MemTotal %q is not a size in kB", f[1])
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("meminfo: no MemTotal line")
}

// cgroupPath is where a control group of /proc/self/cgroup sits under
// /sys/fs/cgroup (v2) or /sys/fs/cgroup/memory (v1).
type cgroupPath struct {
	dir string
	v1  bool
}

// cgroupPaths returns the memory control groups a /proc/self/cgroup text
// names: the unified (v2) one and the v1 memory controller's. A group that
// would lie outside the mount is left out; so is "/" (the whole machine).
// Inside a container with its own cgroup namespace the group reads "/" and
// the container's limit sits at the mount's root, which is checked too.
func cgroupPaths(text []byte) []cgroupPath {
	var out []cgroupPath
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 || !strings.HasPrefix(f[2], "/") || strings.Contains(f[2], "/..") {
			continue
		}
		switch {
		case f[0] == "0" && f[1] == "":
			out = append(out, cgroupPath{dir: f[2]})
		case slices.Contains(strings.Split(f[1], ","), "memory"):
			out = append(out, cgroupPath{dir: f[2], v1: true})
		}
	}
	if len(out) > 0 {
		// A namespaced container sees its own group as the root.
		out = append(out, cgroupPath{dir: "/", v1: out[0].v1})
	}
	return out
}

// parseCgroupLimit reads a memory.max or memory.limit_in_bytes value: a
// byte count, "max" (none) or v1's huge page-rounded "unlimited". It
// reports false for no limit or an unreadable value.
func parseCgroupLimit(raw []byte) (uint64, bool) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "max" {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 || v >= 1<<62 {
		return 0, false
	}
	return v, true
}
