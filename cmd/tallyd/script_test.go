package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// The scripts in testdata/script drive real tallyd processes on loopback
// with the real tallyctl and tally-agent, built once for the run.

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func buildBinaries(t *testing.T) string {
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "tally-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir, "github.com/tallyhq/tally/cmd/tallyd",
			"github.com/tallyhq/tally/cmd/tallyctl", "github.com/tallyhq/tally/cmd/tally-agent", "github.com/tallyhq/tally/cmd/tally-backoffice")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func TestScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	bin := buildBinaries(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", bin+string(os.PathListSeparator)+env.Getenv("PATH"))
			env.Setenv("HOME", env.WorkDir)
			env.Values["nodes"] = &nodes{}
			env.Defer(func() { env.Values["nodes"].(*nodes).killAll() })
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"tallyd-start": cmdStart,
			"tallyd-stop":  cmdStop,
			"waitfor":      cmdWaitFor,
			"consistent":   cmdConsistent,
			"tamper":       cmdTamper,
			"agent":        cmdAgent,
			"truncate":     cmdTruncate,
			"capture":      cmdCapture,
		},
	})
}

// nodes are the tallyd processes a script started, by data directory.
type nodes struct {
	mu    sync.Mutex
	procs map[string]*exec.Cmd
}

func (n *nodes) killAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.procs {
		p.Process.Kill()
		p.Wait()
	}
}

// cmdStart starts tallyd with --data-dir DIR (default $WORK/data) on an
// ephemeral loopback port and the arguments given, waits until it serves,
// and sets TALLY_SERVER, TALLY_WS, TALLY_PASSWORD and FINGERPRINT for the
// commands that follow.
//
//	tallyd-start [DIR] [-- tallyd flags]
func cmdStart(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! tallyd-start")
	}
	dir := ts.MkAbs("data")
	if len(args) > 0 && args[0] != "--" {
		dir = ts.MkAbs(args[0])
		args = args[1:]
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	all := append([]string{"--data-dir", dir, "--bind", "127.0.0.1", "--https-port", "0", "--discovery-port", "0", "--raft-port", "0", "--node-id", "node1"}, args...)
	cmd := exec.Command(filepath.Join(binDir, "tallyd"), all...)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Env = []string{"PATH=" + ts.Getenv("PATH"), "HOME=" + ts.Getenv("HOME")}
	if p := ts.Getenv("TALLY_ADMIN_PASSWORD"); p != "" {
		cmd.Env = append(cmd.Env, "TALLY_ADMIN_PASSWORD="+p)
	}
	logFile, err := os.Create(dir + ".log")
	ts.Check(err)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	ts.Check(err)
	ts.Check(cmd.Start())
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var url, fp string
	deadline := time.After(2 * time.Minute)
	for url == "" || fp == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				cmd.Wait()
				log, _ := os.ReadFile(dir + ".log")
				ts.Fatalf("tallyd exited before serving:\n%s", log)
			}
			if m := runningAt.FindStringSubmatch(line); m != nil {
				url = strings.TrimSuffix(m[1], "/")
			}
			if f, ok := strings.CutPrefix(line, "Licensing ID fingerprint: "); ok {
				fp = f
			}
		case <-deadline:
			cmd.Process.Kill()
			ts.Fatalf("tallyd did not start serving")
		}
	}
	go func() {
		for range lines {
		}
	}()
	n := ts.Value("nodes").(*nodes)
	n.mu.Lock()
	if n.procs == nil {
		n.procs = map[string]*exec.Cmd{}
	}
	n.procs[dir] = cmd
	n.mu.Unlock()
	ts.Setenv("TALLY_SERVER", url)
	ts.Setenv("TALLY_WS", strings.Replace(url, "https://", "wss://", 1)+"/ws/device")
	ts.Setenv("TALLY_CA", filepath.Join(dir, "tls.crt"))
	ts.Setenv("FINGERPRINT", fp)
	if pw, err := os.ReadFile(filepath.Join(dir, initialPasswordFile)); err == nil {
		ts.Setenv("TALLY_PASSWORD", strings.TrimSpace(string(pw)))
	} else if p := ts.Getenv("TALLY_ADMIN_PASSWORD"); p != "" {
		ts.Setenv("TALLY_PASSWORD", p)
	}
}

