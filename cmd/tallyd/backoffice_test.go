package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestOnlineExchange: tallyd's leader reaches tally-backoffice through the
// built-in http connector (tallyd re-executed as a go-plugin process): it
// registers the licensing ID, an activation asked through the API arrives
// as feature lines, and the usage of a checkout reaches the back office
// once.
// backoffice is a tally-backoffice serving for a test, with a tallyd
// config file that names it as the connector "office".
type backoffice struct {
	proc        *exec.Cmd
	books       string
	config      string
	producerPub string
	run         func(prog string, args ...string) string
}

// startBackoffice starts tally-backoffice with the entitlement ACT-1 of
// count press 2.0 licenses.
func startBackoffice(t *testing.T, r *clusterRig, count int) *backoffice {
	t.Helper()
	run := func(prog string, args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(r.bin, prog), args...)
		cmd.Dir = r.work
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("tallyctl", "producer", "keygen", "--out", "producer")
	books := filepath.Join(r.work, "books")
	run("tally-backoffice", "--data", books, "entitlement", "add", "--id", "ACT-1", "--feature", "press", "--version", "2.0", "--count", strconv.Itoa(count))
	office := exec.Command(filepath.Join(r.bin, "tally-backoffice"), "--data", books, "serve",
		"--key", filepath.Join(r.work, "producer.key"), "--addr", "127.0.0.1:0")
	stdout, err := office.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	office.Stderr = os.Stderr
	if err := office.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { office.Process.Kill(); office.Wait() })
	var url, pin string
	sc := bufio.NewScanner(stdout)
	for (url == "" || pin == "") && sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "tally-backoffice serving "); ok {
			url = u
		}
		if p, ok := strings.CutPrefix(sc.Text(), "TLS certificate SHA-256: "); ok {
			pin = p
		}
	}
	if url == "" || pin == "" {
		t.Fatal("tally-backoffice did not start")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	cfg, _ := json.Marshal(map[string]any{"connectors": map[string]any{
		"office": map[string]any{"builtin": "http", "args": []string{"--url", url, "--pin", pin}},
	}})
	cfgFile := filepath.Join(r.work, "tallyd.json")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	return &backoffice{proc: office, books: books, config: cfgFile, producerPub: filepath.Join(r.work, "producer.pub"), run: run}
}

// stop stops the back office, so that its books can be read.
func (b *backoffice) stop() {
	b.proc.Process.Kill()
	b.proc.Wait()
}

// checkoutsRecorded sums the press checkouts of the usage windows the back
// office recorded, and counts the windows.
func (b *backoffice) checkoutsRecorded(t *testing.T) (checkouts int64, windows int) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(b.run("tally-backoffice", "--data", b.books, "usage")), "\n") {
		if line == "" {
			continue
		}
		var w struct {
			Features []struct {
				Name      string `json:"name"`
				Checkouts int64  `json:"checkouts"`
			} `json:"features"`
		}
		if err := json.Unmarshal([]byte(line[strings.Index(line, "{"):]), &w); err != nil {
			t.Fatalf("usage line %q: %v", line, err)
		}
		windows++
		for _, f := range w.Features {
			if f.Name == "press" {
				checkouts += f.Checkouts
			}
		}
	}
	return checkouts, windows
}

