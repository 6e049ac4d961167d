package appliance

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bounds of each wait. Under software emulation the firmware, the kernel
// and tallyd's first start (key generation, the raft store) take a minute
// or two on a loaded machine.
const (
	bootTimeout     = 5 * time.Minute // QEMU started → "Starting tallyd: OK"
	healthTimeout   = 3 * time.Minute // → /api/v1/health answers through the forwarded port
	commandTimeout  = time.Minute     // one command typed on the console
	requestTimeout  = 30 * time.Second
	agentTimeout    = 2 * time.Minute
	poweroffTimeout = 2 * time.Minute // "poweroff" typed → QEMU exited
)

// What QEMU and the kernel command line give the machine. The serials are
// at most 20 characters, virtio-blk's limit.
const (
	hostname     = "tally-e2e"
	mac          = "52:54:00:12:34:56"
	uuid         = "5f6e2a3c-1b4d-4e8f-9a0b-1c2d3e4f5a6b"
	systemSerial = "TALLY-E2E-0001"   // SMBIOS type 1
	boardSerial  = "TALLY-E2E-BRD-01" // SMBIOS type 2
	diskSerial   = "TALLY-E2E-DISK-01"
)

type hostID struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// TestApplianceBoots boots the image and follows one life of the
// appliance: tallyd started by S90tally, health through the forwarded
// port, the machine's HostIDs, a checkout from tally-agent on the host,
// and a graceful stop when "poweroff" is typed on the console.
func TestApplianceBoots(t *testing.T) {
	if os.Getenv("TALLY_E2E") != "1" {
		t.Skip("the appliance end-to-end test boots an arm64 image under qemu-system-aarch64 and runs only with TALLY_E2E=1: make e2e-appliance")
	}
	image := imageDir(t)
	agent := buildAgent(t)
	started := time.Now()
	step := func(format string, args ...any) {
		t.Logf("%6.1fs  %s", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}

	vm := startVM(t, image)
	step("QEMU started: %s", strings.Join(vm.cmd.Args, " "))
	c := vm.console

	m, err := c.waitFor(0, regexp.MustCompile(`Starting tallyd: (OK|FAIL.*)\n`), bootTimeout)
	if err != nil {
		t.Fatalf("S90tally did not start tallyd within %s: %v", bootTimeout, err)
	}
	if m[1] != "OK" {
		t.Fatalf("S90tally start: %s", m[1])
	}
	step("booted: S90tally started tallyd")
	for _, line := range c.lines(regexp.MustCompile(`^(init|udhcpc): .*`)) {
		step("console: %s", line)
	}

	var health struct {
		Status, Node, Version, Fingerprint string
	}
	err = poll(healthTimeout, func() error {
		return getJSON(vm.url("/api/v1/health"), "", &health)
	})
	if err != nil {
		t.Fatalf("/api/v1/health did not answer within %s: %v", healthTimeout, err)
	}
	step("health: %+v", health)
	if health.Status != "ok" || health.Node != hostname {
		t.Errorf("health is %+v: want status ok and node %s (the host name from tally.hostname=)", health, hostname)
	}

	if _, err := c.waitFor(0, regexp.MustCompile(`/ # `), commandTimeout); err != nil {
		t.Fatalf("no shell on the console: %v", err)
	}
	cmdline := c.mustRun(t, `tr '\0' ' ' </proc/$(cat /var/run/tallyd.pid)/cmdline`)
	user := c.mustRun(t, `stat -c %U /proc/$(cat /var/run/tallyd.pid)`)
	step("tallyd runs as %s: %s", user, cmdline)
	// Without --dev tallyd has no rights to grant; the rest is checked.
	dev := strings.Contains(cmdline, "--dev")
	if !dev {
		t.Errorf("tallyd runs as %q, without --dev: the TALLYD_ARGS that /init exports for tally.dev=1 did not reach it "+
			"(do S90tally or /etc/default/tally set TALLYD_ARGS over the environment's?); the checkout is left out", cmdline)
	}
	password := c.mustRun(t, "cat /var/lib/tally/initial-admin-password")
	if password == "" {
		t.Fatal("/var/lib/tally/initial-admin-password is empty")
	}
	token := login(t, vm, password)

	var server struct {
		Version string   `json:"version"`
		HostIDs []hostID `json:"hostIds"`
	}
	if err := getJSON(vm.url("/api/v1/server"), token, &server); err != nil {
		t.Fatalf("GET /api/v1/server: %v", err)
	}
	step("hostids: %v", server.HostIDs)
	for _, want := range []hostID{
		{"ETHERNET", mac},
		{"UUID", uuid},
		{"SERIAL", systemSerial},
		{"SERIAL", boardSerial},
		{"SERIAL", diskSerial},
	} {
		if !slices.ContainsFunc(server.HostIDs, func(h hostID) bool {
			return h.Type == want.Type && strings.EqualFold(h.Value, want.Value)
		}) {
			t.Errorf("GET /api/v1/server: hostids %v lack %s %s", server.HostIDs, want.Type, want.Value)
		}
	}

	if dev {
		grant := checkout(t, agent, vm.port, "cad", "1.0", 1)
		step("tally-agent on the host: %s", grant)
		var features struct {
			Items []struct {
				Name    string `json:"name"`
				Version string `json:"version"`
				Used    int64  `json:"used"`
			} `json:"items"`
		}
		if err := getJSON(vm.url("/api/v1/features?name=cad"), token, &features); err != nil {
			t.Fatalf("GET /api/v1/features: %v", err)
		}
		if len(features.Items) != 1 || features.Items[0].Used != 1 {
			t.Errorf("GET /api/v1/features?name=cad: %+v, want cad 1.0 with 1 used", features.Items)
		}
	}

	// poweroff: busybox init runs rcK, which runs "S90tally stop"; then it
	// prints the end of tallyd's log and powers off.
	mark := c.mark()
	off := time.Now()
	c.send("poweroff")
	select {
	case <-vm.exited:
	case <-time.After(poweroffTimeout):
		t.Fatalf("QEMU still runs %s after poweroff; the console since:\n%s", poweroffTimeout, c.since(mark))
	}
	step("powered off in %.1fs, QEMU: %v", time.Since(off).Seconds(), vm.err)
	shutdown := c.since(mark)
	t.Logf("the console after poweroff:\n%s", shutdown)
	for _, want := range []struct{ what, re string }{
		{"S90tally stop, without SIGKILL", `Stopping tallyd: OK`},
		{"tallyd's own last log line", `level=INFO msg=stopped`},
		{"S90tally's log line", `S90tally: tallyd stopped`},
		{"the kernel's power-off", `reboot: Power down`},
	} {
		if line := regexp.MustCompile(`(?m)^.*` + want.re + `.*$`).FindString(shutdown); line != "" {
			step("shutdown: %s", line)
		} else {
			t.Errorf("the console shows no %s (%q) after poweroff:\n%s", want.what, want.re, shutdown)
		}
	}
	if vm.err != nil {
		t.Errorf("QEMU: %v", vm.err)
	}
}

// imageDir is the image to boot: TALLY_APPLIANCE, or dist/appliance-arm64
// of this module.
func imageDir(t *testing.T) string {
	dir := os.Getenv("TALLY_APPLIANCE")
	if dir == "" {
		dir = filepath.Join("..", "..", "dist", "appliance-arm64")
	}
	for _, f := range []string{"vmlinuz", "initramfs.cpio.gz"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("no image in %s (%v): make appliance-arm64 builds it", dir, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "manifest")); err == nil {
		t.Logf("image %s:\n%s", dir, strings.TrimSpace(string(b)))
	}
	return dir
}

// buildAgent builds tally-agent for this machine.
func buildAgent(t *testing.T) string {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	out := filepath.Join(t.TempDir(), "tally-agent")
	build := exec.Command(goTool, "build", "-o", out, "github.com/tallyhq/tally/cmd/tally-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build tally-agent: %v\n%s", err, b)
	}
	return out
}