// cmdStop stops a tallyd with SIGTERM and checks that it exits cleanly, or
// with -kill sends SIGKILL.
//
//	tallyd-stop [-kill] [DIR]
func cmdStop(ts *testscript.TestScript, neg bool, args []string) {
	kill := len(args) > 0 && args[0] == "-kill"
	if kill {
		args = args[1:]
	}
	dir := ts.MkAbs("data")
	if len(args) > 0 {
		dir = ts.MkAbs(args[0])
	}
	n := ts.Value("nodes").(*nodes)
	n.mu.Lock()
	cmd := n.procs[dir]
	delete(n.procs, dir)
	n.mu.Unlock()
	if cmd == nil {
		ts.Fatalf("no tallyd runs on %s", dir)
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	ts.Check(cmd.Process.Signal(sig))
	err := cmd.Wait()
	if !kill && (err == nil) == neg {
		log, _ := os.ReadFile(dir + ".log")
		ts.Fatalf("tallyd after SIGTERM: %v\n%s", err, log)
	}
}

// cmdWaitFor runs a command until its standard output matches a regular
// expression, for at most a minute.
//
//	waitfor REGEXP COMMAND [ARGS...]
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: waitfor REGEXP COMMAND [ARGS...]")
	}
	want, err := regexp.Compile(args[0])
	ts.Check(err)
	var last string
	for i := 0; i < 300; i++ {
		ts.Exec(args[1], args[2:]...)
		last = ts.ReadFile("stdout")
		if want.MatchString(last) != neg {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	ts.Fatalf("waited for %s in the output of %v; last output:\n%s", want, args[1:], last)
}

// cmdConsistent checks, through the REST API of the node at TALLY_SERVER,
// that every feature's used and overdraft counts add up to what the devices
// hold of it and stay within its total and overdraft: a write applied twice
// or lost would break one or the other.
//
//	consistent
func cmdConsistent(ts *testscript.TestScript, neg bool, args []string) {
	api := newScriptClient(ts)
	var features struct {
		Items []struct {
			Name          string `json:"name"`
			Version       string `json:"version"`
			Total         int64  `json:"total"`
			Used          int64  `json:"used"`
			Overdraft     int64  `json:"overdraft"`
			OverdraftUsed int64  `json:"overdraftUsed"`
			Metered       bool   `json:"metered"`
			Counted       bool   `json:"counted"`
		} `json:"items"`
	}
	api.get("/api/v1/features?pageSize=1000", &features)
	held := map[string]int64{}
	for page := 1; ; page++ {
		var devices struct {
			Total int `json:"total"`
			Items []struct {
				ID struct{ Value, Type string } `json:"id"`
			} `json:"items"`
		}
		api.get(fmt.Sprintf("/api/v1/devices?pageSize=1000&page=%d", page), &devices)
		for _, d := range devices.Items {
			var detail struct {
				Leases []struct {
					Feature string `json:"feature"`
					Version string `json:"version"`
					Count   int64  `json:"count"`
				} `json:"leases"`
			}
			api.get("/api/v1/devices/"+d.ID.Type+"/"+url.PathEscape(d.ID.Value), &detail)
			for _, l := range detail.Leases {
				held[l.Feature+" "+l.Version] += l.Count
			}
		}
		if page*1000 >= devices.Total {
			break
		}
	}
	for _, f := range features.Items {
		key := f.Name + " " + f.Version
		if f.Counted && (f.Used > f.Total || f.OverdraftUsed > f.Overdraft) {
			ts.Fatalf("%s: %d used of %d, %d overdraft of %d", key, f.Used, f.Total, f.OverdraftUsed, f.Overdraft)
		}
		// Metered lines count consumed use as used; others count leases.
		if !f.Metered && f.Used+f.OverdraftUsed != held[key] {
			ts.Fatalf("%s: %d used and %d overdraft, but devices hold %d", key, f.Used, f.OverdraftUsed, held[key])
		}
		ts.Logf("%s: %d used of %d, %d overdraft, held by devices: %d", key, f.Used, f.Total, f.OverdraftUsed, held[key])
	}
}

// scriptClient is a minimal REST client for the checks scripts make.
type scriptClient struct {
	ts     *testscript.TestScript
	base   string
	token  string
	client *http.Client
}

func newScriptClient(ts *testscript.TestScript) *scriptClient {
	pem, err := os.ReadFile(ts.Getenv("TALLY_CA"))
	ts.Check(err)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		ts.Fatalf("no certificate in %s", ts.Getenv("TALLY_CA"))
	}
	c := &scriptClient{ts: ts, base: ts.Getenv("TALLY_SERVER"),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	body, _ := json.Marshal(map[string]string{"user": "admin", "password": ts.Getenv("TALLY_PASSWORD")})
	resp, err := c.client.Post(c.base+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	ts.Check(err)
	defer resp.Body.Close()
	var login struct{ Token string }
	ts.Check(json.NewDecoder(resp.Body).Decode(&login))
	if login.Token == "" {
		ts.Fatalf("login: status %s", resp.Status)
	}
	c.token = login.Token
	return c
}

func (c *scriptClient) get(path string, v any) {
	req, err := http.NewRequest("GET", c.base+path, nil)
	c.ts.Check(err)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.client.Do(req)
	c.ts.Check(err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		c.ts.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	c.ts.Check(json.NewDecoder(resp.Body).Decode(v))
}

// cmdTamper copies a rights file with its payload changed (every count
// multiplied by ten) and its signature kept.
//
//	tamper IN OUT
func cmdTamper(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: tamper IN OUT")
	}
	var file map[string]string
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &file))
	payload, err := base64.StdEncoding.DecodeString(file["payload"])
	ts.Check(err)
	changed := bytes.ReplaceAll(payload, []byte(`"count":3`), []byte(`"count":30`))
	if bytes.Equal(changed, payload) {
		ts.Fatalf("no count to change in %s", payload)
	}
	file["payload"] = base64.StdEncoding.EncodeToString(changed)
	out, err := json.Marshal(file)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), out, 0o644))
}

