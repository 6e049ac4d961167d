package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clusterRig runs real tallyd processes on loopback and drives them with
// the real tallyctl and tally-agent.
type clusterRig struct {
	t    *testing.T
	bin  string
	work string

	mu    sync.Mutex
	procs map[string]*exec.Cmd
	urls  map[string]string // node -> https://127.0.0.1:PORT
	args  map[string][]string
}

const clusterPassword = "cluster test password"

func newClusterRig(t *testing.T) *clusterRig {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	r := &clusterRig{t: t, bin: buildBinaries(t), work: t.TempDir(),
		procs: map[string]*exec.Cmd{}, urls: map[string]string{}, args: map[string][]string{}}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, p := range r.procs {
			p.Process.Kill()
			p.Wait()
		}
	})
	return r
}

// start runs tallyd for node with extra flags and waits until it serves;
// a restart reuses the node's first flags and data.
func (r *clusterRig) start(node string, extra ...string) error {
	r.t.Helper()
	args, ok := r.args[node]
	if !ok {
		// The raft port stays across restarts: peers know the node by it.
		args = append([]string{"--data-dir", filepath.Join(r.work, node), "--bind", "127.0.0.1", "--https-port", "0",
			"--discovery-port", "0", "--raft-port", freePort(r.t), "--node-id", node}, extra...)
		r.args[node] = args
	}
	cmd := exec.Command(filepath.Join(r.bin, "tallyd"), args...)
	cmd.Env = append(os.Environ(), "TALLY_ADMIN_PASSWORD="+clusterPassword)
	logFile, err := os.OpenFile(filepath.Join(r.work, node+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	url := ""
	for url == "" && sc.Scan() {
		if m := runningAt.FindStringSubmatch(sc.Text()); m != nil {
			url = strings.TrimSuffix(m[1], "/")
		}
	}
	if url == "" {
		cmd.Wait()
		log, _ := os.ReadFile(filepath.Join(r.work, node+".log"))
		return fmt.Errorf("%s exited before serving: %s", node, lastLines(string(log), 5))
	}
	go func() {
		for sc.Scan() {
		}
	}()
	r.mu.Lock()
	r.procs[node], r.urls[node] = cmd, url
	r.mu.Unlock()
	return nil
}

// kill sends SIGKILL to node.
func (r *clusterRig) kill(node string) {
	r.mu.Lock()
	p := r.procs[node]
	delete(r.procs, node)
	r.mu.Unlock()
	p.Process.Kill()
	p.Wait()
}

// ctl runs tallyctl against node.
func (r *clusterRig) ctl(node string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(r.bin, "tallyctl"), append([]string{"--server", r.urls[node], "--insecure"}, args...)...)
	cmd.Env = append(os.Environ(), "TALLY_PASSWORD="+clusterPassword)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (r *clusterRig) mustCtl(node string, args ...string) string {
	r.t.Helper()
	out, err := r.ctl(node, args...)
	if err != nil {
		r.t.Fatalf("tallyctl %s on %s: %v\n%s", strings.Join(args, " "), node, err, out)
	}
	return out
}

// checkout asks node for count of cad 1.0 as device.
func (r *clusterRig) checkout(node, device string, count int) (string, error) {
	ws := strings.Replace(r.urls[node], "https://", "wss://", 1) + "/ws/device"
	cmd := exec.Command(filepath.Join(r.bin, "tally-agent"), "--server", ws, "--insecure", "--hostid", device,
		"--timeout", "20s", "checkout", "cad", "1.0", fmt.Sprint(count))
	cmd.Env = append(os.Environ(), "HOME="+r.work)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// status reads the cluster view from node.
func (r *clusterRig) status(node string) (clusterStatusJSON, error) {
	var st clusterStatusJSON
	out, err := r.ctl(node, "--json", "cluster", "status")
	if err != nil {
		return st, fmt.Errorf("%v: %s", err, out)
	}
	return st, json.Unmarshal([]byte(out), &st)
}

type clusterStatusJSON struct {
	Leader  string `json:"leader"`
	Healthy bool   `json:"healthy"`
	Members []struct {
		ID           string `json:"id"`
		Reachable    bool   `json:"reachable"`
		AppliedIndex uint64 `json:"appliedIndex"`
	} `json:"members"`
}

func (r *clusterRig) waitFor(what string, cond func() (bool, string)) {
	r.t.Helper()
	waitUntil(r.t, what, cond)
}

// waitUntil polls cond, bounded in count; the bound is only reached when
// something is broken.
func waitUntil(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	for range 600 {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never happened; last: %s", what, last)
}

// used reads how many cad 1.0 licenses node says are in use.
func (r *clusterRig) used(node string) (int, error) {
	out, err := r.ctl(node, "--json", "features")
	if err != nil {
		return -1, fmt.Errorf("%v: %s", err, out)
	}
	var p struct {
		Items []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			Used    int    `json:"used"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		return -1, err
	}
	for _, f := range p.Items {
		if f.Name == "cad" && f.Version == "1.0" {
			return f.Used, nil
		}
	}
	return -1, fmt.Errorf("no cad 1.0 in %s", out)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return portOf(ln)
}

// leaseOf reads how many cad 1.0 licenses device holds, by node.
func (r *clusterRig) leaseOf(node, device string) (int64, error) {
	out, err := r.ctl(node, "--json", "devices", "show", "STRING", device)
	if err != nil {
		return -1, fmt.Errorf("%v: %s", err, out)
	}
	var d struct {
		Leases []struct {
			Feature string `json:"feature"`
			Version string `json:"version"`
			Count   int64  `json:"count"`
		} `json:"leases"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		return -1, err
	}
	for _, l := range d.Leases {
		if l.Feature == "cad" && l.Version == "1.0" {
			return l.Count, nil
		}
	}
	return 0, nil
}

// checkLeases checks on every node that each device holds one cad 1.0 and
// that the nodes agree on the count in use.
func (r *clusterRig) checkLeases(nodes, devices []string) {
	r.t.Helper()
	used := -1
	for _, n := range nodes {
		u, err := r.used(n)
		if err != nil || (used >= 0 && u != used) || u < len(devices) {
			r.t.Fatalf("%s says %d used (others %d, granted %d): %v", n, u, used, len(devices), err)
		}
		used = u
		for _, d := range devices {
			if l, err := r.leaseOf(n, d); err != nil || l != 1 {
				r.t.Fatalf("%s: %s holds %d, want 1: %v", n, d, l, err)
			}
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// checkLicensingID counts the servers of the licensing ID view on node by
// "server status/ID status" and compares the counts want names.
func (r *clusterRig) checkLicensingID(node string, want map[string]int) {
	r.t.Helper()
	out := r.mustCtl(node, "--json", "licensing-id", "show")
	var v struct {
		Fingerprint string `json:"fingerprint"`
		Servers     []struct {
			ServerStatus string `json:"serverStatus"`
			IDStatus     string `json:"idStatus"`
			Fingerprint  string `json:"fingerprint"`
		} `json:"servers"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		r.t.Fatalf("licensing-id show: %v\n%s", err, out)
	}
	got := map[string]int{}
	for _, s := range v.Servers {
		got[s.ServerStatus+"/"+s.IDStatus]++
		if s.IDStatus == "Main licensing ID" && s.Fingerprint != v.Fingerprint {
			r.t.Fatalf("the main ID's server shows %s, the main ID is %s", s.Fingerprint, v.Fingerprint)
		}
	}
	for k, n := range want {
		if got[k] != n {
			r.t.Fatalf("licensing ID view on %s: %v, want %v\n%s", node, got, want, out)
		}
	}
}

// TestClusterOfProcesses forms a cluster of three real tallyd processes by
// join tokens, serves checkouts on every node, survives kill -9 of the
// leader with every granted lease on the survivors, takes the old leader
// back, removes a node, and refuses a node with a bad or spent token.
func TestClusterOfProcesses(t *testing.T) {
	r := newClusterRig(t)
	if err := r.start("n1", "--dev"); err != nil {
		t.Fatal(err)
	}
	join := strings.TrimPrefix(r.urls["n1"], "https://")
	token := func() string {
		// The token is the first line; a note on stderr follows.
		return strings.Fields(r.mustCtl("n1", "cluster", "token", "--description", "test"))[0]
	}
	spent := token()
	for _, n := range []string{"n2", "n3"} {
		tok := spent
		if n == "n3" {
			tok = token()
		}
		if err := r.start(n, "--join", join, "--join-token", tok); err != nil {
			t.Fatal(err)
		}
	}
	r.waitFor("a healthy cluster of three", func() (bool, string) {
		st, err := r.status("n3")
		return err == nil && st.Healthy && len(st.Members) == 3, fmt.Sprintf("%+v %v", st, err)
	})
	r.checkLicensingID("n2", map[string]int{"Running/Main licensing ID": 1, "Running/in sync": 2})
	// A spent token and a made-up one admit nobody.
	if err := r.start("n4", "--join", join, "--join-token", spent); err == nil || !strings.Contains(err.Error(), "join_token_used") {
		t.Fatalf("a spent token: %v", err)
	}
	if err := r.start("n5", "--join", join, "--join-token", "tly1.0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); err == nil || !strings.Contains(err.Error(), "unknown_join_token") {
		t.Fatalf("a made-up token: %v", err)
	}

	// Every node serves checkouts; the counts agree everywhere.
	var held []string
	for i, n := range []string{"n1", "n2", "n3", "n2", "n3"} {
		d := fmt.Sprintf("dev-%d", i)
		out, err := r.checkout(n, d, 1)
		if err != nil || !strings.Contains(out, "cad 1.0: 1 held") {
			t.Fatalf("checkout on %s: %v\n%s", n, err, out)
		}
		held = append(held, d)
	}
	r.checkLeases([]string{"n1", "n2", "n3"}, held)

	// kill -9 the leader: the survivors elect another and serve again.
	st, err := r.status("n2")
	if err != nil || st.Leader == "" {
		t.Fatalf("status: %+v %v", st, err)
	}
	old := st.Leader
	var survivors []string
	for _, n := range []string{"n1", "n2", "n3"} {
		if n != old {
			survivors = append(survivors, n)
		}
	}
	// Under load: devices check out and return through a follower while
	// the leader dies.
	load := exec.Command(filepath.Join(r.bin, "tally-agent"), "--server",
		strings.Replace(r.urls[survivors[0]], "https://", "wss://", 1)+"/ws/device", "--insecure", "--json",
		"load", "--devices", "8", "--duration", "6s", "--feature", "viewer", "--version", "2.0")
	load.Env = append(os.Environ(), "HOME="+r.work)
	var loadOut strings.Builder
	load.Stdout, load.Stderr = &loadOut, &loadOut
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // a bounded pause for the load to be under way; nothing waits on it
	r.kill(old)
	// n1 made the cluster: its local ID is the main one.
	if old == "n1" {
		r.checkLicensingID(survivors[0], map[string]int{"Not running/not in sync": 1, "Running/in sync": 2})
	} else {
		r.checkLicensingID(survivors[0], map[string]int{"Not running/not in sync": 1, "Running/in sync": 1, "Running/Main licensing ID": 1})
	}
	r.waitFor("a checkout on a survivor", func() (bool, string) {
		out, err := r.checkout(survivors[0], "after-failover", 1)
		return err == nil && strings.Contains(out, "1 held"), out
	})
	held = append(held, "after-failover")
	for _, n := range survivors {
		out, err := r.checkout(n, "on-"+n, 1)
		if err != nil || !strings.Contains(out, "1 held") {
			t.Fatalf("checkout on survivor %s: %v\n%s", n, err, out)
		}
		held = append(held, "on-"+n)
	}
	if err := load.Wait(); err != nil {
		t.Fatalf("the load through the failover: %v\n%s", err, loadOut.String())
	}
	var report struct{ Checkouts int64 }
	if err := json.Unmarshal([]byte(loadOut.String()[strings.Index(loadOut.String(), "{"):]), &report); err != nil || report.Checkouts == 0 {
		t.Fatalf("load report: %v\n%s", err, loadOut.String())
	}
	r.checkLeases(survivors, held)

	// The old leader comes back and catches up.
	if err := r.start(old); err != nil {
		t.Fatal(err)
	}
	want, _ := r.used(survivors[0])
	r.waitFor("the old leader to catch up", func() (bool, string) {
		u, err := r.used(old)
		return err == nil && u == want, fmt.Sprintf("%d %v", u, err)
	})
	r.checkLeases([]string{"n1", "n2", "n3"}, held)

	// Remove a node that is not the leader; two remain and serve.
	st, _ = r.status(survivors[0])
	victim := survivors[0]
	if victim == st.Leader {
		victim = survivors[1]
	}
	keep := survivors[0]
	if keep == victim {
		keep = survivors[1]
	}
	r.mustCtl(keep, "cluster", "remove", victim)
	r.kill(victim)
	r.waitFor("a healthy cluster of two", func() (bool, string) {
		st, err := r.status(keep)
		return err == nil && st.Healthy && len(st.Members) == 2, fmt.Sprintf("%+v %v", st, err)
	})
	if out, err := r.checkout(keep, "after-removal", 1); err != nil || !strings.Contains(out, "1 held") {
		t.Fatalf("checkout after removal: %v\n%s", err, out)
	}
}