// firmware finds the UEFI firmware for QEMU's arm virt machine and returns
// QEMU's arguments for it: QEMU_EFI.fd as -bios, or AAVMF's code (and a
// copy of its variables) as pflash.
func firmware(t *testing.T) []string {
	if f := os.Getenv("TALLY_QEMU_EFI"); f != "" {
		return []string{"-bios", f}
	}
	if f := "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"; exists(f) {
		return []string{"-bios", f}
	}
	code, vars := "/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/AAVMF/AAVMF_VARS.fd"
	if exists(code) && exists(vars) {
		b, err := os.ReadFile(vars)
		if err != nil {
			t.Fatal(err)
		}
		copyOfVars := filepath.Join(t.TempDir(), "vars.fd")
		if err := os.WriteFile(copyOfVars, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + code,
			"-drive", "if=pflash,format=raw,unit=1,file=" + copyOfVars,
		}
	}
	t.Fatal("no UEFI firmware for arm64 (QEMU_EFI.fd or AAVMF): apt-get install qemu-efi-aarch64, or set TALLY_QEMU_EFI")
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// vm is the appliance running in QEMU.
type vm struct {
	cmd     *exec.Cmd
	port    int // the host's end of the forwarded 8443
	console *console
	exited  chan struct{} // closed when QEMU has exited; err is then set
	err     error
}

func (v *vm) url(path string) string {
	return fmt.Sprintf("https://127.0.0.1:%d%s", v.port, path)
}

// startVM boots the image with the known HostIDs, its console on QEMU's
// standard input and output, and kills QEMU when the test ends.
func startVM(t *testing.T, image string) *vm {
	qemu, err := exec.LookPath("qemu-system-aarch64")
	if err != nil {
		t.Fatal("qemu-system-aarch64 is missing: apt-get install qemu-system-arm qemu-efi-aarch64")
	}
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	args := []string{
		"-M", "virt", "-cpu", "cortex-a72", "-m", "1024", "-smp", "2",
		"-accel", "tcg",
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
	}
	args = append(args, firmware(t)...)
	args = append(args,
		"-kernel", filepath.Join(image, "vmlinuz"),
		"-initrd", filepath.Join(image, "initramfs.cpio.gz"),
		"-append", "console=ttyAMA0 panic=-1 tally.hostname="+hostname+" tally.dev=1",
		"-smbios", "type=1,serial="+systemSerial+",uuid="+uuid,
		"-smbios", "type=2,serial="+boardSerial,
		"-nic", fmt.Sprintf("user,model=virtio-net-pci,mac=%s,hostfwd=tcp:127.0.0.1:%d-:8443", mac, port),
		"-drive", "if=none,id=disk0,format=raw,file="+disk,
		"-device", "virtio-blk-pci,drive=disk0,serial="+diskSerial,
		"-device", "virtio-rng-pci",
	)
	cmd := exec.Command(qemu, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	transcript, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	v := &vm{cmd: cmd, port: port, console: newConsole(stdin), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start QEMU: %v", err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		v.console.read(io.TeeReader(stdout, transcript))
	}()
	go func() {
		<-read
		err := cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
		}
		v.err = err
		close(v.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-v.exited:
		default:
			cmd.Process.Kill()
			<-v.exited
		}
		transcript.Close()
		if t.Failed() {
			t.Logf("QEMU: %v\nthe console, last lines:\n%s", v.err, v.console.tail(8000))
		}
	})
	return v
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// console is the appliance's serial console: what it printed, with
// carriage returns and terminal escape sequences removed, and a way to type.
type console struct {
	in io.Writer

	mu      sync.Mutex
	text    []byte
	closed  bool
	changed chan struct{} // closed and replaced whenever text grows or the console ends
	seq     int
}

func newConsole(in io.Writer) *console {
	return &console{in: in, changed: make(chan struct{})}
}

// escape matches a terminal control sequence, such as the cursor position
// query busybox's shell sends before each prompt; pendingEscape matches one
// that a read may have cut short.
var (
	escape        = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])`)
	pendingEscape = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*)?$`)
)

