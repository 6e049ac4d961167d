package buildroot

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	// treeDir is buildroot/, the BR2_EXTERNAL tree; repoDir the repository.
	treeDir, repoDir string

	tallydOnce sync.Once
	tallydPath string
	tallydErr  error
	binDir     string
)

func TestMain(m *testing.M) {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	treeDir, repoDir = wd, filepath.Dir(wd)
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// tallyd builds tallyd from this tree once, static as on the appliance.
func tallyd(t *testing.T) string {
	t.Helper()
	tallydOnce.Do(func() {
		binDir, tallydErr = os.MkdirTemp("", "tally-buildroot-")
		if tallydErr != nil {
			return
		}
		// Others (the user nobody in a test) must reach the binary.
		if tallydErr = os.Chmod(binDir, 0o755); tallydErr != nil {
			return
		}
		tallydPath = filepath.Join(binDir, "tallyd")
		cmd := exec.Command("go", "build", "-trimpath", "-o", tallydPath, "./cmd/tallyd")
		cmd.Dir = repoDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			tallydErr = fmt.Errorf("go build ./cmd/tallyd: %v\n%s", err, out)
		}
	})
	if tallydErr != nil {
		t.Fatal(tallydErr)
	}
	return tallydPath
}

// freePort returns a TCP port on loopback that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// health asks tallyd's GET /api/v1/health and returns the licensing ID
// fingerprint it reports.
func health(port int) (string, error) {
	h, err := healthOf(port)
	return h.Fingerprint, err
}

type healthResponse struct {
	Status      string `json:"status"`
	Node        string `json:"node"`
	Fingerprint string `json:"fingerprint"`
}

func healthOf(port int) (healthResponse, error) {
	client := &http.Client{
		Timeout:   3 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	defer client.CloseIdleConnections()
	var h healthResponse
	resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/api/v1/health", port))
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return h, err
	}
	if resp.StatusCode != http.StatusOK || h.Status != "ok" || h.Fingerprint == "" {
		return h, fmt.Errorf("health: %s, %+v", resp.Status, h)
	}
	return h, nil
}

// waitHealthy waits for tallyd on port to answer health.
func waitHealthy(t *testing.T, port int, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		fp, err := health(port)
		if err == nil {
			return fp
		}
		if time.Now().After(deadline) {
			t.Fatalf("tallyd on port %d not healthy within %s: %v", port, within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// alive reports whether pid is a running process (not a zombie).
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// readPid reads a pid file; 0 if there is none.
func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// eventually polls cond until it holds or within passes.
func eventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// run runs a command and returns its combined output and exit code.
func run(t *testing.T, dir string, env []string, timeout time.Duration, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: timed out after %s\n%s", name, strings.Join(args, " "), timeout, out)
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", name, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b), mode)
}

// tallyConfig runs package/tally/tally-config.sh.
func tallyConfig(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("sh", append([]string{filepath.Join(treeDir, "package/tally/tally-config.sh")}, args...)...).Output()
	if err != nil {
		t.Fatalf("tally-config.sh %v: %v", args, err)
	}
	return string(out)
}
