package buildroot

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// shell is a way to run S90tally: the host's POSIX sh (dash on Debian) with
// the host's tools, or busybox ash with nothing but busybox applets, as on
// the appliance.
type shell struct {
	name string
	argv []string // before the script's path
	path string   // PATH
}

func hostShell() shell {
	return shell{name: "sh", argv: []string{"sh"}, path: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
}

// busyboxShell installs busybox's applets into a directory of their own,
// so that the script finds nothing else.
func busyboxShell(t *testing.T) (shell, bool) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return shell{}, false
	}
	dir := t.TempDir()
	if out, err := exec.Command(bb, "--install", "-s", dir).CombinedOutput(); err != nil {
		t.Fatalf("busybox --install: %v\n%s", err, out)
	}
	for _, applet := range []string{"sh", "start-stop-daemon", "id", "kill", "grep", "tr", "date", "chown"} {
		if _, err := os.Lstat(filepath.Join(dir, applet)); err != nil {
			t.Logf("busybox lacks %s", applet)
			return shell{}, false
		}
	}
	return shell{name: "busybox", argv: []string{bb, "sh"}, path: dir}, true
}

// initRoot is a temporary root holding what S90tally touches, at the same
// paths as on the appliance, with TALLY_ROOT pointing at it.
type initRoot struct {
	t     *testing.T
	dir   string
	sh    shell
	port  int
	extra []string
}

type rootOptions struct {
	user        string // TALLY_USER
	stopTimeout int    // STOP_TIMEOUT
	daemon      string // a replacement for tallyd, as a script; "" for tallyd
}

func newInitRoot(t *testing.T, sh shell, opts rootOptions) *initRoot {
	t.Helper()
	dir := t.TempDir()
	// The user tallyd runs as must reach its files.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r := &initRoot{t: t, dir: dir, sh: sh, port: freePort(t)}

	if opts.daemon != "" {
		writeFile(t, r.path("/usr/bin/tallyd"), opts.daemon, 0o755)
	} else {
		copyFile(t, tallyd(t), r.path("/usr/bin/tallyd"), 0o755)
	}
	copyFile(t, filepath.Join(treeDir, "package/tally/S90tally"), r.path("/etc/init.d/S90tally"), 0o755)

	// The package's default settings, with the data directory under the
	// root (tallyd does not know TALLY_ROOT) and ports no other test uses.
	writeFile(t, r.path("/etc/tally/tallyd.json"),
		tallyConfig(t, "json", r.path("/var/lib/tally"), strconv.Itoa(r.port), "/var/lib/tally-exchange", "https://backoffice.example.com"), 0o644)
	defaults := tallyConfig(t, "defaults", "/var/lib/tally")
	args := fmt.Sprintf("--bind 127.0.0.1 --discovery-port 0 --raft-port %d", freePort(t))
	defaults = strings.Replace(defaults, `TALLYD_ARGS=""`, `TALLYD_ARGS="`+args+`"`, 1)
	defaults = strings.Replace(defaults, `TALLY_USER="tally"`, `TALLY_USER="`+opts.user+`"`, 1)
	if opts.stopTimeout > 0 {
		defaults = strings.Replace(defaults, "STOP_TIMEOUT=30", "STOP_TIMEOUT="+strconv.Itoa(opts.stopTimeout), 1)
	}
	writeFile(t, r.path("/etc/default/tally"), defaults, 0o644)

	t.Cleanup(r.cleanup)
	return r
}

func (r *initRoot) path(p string) string { return filepath.Join(r.dir, p) }

// do runs "S90tally action" and returns its output and exit code.
func (r *initRoot) do(action string) (string, int) {
	r.t.Helper()
	env := append([]string{"PATH=" + r.sh.path, "TALLY_ROOT=" + r.dir, "HOME=/", "LC_ALL=C"}, r.extra...)
	args := append(append([]string{}, r.sh.argv[1:]...), r.path("/etc/init.d/S90tally"), action)
	return run(r.t, "/", env, 90*time.Second, r.sh.argv[0], args...)
}