// cmdAgent runs tally-agent against the node that tallyd-start started,
// pinning its TLS certificate authority and licensing identity.
//
//	agent [tally-agent flags] COMMAND [ARGS...]
func cmdAgent(ts *testscript.TestScript, neg bool, args []string) {
	all := append([]string{"--server", ts.Getenv("TALLY_WS"), "--ca", ts.Getenv("TALLY_CA"), "--identity", ts.Getenv("FINGERPRINT")}, args...)
	err := ts.Exec("tally-agent", all...)
	if err != nil {
		ts.Logf("[%v]", err)
		if !neg {
			ts.Fatalf("unexpected tally-agent failure")
		}
	} else if neg {
		ts.Fatalf("unexpected tally-agent success")
	}
}

// cmdTruncate copies a file without its last N bytes.
//
//	truncate IN OUT N
func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: truncate IN OUT N")
	}
	n, err := strconv.Atoi(args[2])
	ts.Check(err)
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	if n < 0 || n > len(data) {
		ts.Fatalf("cannot cut %d bytes off %d", n, len(data))
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), data[:len(data)-n], 0o600))
}

// cmdCapture sets an environment variable to the first group of a regular
// expression in the last command's standard output.
//
//	capture VAR REGEXP
func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: capture VAR REGEXP")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("no match for %s in:\n%s", re, ts.ReadFile("stdout"))
	}
	ts.Setenv(args[0], m[1])
}