func (c *console) read(r io.Reader) {
	buf := make([]byte, 4096)
	var pending []byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			pending = append(pending, buf[:n]...)
			clean := escape.ReplaceAll(bytes.ReplaceAll(pending, []byte("\r"), nil), nil)
			clean = bytes.ReplaceAll(clean, []byte{0}, nil)
			pending = pending[:0]
			if loc := pendingEscape.FindIndex(clean); loc != nil {
				pending = append(pending, clean[loc[0]:]...)
				clean = clean[:loc[0]]
			}
			c.mu.Lock()
			c.text = append(c.text, clean...)
			close(c.changed)
			c.changed = make(chan struct{})
			c.mu.Unlock()
		}
		if err != nil {
			c.mu.Lock()
			c.closed = true
			close(c.changed)
			c.changed = make(chan struct{})
			c.mu.Unlock()
			return
		}
	}
}

// mark is where the console's text ends now.
func (c *console) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.text)
}

func (c *console) since(mark int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.text[mark:])
}

func (c *console) tail(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.text[max(0, len(c.text)-n):])
}

// lines returns the lines that re matches.
func (c *console) lines(re *regexp.Regexp) []string {
	var out []string
	for line := range strings.Lines(c.since(0)) {
		if s := re.FindString(strings.TrimSuffix(line, "\n")); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// waitFor waits up to timeout for re to match the text after mark and
// returns the submatches.
func (c *console) waitFor(mark int, re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		m := re.FindSubmatch(c.text[mark:])
		closed, changed := c.closed, c.changed
		c.mu.Unlock()
		if m != nil {
			out := make([]string, len(m))
			for i, s := range m {
				out[i] = string(s)
			}
			return out, nil
		}
		if closed {
			return nil, fmt.Errorf("the console ended before %q", re)
		}
		select {
		case <-changed:
		case <-deadline:
			return nil, fmt.Errorf("%q did not appear within %s", re, timeout)
		}
	}
}

func (c *console) send(line string) {
	io.WriteString(c.in, line+"\n")
}

// run types cmd at the shell prompt and returns what it printed, without
// the trailing newline, and its exit status. Its output is framed by
// markers that the echo of the typed line cannot contain.
func (c *console) run(cmd string, timeout time.Duration) (string, int, error) {
	c.mu.Lock()
	c.seq++
	n := c.seq
	c.mu.Unlock()
	mark := c.mark()
	c.send(fmt.Sprintf(`printf '@%%s@\n' B%d; %s; printf '@%%s@%%s\n' E%d $?`, n, cmd, n))
	re := regexp.MustCompile(fmt.Sprintf(`(?s)@B%d@\n(.*?)@E%d@(\d+)\n`, n, n))
	m, err := c.waitFor(mark, re, timeout)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", cmd, err)
	}
	status, _ := strconv.Atoi(m[2])
	return strings.TrimSuffix(m[1], "\n"), status, nil
}