func TestOnlineExchange(t *testing.T) {
	r := newClusterRig(t)
	bo := startBackoffice(t, r, 5)
	if err := r.start("b1", "--dev", "--config", bo.config, "--producer-key", bo.producerPub); err != nil {
		t.Fatal(err)
	}
	r.mustCtl("b1", "properties", "set", "backoffice.connector", "office")
	r.mustCtl("b1", "offline", "activate", "--id", "ACT-1", "--count", "3", "--out", filepath.Join(r.work, "unused.bin"))
	r.waitFor("the activated lines", func() (bool, string) {
		n, out := r.pressTotal("b1")
		return n == 3, out
	})
	// A checkout, then another activation: its request carries the usage.
	ws := strings.Replace(r.urls["b1"], "https://", "wss://", 1) + "/ws/device"
	agent := exec.Command(filepath.Join(r.bin, "tally-agent"), "--server", ws, "--insecure", "--hostid", "press-1", "checkout", "press", "2.0", "2")
	agent.Env = append(os.Environ(), "HOME="+r.work)
	if out, err := agent.CombinedOutput(); err != nil || !strings.Contains(string(out), "2 held") {
		t.Fatalf("checkout: %v\n%s", err, out)
	}
	r.mustCtl("b1", "offline", "activate", "--id", "ACT-1", "--count", "4", "--out", filepath.Join(r.work, "unused2.bin"))
	r.waitFor("the second activation", func() (bool, string) {
		n, out := r.pressTotal("b1")
		return n == 4, out
	})
	// The connector is a child process of tallyd; killing tallyd with
	// SIGKILL leaves no connector behind.
	children := childrenOf(r.procs["b1"].Process.Pid)
	if len(children) == 0 {
		t.Fatal("no connector process runs under tallyd")
	}
	r.kill("b1")
	r.waitFor("the connector to end with tallyd", func() (bool, string) {
		for _, pid := range children {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				return false, fmt.Sprintf("pid %d still runs", pid)
			}
		}
		return true, ""
	})
	bo.stop()
	if checkouts, windows := bo.checkoutsRecorded(t); checkouts != 1 || windows != 1 {
		t.Fatalf("the back office recorded %d checkouts in %d windows, want 1 in 1", checkouts, windows)
	}
	// The licensing ID was registered online, once.
	if servers := bo.run("tally-backoffice", "--data", bo.books, "servers"); strings.Count(servers, "\n") != 2 {
		t.Fatalf("servers:\n%s", servers)
	}
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	var out []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after ')'.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			child, _ := strconv.Atoi(strings.Fields(string(b))[0])
			out = append(out, child)
		}
	}
	return out
}

// pressTotal reads the press total node shows.
func (r *clusterRig) pressTotal(node string) (int, string) {
	out, _ := r.ctl(node, "--json", "features")
	var p struct {
		Items []struct {
			Name  string `json:"name"`
			Total int    `json:"total"`
		} `json:"items"`
	}
	json.Unmarshal([]byte(out), &p)
	for _, f := range p.Items {
		if f.Name == "press" {
			return f.Total, out
		}
	}
	return 0, out
}

