package plugins_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/plugins"
	"github.com/tallyhq/tally/plugins/builtin"
)

// The test binary plays three parts: the tests; a built-in connector when
// run as "<test binary> connector ..." (as tallyd is); and, with
// orphanChildEnv set, a host that the orphan test kills.
const (
	orphanChildEnv   = "TALLY_PLUGINS_TEST_ORPHAN_PIDFILE"
	testConnectorEnv = "TALLY_PLUGINS_TEST_CONNECTOR"
)

// testConnector is the path of the built test connector binary.
var testConnector string

func TestMain(m *testing.M) {
	if pidfile := os.Getenv(orphanChildEnv); pidfile != "" {
		os.Exit(runOrphanChild(os.Getenv(testConnectorEnv), pidfile))
	}
	if len(os.Args) > 1 && os.Args[1] == "connector" {
		os.Exit(builtin.Main(os.Args[2:]))
	}
	dir, err := os.MkdirTemp("", "tally-plugins-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testConnector = filepath.Join(dir, "testconnector")
	build := exec.Command("go", "build", "-o", testConnector, "github.com/tallyhq/tally/plugins/internal/testconnector")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the test connector: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runOrphanChild starts a connector under a host, says "ready" and waits
// to be killed.
func runOrphanChild(connector, pidfile string) int {
	sum, err := fileSHA256(connector)
	if err == nil {
		_, err = plugins.NewHost(plugins.Spec{
			Name:    "orphan",
			Command: []string{connector, "-pidfile", pidfile},
			SHA256:  sum,
		}, plugins.Config{})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	time.Sleep(5 * time.Minute) // the test kills this process long before
	return 1
}

func fileSHA256(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// testSpec is the Spec of the test connector with flags.
func testSpec(t *testing.T, flags ...string) plugins.Spec {
	t.Helper()
	sum, err := fileSHA256(testConnector)
	if err != nil {
		t.Fatal(err)
	}
	return plugins.Spec{Name: "test", Command: append([]string{testConnector}, flags...), SHA256: sum}
}

// logBuffer collects a host's log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newHost starts a host for spec that is closed when the test ends.
func newHost(t *testing.T, spec plugins.Spec, cfg plugins.Config) (*plugins.Host, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = logs.logger()
	}
	h, err := plugins.NewHost(spec, cfg)
	if err != nil {
		t.Fatalf("NewHost: %v", err)
	}
	t.Cleanup(func() {
		h.Close()
		if t.Failed() {
			t.Logf("host log:\n%s", logs)
		}
	})
	return h, logs
}

// Waits poll with bounds far beyond what a slow machine needs: they bound
// a test that would otherwise hang, and assert no speed.
const waitBound = 60 * time.Second

// eventually polls cond until it holds or waitBound passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processGone reports whether pid has no live process (a zombie that no
// one reaped counts as gone).
func processGone(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the ")" that closes the command name.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}

// waitGone waits until pid is gone.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	eventually(t, fmt.Sprintf("process %d to end", pid), func() bool { return processGone(pid) })
}

// readPID waits for the test connector to write its PID to path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	eventually(t, "the connector's PID file", func() bool {
		data, err := os.ReadFile(path)
		pid, _ = strconv.Atoi(string(data))
		return err == nil && pid > 0
	})
	return pid
}

func needProc(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("looks for processes in /proc")
	}
}