func (r *initRoot) pid() int           { return readPid(r.path("/var/run/tallyd.pid")) }
func (r *initRoot) supervisorPid() int { return readPid(r.path("/var/run/tallyd-supervisor.pid")) }
func (r *initRoot) log() string        { return readFile(r.t, r.path("/var/log/tally.log")) }

// cleanup ends whatever a failed test left running.
func (r *initRoot) cleanup() {
	for _, pid := range []int{r.supervisorPid(), r.pid()} {
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if r.t.Failed() {
		if b, err := os.ReadFile(r.path("/var/log/tally.log")); err == nil {
			r.t.Logf("tally.log:\n%s", b)
		}
	}
}

// TestInitScript runs S90tally for real, as the appliance does: start,
// status, restart, a tallyd killed with SIGKILL and started again, and a
// graceful stop.
func TestInitScript(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tallyd")
	}
	shells := []struct {
		sh   shell
		user string
	}{{hostShell(), "tally"}}
	if bb, ok := busyboxShell(t); ok {
		// busybox's start-stop-daemon changes user when we are root.
		shells = append(shells, struct {
			sh   shell
			user string
		}{bb, "nobody"})
	} else {
		t.Log("no busybox here: S90tally runs under the host's sh only")
	}
	for _, c := range shells {
		t.Run(c.sh.name, func(t *testing.T) { testInitScript(t, c.sh, c.user) })
	}
}

func testInitScript(t *testing.T, sh shell, userName string) {
	r := newInitRoot(t, sh, rootOptions{user: userName})
	// As an init that takes them from the kernel command line passes them.
	r.extra = []string{"TALLYD_ARGS=--node-id from-env"}

	// Which user tallyd should run as.
	wantUID := os.Geteuid()
	noUser := false
	if os.Geteuid() == 0 {
		if u, err := user.Lookup(userName); err == nil {
			wantUID, _ = strconv.Atoi(u.Uid)
		} else {
			noUser = true
		}
	}

	if out, code := r.do("status"); code != 3 || !strings.Contains(out, "stopped") {
		t.Fatalf("status before start: exit %d, %q; want 3, stopped", code, out)
	}

	// start
	out, code := r.do("start")
	if code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("start: exit %d\n%s", code, out)
	}
	if noUser && !strings.Contains(out, "user "+userName+" does not exist: running tallyd as root") {
		t.Errorf("start without the user %s: output does not say tallyd runs as root:\n%s", userName, out)
	}
	fingerprint := waitHealthy(t, r.port, time.Minute)
	if h, _ := healthOf(r.port); h.Node != "from-env" {
		t.Errorf("node %q: the TALLYD_ARGS of the environment did not reach tallyd", h.Node)
	}
	pid := r.pid()
	if !alive(pid) {
		t.Fatalf("pid file names %d, which is not running", pid)
	}
	if uid := processUID(t, pid); uid != wantUID {
		t.Errorf("tallyd runs as uid %d, want %d (%s)", uid, wantUID, userName)
	}
	if wantUID != os.Geteuid() {
		var st syscall.Stat_t
		if err := syscall.Stat(r.path("/var/lib/tally"), &st); err != nil || int(st.Uid) != wantUID {
			t.Errorf("data directory owned by uid %d, want %d (%v)", st.Uid, wantUID, err)
		}
	}
	if out, code := r.do("start"); code != 0 || !strings.Contains(out, "already running") || r.pid() != pid {
		t.Errorf("second start: exit %d, %q, pid %d (was %d)", code, out, r.pid(), pid)
	}

	// status
	out, code = r.do("status")
	if want := fmt.Sprintf("tallyd is running (pid %d)", pid); code != 0 || !strings.Contains(out, want) {
		t.Errorf("status: exit %d, %q; want 0, %q", code, out, want)
	}

	// restart: a new tallyd on the same data
	out, code = r.do("restart")
	if code != 0 || strings.Count(out, "OK") != 2 {
		t.Fatalf("restart: exit %d\n%s", code, out)
	}
	if fp := waitHealthy(t, r.port, time.Minute); fp != fingerprint {
		t.Errorf("after restart the licensing ID is %s, was %s: the data was not kept", fp, fingerprint)
	}
	newPid := r.pid()
	if newPid == pid || !alive(newPid) || alive(pid) {
		t.Errorf("restart: pid %d -> %d (old alive %v, new alive %v)", pid, newPid, alive(pid), alive(newPid))
	}
	pid = newPid

	// respawn: tallyd killed without warning is started again
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !eventually(30*time.Second, func() bool { p := r.pid(); return p != pid && alive(p) }) {
		t.Fatalf("tallyd (pid %d) killed: not started again; pid file says %d", pid, r.pid())
	}
	if fp := waitHealthy(t, r.port, time.Minute); fp != fingerprint {
		t.Errorf("after the respawn the licensing ID is %s, was %s", fp, fingerprint)
	}
	if !strings.Contains(r.log(), "tallyd exited with status 137: starting it again") {
		t.Errorf("the log does not say tallyd was started again:\n%s", r.log())
	}
	pid = r.pid()
	supervisor := r.supervisorPid()

	// stop: graceful, nothing left
	out, code = r.do("stop")
	if code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("stop: exit %d\n%s", code, out)
	}
	if alive(pid) || alive(supervisor) {
		t.Errorf("after stop: tallyd (%d) alive %v, supervisor (%d) alive %v", pid, alive(pid), supervisor, alive(supervisor))
	}
	for _, f := range []string{"/var/run/tallyd.pid", "/var/run/tallyd-supervisor.pid"} {
		if _, err := os.Stat(r.path(f)); err == nil {
			t.Errorf("%s left after stop", f)
		}
	}
	// tallyd logs "shutting down" and then "stopped" only when it shut down
	// gracefully, after closing its store.
	last := r.log()
	if i := strings.LastIndex(last, fmt.Sprintf("started tallyd (pid %d)", pid)); i >= 0 {
		last = last[i:]
	} else {
		t.Errorf("log does not say tallyd %d was started", pid)
	}
	for _, want := range []string{`msg="shutting down"`, "msg=stopped", "S90tally: tallyd stopped"} {
		if !strings.Contains(last, want) {
			t.Errorf("log after the last start lacks %q:\n%s", want, last)
		}
	}
	if strings.Contains(last, "killing it") {
		t.Errorf("stop needed SIGKILL:\n%s", last)
	}
	if _, err := health(r.port); err == nil {
		t.Error("health still answers after stop")
	}
	if out, code := r.do("status"); code != 3 {
		t.Errorf("status after stop: exit %d, %q; want 3", code, out)
	}
	if out, code := r.do("stop"); code != 0 || !strings.Contains(out, "not running") {
		t.Errorf("stop when stopped: exit %d, %q", code, out)
	}
}