// mustRun runs cmd on the console and fails the test unless it exits 0.
func (c *console) mustRun(t *testing.T, cmd string) string {
	t.Helper()
	out, status, err := c.run(cmd, commandTimeout)
	if err != nil {
		t.Fatalf("console: %v", err)
	}
	if status != 0 {
		t.Fatalf("console: %s: exit status %d\n%s", cmd, status, out)
	}
	return strings.TrimSpace(out)
}

// poll calls f until it succeeds or timeout has passed.
func poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(2 * time.Second)
	}
}

// client trusts the certificate tallyd made at its first start: the test
// has no copy of it (nothing is copied out of the image).
var client = &http.Client{
	Timeout:   requestTimeout,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
}

func getJSON(url, token string, v any) error {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(req, v)
}

func do(req *http.Request, v any) error {
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, res.Status, bytes.TrimSpace(body))
	}
	return json.Unmarshal(body, v)
}

func login(t *testing.T, v *vm, password string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"user": "admin", "password": password})
	req, err := http.NewRequest("POST", v.url("/api/v1/auth/login"), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	var res struct {
		Token string `json:"token"`
	}
	if err := do(req, &res); err != nil {
		t.Fatalf("log in as admin with the password from the console: %v", err)
	}
	return res.Token
}

// checkout runs the host's tally-agent against the appliance and returns
// the grant it printed.
func checkout(t *testing.T, agent string, port int, feature, version string, count int64) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), agentTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, agent,
		"--server", fmt.Sprintf("wss://127.0.0.1:%d/ws/device", port), "--insecure",
		"--hostid", "e2e-1", "--json",
		"checkout", feature, version, strconv.FormatInt(count, 10))
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("tally-agent checkout did not end within %s", agentTimeout)
	}
	if err != nil {
		t.Fatalf("tally-agent checkout %s %s %d: %v\n%s%s", feature, version, count, err, out, stderr.Bytes())
	}
	var res struct {
		Grants []struct {
			Feature string    `json:"feature"`
			Version string    `json:"version"`
			Count   int64     `json:"count"`
			Expiry  time.Time `json:"expiry"`
		} `json:"grants"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("tally-agent checkout printed %q: %v", out, err)
	}
	if len(res.Grants) != 1 || res.Grants[0].Feature != feature || res.Grants[0].Count != count {
		t.Fatalf("tally-agent checkout %s %s %d: grants %+v", feature, version, count, res.Grants)
	}
	g := res.Grants[0]
	return fmt.Sprintf("%s %s: %d granted until %s", g.Feature, g.Version, g.Count, g.Expiry.Format(time.RFC3339))
}
