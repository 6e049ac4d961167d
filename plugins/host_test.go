package plugins_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/plugins"
	"google.golang.org/grpc/codes"
)

func TestRoundTrip(t *testing.T) {
	h, logs := newHost(t, testSpec(t), plugins.Config{})
	ctx := context.Background()

	d, err := h.Describe(ctx)
	if want := (plugins.Description{Name: "test", Version: "1.0", Online: true, Offline: true}); err != nil || d != want {
		t.Fatalf("Describe = %+v, %v; want %+v", d, err, want)
	}
	resp, err := h.Exchange(ctx, []byte("hello"))
	if err != nil || string(resp) != "echo:hello" {
		t.Fatalf("Exchange = %q, %v", resp, err)
	}
	if err := h.RegisterLicensingID(ctx, []byte{0x30, 0x82, 0x01}); err != nil {
		t.Fatalf("RegisterLicensingID: %v", err)
	}
	if err := h.ReportUsage(ctx, []byte("usage")); err != nil {
		t.Fatalf("ReportUsage: %v", err)
	}
	if _, err := h.Exchange(ctx, []byte("print")); err != nil {
		t.Fatalf("Exchange: %v", err)
	}

	// The connector's log and stdout are in tallyd's log, marked with its name.
	eventually(t, "the connector's output in the host log", func() bool {
		return strings.Contains(logs.String(), "testconnector serving") && strings.Contains(logs.String(), "a line on stdout")
	})
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "testconnector serving") && !strings.Contains(line, "plugin=test") {
			t.Errorf("connector log line without plugin=test: %s", line)
		}
	}
	if s := h.Status(); !s.Running || s.PID == 0 || s.Restarts != 0 {
		t.Errorf("Status = %+v", s)
	}
}

func TestErrorsCrossTheWire(t *testing.T) {
	h, _ := newHost(t, testSpec(t), plugins.Config{})
	ctx := context.Background()
	pid := h.Status().PID
	for _, tc := range []struct {
		request string
		want    error
		code    codes.Code // of a connector's own error; OK for one refused before sending
	}{
		{"unreachable", plugins.ErrUnreachable, codes.Unavailable},
		{"not-yet", plugins.ErrNoResponseYet, codes.NotFound},
		{"big", plugins.ErrTooLarge, codes.ResourceExhausted},
		{"", plugins.ErrInvalid, codes.OK},
		{strings.Repeat("x", plugins.MaxPayload+1), plugins.ErrTooLarge, codes.OK},
	} {
		_, err := h.Exchange(ctx, []byte(tc.request))
		if !errors.Is(err, tc.want) {
			t.Errorf("Exchange(%.20q): %v, want %v", tc.request, err, tc.want)
		}
		var ce *plugins.ConnectorError
		if got := errors.As(err, &ce); got != (tc.code != codes.OK) || got && ce.Code != tc.code {
			t.Errorf("Exchange(%.20q): %v, want a connector error with code %v", tc.request, err, tc.code)
		}
	}
	if err := h.ReportUsage(ctx, []byte("refuse")); !errors.Is(err, plugins.ErrRejected) {
		t.Errorf("ReportUsage: %v, want ErrRejected", err)
	}
	// A connector's errors are answers, not failures: the process stays.
	if s := h.Status(); s.PID != pid || s.Restarts != 0 {
		t.Errorf("after connector errors: %+v, want pid %d and no restart", s, pid)
	}
}

func TestHandshakeMismatch(t *testing.T) {
	needProc(t)
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"protocol version", []string{"-protocol-version", "2"}},
		{"magic cookie", []string{"-cookie", "another-products-cookie"}},
		{"garbage on stdout", []string{"-garbage"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pidfile := filepath.Join(t.TempDir(), "pid")
			spec := testSpec(t, append([]string{"-pidfile", pidfile}, tc.flags...)...)
			h, err := plugins.NewHost(spec, plugins.Config{Logger: (&logBuffer{}).logger()})
			if !errors.Is(err, plugins.ErrHandshake) {
				if h != nil {
					h.Close()
				}
				t.Fatalf("NewHost: %v, want ErrHandshake", err)
			}
			t.Logf("error: %v", err)
			waitGone(t, readPID(t, pidfile))
		})
	}
}

