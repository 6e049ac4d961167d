package main

import (
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestSetMemoryLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	root := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	noEnv := func(string) string { return "" }

	// A machine of 4 GiB running tallyd in a service limited to 2 GiB.
	write("proc/meminfo", "MemTotal: 4194304 kB\n")
	write("proc/self/cgroup", "0::/system.slice/tally.service\n")
	write("sys/fs/cgroup/system.slice/tally.service/memory.max", "2147483648\n")
	if got := setMemoryLimit(log, noEnv, root); got != 3<<29 || debug.SetMemoryLimit(-1) != 3<<29 {
		t.Fatalf("limit %d, runtime %d, want 1.5 GiB", got, debug.SetMemoryLimit(-1))
	}

	// GOMEMLIMIT wins: the runtime's limit is left as it is.
	debug.SetMemoryLimit(1 << 30)
	if got := setMemoryLimit(log, func(k string) string {
		if k == "GOMEMLIMIT" {
			return "1GiB"
		}
		return ""
	}, root); got != 1<<30 || debug.SetMemoryLimit(-1) != 1<<30 {
		t.Fatalf("with GOMEMLIMIT: limit %d, runtime %d", got, debug.SetMemoryLimit(-1))
	}

	// Unreadable memory: no limit is set and the runtime's stays.
	debug.SetMemoryLimit(math.MaxInt64)
	write("proc/meminfo", "garbage\n")
	if got := setMemoryLimit(log, noEnv, root); got != 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatalf("bad meminfo: limit %d, runtime %d", got, debug.SetMemoryLimit(-1))
	}
}