// TestInitScriptKillsAfterTimeout checks that stop does not wait forever
// for a daemon that ignores SIGTERM.
func TestInitScriptKillsAfterTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	stubborn := "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 1; done\n"
	r := newInitRoot(t, hostShell(), rootOptions{user: "root", stopTimeout: 2, daemon: stubborn})
	if out, code := r.do("start"); code != 0 {
		t.Fatalf("start: exit %d\n%s", code, out)
	}
	pid := r.pid()
	start := time.Now()
	out, code := r.do("stop")
	if code != 1 || !strings.Contains(out, "KILLED") {
		t.Errorf("stop of a daemon ignoring SIGTERM: exit %d, %q; want 1, KILLED", code, out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stop took %s with STOP_TIMEOUT=2", d)
	}
	if !eventually(5*time.Second, func() bool { return !alive(pid) }) {
		t.Errorf("daemon %d still alive after stop", pid)
	}
	if !strings.Contains(r.log(), "did not stop within 2s: killing it") {
		t.Errorf("log does not say it killed the daemon:\n%s", r.log())
	}
}

var uidLine = regexp.MustCompile(`(?m)^Uid:\s+(\d+)`)

func processUID(t *testing.T, pid int) int {
	t.Helper()
	m := uidLine.FindStringSubmatch(readFile(t, fmt.Sprintf("/proc/%d/status", pid)))
	if m == nil {
		t.Fatalf("no Uid in /proc/%d/status", pid)
	}
	uid, _ := strconv.Atoi(m[1])
	return uid
}