// TestOnlineExchangeAcrossLeaderChange: on a cluster of three, only the
// leader exchanges with the back office; the lines reach every node; after
// the leader is killed the new leader exchanges, and the usage served by
// every node before and after reaches the back office exactly once.
func TestOnlineExchangeAcrossLeaderChange(t *testing.T) {
	r := newClusterRig(t)
	bo := startBackoffice(t, r, 10)
	flags := []string{"--config", bo.config, "--producer-key", bo.producerPub}
	if err := r.start("c1", append([]string{"--dev"}, flags...)...); err != nil {
		t.Fatal(err)
	}
	join := strings.TrimPrefix(r.urls["c1"], "https://")
	for _, n := range []string{"c2", "c3"} {
		tok := strings.Fields(r.mustCtl("c1", "cluster", "token"))[0]
		if err := r.start(n, append([]string{"--join", join, "--join-token", tok}, flags...)...); err != nil {
			t.Fatal(err)
		}
	}
	r.waitFor("a healthy cluster of three", func() (bool, string) {
		st, err := r.status("c1")
		return err == nil && st.Healthy && len(st.Members) == 3, fmt.Sprint(st, err)
	})
	r.mustCtl("c2", "properties", "set", "backoffice.connector", "office")
	r.mustCtl("c3", "offline", "activate", "--id", "ACT-1", "--count", "6", "--out", filepath.Join(r.work, "a.bin"))
	for _, n := range []string{"c1", "c2", "c3"} {
		r.waitFor("the lines on "+n, func() (bool, string) {
			total, out := r.pressTotal(n)
			return total == 6, out
		})
	}
	checkouts := 0
	checkout := func(node, device string) {
		t.Helper()
		ws := strings.Replace(r.urls[node], "https://", "wss://", 1) + "/ws/device"
		agent := exec.Command(filepath.Join(r.bin, "tally-agent"), "--server", ws, "--insecure", "--hostid", device, "checkout", "press", "2.0", "1")
		agent.Env = append(os.Environ(), "HOME="+r.work)
		if out, err := agent.CombinedOutput(); err != nil || !strings.Contains(string(out), "1 held") {
			t.Fatalf("checkout on %s: %v\n%s", node, err, out)
		}
		checkouts++
	}
	for i, n := range []string{"c1", "c2", "c3"} {
		checkout(n, fmt.Sprintf("before-%d", i))
	}
	st, _ := r.status("c1")
	old := st.Leader
	r.kill(old)
	var survivors []string
	for _, n := range []string{"c1", "c2", "c3"} {
		if n != old {
			survivors = append(survivors, n)
		}
	}
	r.waitFor("a new leader", func() (bool, string) {
		st, err := r.status(survivors[0])
		return err == nil && st.Leader != "" && st.Leader != old, fmt.Sprint(st, err)
	})
	for i, n := range survivors {
		checkout(n, fmt.Sprintf("after-%d", i))
	}
	// A new activation makes the new leader exchange at once.
	r.mustCtl(survivors[1], "offline", "activate", "--id", "ACT-1", "--count", "8", "--out", filepath.Join(r.work, "b.bin"))
	for _, n := range survivors {
		r.waitFor("the second activation on "+n, func() (bool, string) {
			total, out := r.pressTotal(n)
			return total == 8, out
		})
	}
	for _, n := range survivors {
		r.kill(n)
	}
	bo.stop()
	if got, _ := bo.checkoutsRecorded(t); got != int64(checkouts) {
		t.Fatalf("the back office recorded %d checkouts, %d were served", got, checkouts)
	}
}

// TestDirConnectorExchange: through the built-in dir connector the
// leader writes its request into a directory, the producer answers it with
// tally-backoffice from the files, and the leader picks the response up on
// its next try.
func TestDirConnectorExchange(t *testing.T) {
	r := newClusterRig(t)
	bo := startBackoffice(t, r, 5)
	bo.stop()                               // answered from files here
	stick := filepath.Join(r.work, "stick") // a mounted USB stick
	if err := os.Mkdir(stick, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{"connectors": map[string]any{"stick": map[string]any{"builtin": "dir", "args": []string{"--dir", stick}}}})
	cfgFile := filepath.Join(r.work, "dir.json")
	os.WriteFile(cfgFile, cfg, 0o600)
	if err := r.start("d1", "--dev", "--config", cfgFile, "--producer-key", bo.producerPub); err != nil {
		t.Fatal(err)
	}
	r.mustCtl("d1", "properties", "set", "backoffice.retryInterval", "5s")
	r.mustCtl("d1", "properties", "set", "backoffice.connector", "stick")
	r.mustCtl("d1", "offline", "activate", "--id", "ACT-1", "--count", "2", "--out", filepath.Join(r.work, "unused.bin"))
	var request string
	r.waitFor("a request on the stick", func() (bool, string) {
		files, _ := filepath.Glob(filepath.Join(stick, "out", "request-*.bin"))
		if len(files) == 0 {
			return false, "none"
		}
		request = files[len(files)-1]
		return true, request
	})
	cert, _ := filepath.Glob(filepath.Join(stick, "out", "licensing-id.cert"))
	if len(cert) != 1 {
		t.Fatal("the licensing ID was not written to the stick")
	}
	bo.run("tally-backoffice", "--data", bo.books, "register", cert[0])
	seq := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(request), "request-"), ".bin")
	bo.run("tally-backoffice", "--data", bo.books, "answer", "--key", filepath.Join(r.work, "producer.key"),
		"--in", request, "--out", filepath.Join(stick, "in", "response-"+seq+".bin"))
	r.waitFor("the lines from the stick", func() (bool, string) {
		n, out := r.pressTotal("d1")
		return n == 2, out
	})
}