func TestChecksumMismatchRefusedBeforeStart(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	spec := testSpec(t, "-pidfile", pidfile)
	spec.SHA256 = strings.Repeat("ab", 32)
	if _, err := plugins.NewHost(spec, plugins.Config{}); !errors.Is(err, plugins.ErrChecksum) {
		t.Fatalf("NewHost: %v, want ErrChecksum", err)
	}
	if _, err := os.Stat(pidfile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the connector ran (pid file: %v)", err)
	}

	for _, tc := range []struct {
		sha  string
		want error
	}{
		{"", plugins.ErrNoChecksum},
		{"abc", plugins.ErrInvalid},
		{strings.Repeat("zz", 32), plugins.ErrInvalid},
	} {
		spec.SHA256 = tc.sha
		if _, err := plugins.NewHost(spec, plugins.Config{}); !errors.Is(err, tc.want) {
			t.Errorf("SHA256 %q: %v, want %v", tc.sha, err, tc.want)
		}
	}
	if _, err := os.Stat(pidfile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the connector ran (pid file: %v)", err)
	}
}

func TestCrashAndRestart(t *testing.T) {
	needProc(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	h, _ := newHost(t, testSpec(t, "-crash-after", "2"), plugins.Config{MinBackoff: 50 * time.Millisecond})
	ctx := context.Background()
	first := h.Status().PID
	for i := range 2 {
		if _, err := h.Exchange(ctx, []byte("x")); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	// The third call kills the process in the middle of it.
	if _, err := h.Exchange(ctx, []byte("x")); !errors.Is(err, plugins.ErrNotRunning) {
		t.Fatalf("call in which the connector crashed: %v, want ErrNotRunning", err)
	}
	waitGone(t, first)
	// The host restarts it; calls succeed again on the new process.
	eventually(t, "a call to succeed after the restart", func() bool {
		_, err := h.Exchange(ctx, []byte("x"))
		return err == nil
	})
	s := h.Status()
	if s.Restarts < 1 || s.PID == first || !s.Running || s.LastError == "" {
		t.Fatalf("Status after a crash: %+v", s)
	}
	if _, err := h.Describe(ctx); err != nil {
		t.Fatalf("Describe after the restart: %v", err)
	}

	// It crashes again after two more calls and is restarted again.
	eventually(t, "a second crash and restart", func() bool {
		h.Exchange(ctx, []byte("x"))
		return h.Status().Restarts >= 2
	})

	// No socket of a dead process is left behind.
	h.Close()
	if left, _ := filepath.Glob(filepath.Join(tmp, "tally-connector-*")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

func TestHungCallTimesOutAndProcessIsReplaced(t *testing.T) {
	needProc(t)
	const timeout = 2 * time.Second
	h, _ := newHost(t, testSpec(t, "-hang-on", "exchange"), plugins.Config{CallTimeout: timeout, MinBackoff: 50 * time.Millisecond})
	ctx := context.Background()
	hung := h.Status().PID

	start := time.Now()
	_, err := h.Exchange(ctx, []byte("x"))
	if !errors.Is(err, plugins.ErrTimeout) {
		t.Fatalf("hung Exchange: %v, want ErrTimeout", err)
	}
	if elapsed := time.Since(start); elapsed > waitBound {
		t.Fatalf("hung Exchange returned after %v, the call timeout is %v", elapsed, timeout)
	}
	waitGone(t, hung)
	eventually(t, "a new process", func() bool {
		s := h.Status()
		return s.Running && s.PID != hung && s.Restarts == 1
	})
	if _, err := h.Describe(ctx); err != nil {
		t.Fatalf("Describe on the new process: %v", err)
	}
}

func TestCallerCancelDoesNotRestart(t *testing.T) {
	h, _ := newHost(t, testSpec(t, "-hang-on", "exchange"), plugins.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	pid := h.Status().PID
	if _, err := h.Exchange(ctx, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Exchange: %v, want the caller's deadline", err)
	}
	if s := h.Status(); s.PID != pid || s.Restarts != 0 {
		t.Fatalf("the caller gave up, yet the connector was replaced: %+v", s)
	}
}

func TestCloseKillsTheConnector(t *testing.T) {
	needProc(t)
	h, err := plugins.NewHost(testSpec(t), plugins.Config{Logger: (&logBuffer{}).logger()})
	if err != nil {
		t.Fatal(err)
	}
	pid := h.Status().PID
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	if _, err := h.Describe(context.Background()); !errors.Is(err, plugins.ErrClosed) {
		t.Fatalf("Describe after Close: %v, want ErrClosed", err)
	}
	h.Close() // a second Close is harmless
}

// TestNoOrphanWhenHostIsKilled starts a host in a child process, SIGKILLs
// the child (no cleanup can run) and checks that its connector is gone too.
func TestNoOrphanWhenHostIsKilled(t *testing.T) {
	needProc(t)
	pidfile := filepath.Join(t.TempDir(), "pid")
	child := exec.Command(os.Args[0])
	// The killed host cannot remove its connector's socket directory; it
	// goes with the test's.
	child.Env = append(os.Environ(), orphanChildEnv+"="+pidfile, testConnectorEnv+"="+testConnector, "TMPDIR="+t.TempDir())
	var stderr bytes.Buffer
	child.Stderr = &stderr
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line == "ready\n"
	}()
	select {
	case ok := <-ready:
		if !ok {
			child.Wait()
			t.Fatalf("the host child did not start: %s", stderr.String())
		}
	case <-time.After(waitBound):
		t.Fatal("the host child did not start in time")
	}
	pid := readPID(t, pidfile)
	if processGone(pid) {
		t.Fatalf("connector %d not running before the kill", pid)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	waitGone(t, pid)
}

func TestBuiltinDirConnector(t *testing.T) {
	exchange := t.TempDir()
	spec, err := plugins.BuiltinSpec("dir", "dir", "--dir", exchange)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newHost(t, spec, plugins.Config{})
	ctx := context.Background()
	if d, err := h.Describe(ctx); err != nil || d.Name != "dir" || !d.Offline || d.Online {
		t.Fatalf("Describe = %+v, %v", d, err)
	}
	if _, err := h.Exchange(ctx, []byte("signed request")); !errors.Is(err, plugins.ErrNoResponseYet) {
		t.Fatalf("Exchange before the response: %v, want ErrNoResponseYet", err)
	}
	if got, err := os.ReadFile(filepath.Join(exchange, "out", "request-1.bin")); err != nil || string(got) != "signed request" {
		t.Fatalf("request file: %q, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(exchange, "in", "response-1.bin"), []byte("signed response"), 0o644); err != nil {
		t.Fatal(err)
	}
	if resp, err := h.Exchange(ctx, []byte("signed request")); err != nil || string(resp) != "signed response" {
		t.Fatalf("Exchange after the response: %q, %v", resp, err)
	}
}

func TestBuiltinHTTPConnector(t *testing.T) {
	backOffice := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/exchange" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Write(append([]byte("signed:"), body...))
	}))
	defer backOffice.Close()
	pin := sha256.Sum256(backOffice.Certificate().Raw)
	spec, err := plugins.BuiltinSpec("http", "http", "--url", backOffice.URL, "--pin", hex.EncodeToString(pin[:]))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newHost(t, spec, plugins.Config{})
	ctx := context.Background()
	if resp, err := h.Exchange(ctx, []byte("request")); err != nil || string(resp) != "signed:request" {
		t.Fatalf("Exchange = %q, %v", resp, err)
	}
	if err := h.ReportUsage(ctx, []byte("usage")); !errors.Is(err, plugins.ErrRejected) {
		t.Fatalf("ReportUsage to a back office without /v1/usage: %v, want ErrRejected", err)
	}
}

func TestBuiltinRunByHand(t *testing.T) {
	cmd := exec.Command(os.Args[0], "connector", "dir", "--dir", t.TempDir())
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("run by hand: %v, want exit status 1", err)
	}
	if !strings.Contains(string(out), "this is a Tally connector; tallyd starts it") {
		t.Fatalf("run by hand says %q", out)
	}
}

// TestCloseIsNoError: the exit of a connector the host killed on purpose is
// logged, but not as an error.
func TestCloseIsNoError(t *testing.T) {
	h, logs := newHost(t, testSpec(t), plugins.Config{})
	if _, err := h.Describe(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.Close()
	for i := 0; !strings.Contains(logs.String(), "plugin process exited") && i < 10000; i++ {
		time.Sleep(time.Millisecond)
	}
	logged := false
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "plugin process exited") {
			logged = true
			if !strings.Contains(line, "level=INFO") {
				t.Fatalf("a deliberate kill logged above info: %s", line)
			}
		}
	}
	if !logged {
		t.Fatalf("the exit was not logged:\n%s", logs.String())
	}
}
