package hw

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// memRoot writes files (path relative to root → content) under a new root.
func memRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const meminfo4G = "MemTotal:        4194304 kB\nMemFree:         1000000 kB\n"

func TestReadMemory(t *testing.T) {
	for _, tc := range []struct {
		name         string
		files        map[string]string
		total, limit uint64
		available    uint64
	}{
		{"no control group", map[string]string{"proc/meminfo": meminfo4G},
			4 << 30, 0, 4 << 30},
		{"systemd service with MemoryMax (v2)", map[string]string{
			"proc/meminfo":     meminfo4G,
			"proc/self/cgroup": "0::/system.slice/tally.service\n",
			"sys/fs/cgroup/system.slice/tally.service/memory.max": "2147483648\n",
		}, 4 << 30, 2 << 30, 2 << 30},
		{"v2 group without a limit", map[string]string{
			"proc/meminfo":     meminfo4G,
			"proc/self/cgroup": "0::/user.slice/session-1.scope\n",
			"sys/fs/cgroup/user.slice/session-1.scope/memory.max": "max\n",
		}, 4 << 30, 0, 4 << 30},
		{"container in its own cgroup namespace", map[string]string{
			"proc/meminfo":             meminfo4G,
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "536870912\n",
		}, 4 << 30, 512 << 20, 512 << 20},
		{"v1 memory controller", map[string]string{
			"proc/meminfo":     meminfo4G,
			"proc/self/cgroup": "12:cpu,cpuacct:/docker/abc\n9:memory:/docker/abc\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "1073741824\n",
		}, 4 << 30, 1 << 30, 1 << 30},
		{"v1 unlimited", map[string]string{
			"proc/meminfo":     meminfo4G,
			"proc/self/cgroup": "9:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
		}, 4 << 30, 0, 4 << 30},
		{"limit above the machine's memory", map[string]string{
			"proc/meminfo":                 meminfo4G,
			"proc/self/cgroup":             "0::/big\n",
			"sys/fs/cgroup/big/memory.max": "17179869184\n",
		}, 4 << 30, 16 << 30, 4 << 30},
		{"group name climbing out of the mount", map[string]string{
			"proc/meminfo":      meminfo4G,
			"proc/self/cgroup":  "0::/../../etc\n",
			"sys/fs/memory.max": "1024\n",
		}, 4 << 30, 0, 4 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ReadMemory(memRoot(t, tc.files))
			if err != nil {
				t.Fatal(err)
			}
			if m.Total != tc.total || m.Limit != tc.limit || m.Available() != tc.available {
				t.Fatalf("got total %d limit %d available %d, want %d %d %d", m.Total, m.Limit, m.Available(), tc.total, tc.limit, tc.available)
			}
		})
	}
}

func TestReadMemoryRefusesBadMeminfo(t *testing.T) {
	for _, meminfo := range []string{"", "MemFree: 10 kB\n", "MemTotal: lots kB\n", "MemTotal: 0 kB\n", "MemTotal: 4096 MB\n"} {
		if m, err := ReadMemory(memRoot(t, map[string]string{"proc/meminfo": meminfo})); err == nil {
			t.Errorf("meminfo %q: read %+v, want an error", meminfo, m)
		}
	}
}

// TestReadMemoryOfThisMachine reads the real files: whatever they say, the
// total is plausible and the limit, when there is one, is positive.
func TestReadMemoryOfThisMachine(t *testing.T) {
	m, err := ReadMemory("")
	if err != nil {
		t.Skipf("no /proc/meminfo here: %v", err)
	}
	if m.Total < 16<<20 || m.Available() == 0 || m.Available() > m.Total {
		t.Fatalf("implausible %+v", m)
	}
}

// FuzzMemoryFiles feeds the three parsers any text: none panics, and what
// they accept is in range.
func FuzzMemoryFiles(f *testing.F) {
	f.Add([]byte(meminfo4G), []byte("0::/system.slice/tally.service\n9:memory:/docker/abc\n"), []byte("2147483648\n"))
	f.Add([]byte("MemTotal: 99999999999999999999 kB"), []byte("0::/../x\n::\n"), []byte("max"))
	f.Fuzz(func(t *testing.T, meminfo, cgroup, limit []byte) {
		if v, err := parseMemTotal(meminfo); err == nil && (v == 0 || v > 1<<54) {
			t.Fatalf("MemTotal %d accepted", v)
		}
		for _, p := range cgroupPaths(cgroup) {
			rel, err := filepath.Rel("/mnt", filepath.Join("/mnt", p.dir))
			if p.dir == "" || p.dir[0] != '/' || err != nil || strings.HasPrefix(rel, "..") {
				t.Fatalf("path %q accepted", p.dir)
			}
		}
		if v, ok := parseCgroupLimit(limit); ok && (v == 0 || v >= 1<<62) {
			t.Fatalf("limit %d accepted", v)
		}
	})
}
