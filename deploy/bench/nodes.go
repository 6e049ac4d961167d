package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
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
	"syscall"
	"time"
)

const adminPassword = "bench admin password"

var (
	commands  = []string{"tallyd", "tallyctl", "tally-agent", "tally-backoffice"}
	platforms = []string{"linux/amd64", "linux/arm64", "linux/arm"}
	runningAt = regexp.MustCompile(`is running at (https://\S+)`)
)

// binarySize is one built binary.
type binarySize struct {
	Target string `json:"target"`
	Binary string `json:"binary"`
	Bytes  int64  `json:"bytes"`
}

// binarySizes builds every command for every target with the flags of
// make cross and records the sizes; the host's build is what the other
// sections run.
func binarySizes(ctx context.Context, o *options, r *report) error {
	for _, p := range platforms {
		goos, goarch, _ := strings.Cut(p, "/")
		dir := filepath.Join(o.work, "dist", goos+"-"+goarch)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid= -X main.buildVersion=bench", "-o", dir + "/"}
		for _, c := range commands {
			args = append(args, "./cmd/"+c)
		}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOARM=7")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v: %s", p, err, out)
		}
		for _, c := range commands {
			st, err := os.Stat(filepath.Join(dir, c))
			if err != nil {
				return err
			}
			r.Sizes = append(r.Sizes, binarySize{Target: p, Binary: c, Bytes: st.Size()})
			if p == "linux/arm64" && c == "tallyd" {
				mib := float64(st.Size()) / (1 << 20)
				r.add(figure{Target: targetSize, Want: "<= 25 MiB", Got: fmt.Sprintf("%.2f MiB (%d bytes)", mib, st.Size()), Value: mib, Unit: "MiB",
					Status: atMost(mib, 25), Source: "go build as make cross (CGO_ENABLED=0 -trimpath -ldflags '-s -w')"})
			}
		}
		if goarch == runtime.GOARCH {
			o.bin = dir
		}
	}
	if o.bin == "" {
		return fmt.Errorf("no build for this machine's %s", runtime.GOARCH)
	}
	return nil
}

// node is a running tallyd.
type node struct {
	name string
	cmd  *exec.Cmd
	url  string // https://127.0.0.1:PORT
	args []string
	env  []string // added to the environment
	dir  string
	done chan struct{}
}

func (n *node) ws() string { return strings.Replace(n.url, "https://", "wss://", 1) + "/ws/device" }

// startNode runs tallyd with args and waits until it says where it serves.
func startNode(o *options, name string, args ...string) (*node, error) {
	n := &node{name: name, dir: filepath.Join(o.work, name), args: args}
	return n, n.start(o)
}

func (n *node) start(o *options) error {
	if o.bin == "" {
		return fmt.Errorf("no binaries (the sizes section builds them)")
	}
	args := append([]string{"--data-dir", n.dir, "--bind", "127.0.0.1", "--https-port", "0", "--discovery-port", "0", "--node-id", n.name}, n.args...)
	cmd := exec.Command(filepath.Join(o.bin, "tallyd"), args...)
	cmd.Env = append(append(os.Environ(), "TALLY_ADMIN_PASSWORD="+adminPassword), n.env...)
	logFile, err := os.OpenFile(filepath.Join(o.work, n.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if m := runningAt.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- strings.TrimSuffix(m[1], "/")
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	n.cmd, n.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(n.done) }()
	select {
	case url, ok := <-found:
		if !ok {
			<-n.done
			log, _ := os.ReadFile(filepath.Join(o.work, n.name+".log"))
			return fmt.Errorf("%s exited before serving: %s", n.name, lastLines(string(log), 3))
		}
		n.url = url
		return nil
	case <-time.After(3 * time.Minute):
		n.kill()
		return fmt.Errorf("%s did not serve within 3 minutes", n.name)
	}
}

// kill sends SIGKILL and waits for the process to end.
func (n *node) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Kill()
		<-n.done
	}
}

// stop sends SIGTERM and waits (SIGKILL after 30s).
func (n *node) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		n.kill()
	}
}

// rssKiB reads VmRSS of the node from /proc.
func (n *node) rssKiB() (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no VmRSS for %s", n.name)
}

// cpuSeconds reads the CPU time (user and system) the node has used.
func (n *node) cpuSeconds() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th of them.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("unreadable /proc stat of %s", n.name)
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unreadable /proc stat of %s", n.name)
	}
	return (utime + stime) / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc times: 100 on every Linux
// architecture Tally runs on.
const clockTicks = 100

// ctl runs tallyctl against the node.
func (n *node) ctl(o *options, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(o.bin, "tallyctl"), append([]string{"--server", n.url, "--insecure"}, args...)...)
	cmd.Env = append(os.Environ(), "TALLY_PASSWORD="+adminPassword)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// healthy asks GET /api/v1/health once.
func healthy(url string) bool {
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	res, err := c.Get(url + "/api/v1/health")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// idleRSS starts a --dev node, lets it settle and reads its VmRSS.
func idleRSS(ctx context.Context, o *options, r *report) error {
	n, err := startNode(o, "rss", "--dev")
	if err != nil {
		return err
	}
	defer n.stop()
	settle := 15 * time.Second
	if o.short {
		settle = 5 * time.Second
	}
	sleep(ctx, settle)
	kib, err := n.rssKiB()
	if err != nil {
		return err
	}
	mib := float64(kib) / 1024
	r.add(figure{Target: targetRSS, Want: "<= 40 MiB", Got: fmt.Sprintf("%.1f MiB", mib), Value: mib, Unit: "MiB", Status: atMost(mib, 40),
		Source: fmt.Sprintf("VmRSS of tallyd --dev (%s build) %s after it served", runtime.GOARCH, settle)})
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// loadResult is what tally-agent load --json prints.
type loadResult struct {
	Devices       int     `json:"devices"`
	Connected     int     `json:"connected"`
	Seconds       float64 `json:"seconds"`
	Checkouts     int64   `json:"checkouts"`
	Errors        int64   `json:"errors"`
	Denials       int64   `json:"denials"`
	CheckoutsPS   float64 `json:"checkoutsPerSecond"`
	LatencyP50ms  float64 `json:"latencyP50Ms"`
	LatencyP99ms  float64 `json:"latencyP99Ms"`
	LatencyP999ms float64 `json:"latencyP999Ms"`
	LatencyMaxms  float64 `json:"latencyMaxMs"`
	FirstError    string  `json:"firstError,omitempty"`
}

// agentLoad runs tally-agent load against url with devices devices whose
// hostids start with prefix.
func agentLoad(ctx context.Context, o *options, url, prefix string, devices int) (loadResult, error) {
	var res loadResult
	ctx, cancel := context.WithTimeout(ctx, o.duration+3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(o.bin, "tally-agent"), "--server", url, "--insecure", "--json", "--hostid", prefix,
		"load", "--devices", strconv.Itoa(devices), "--duration", o.duration.String(), "--feature", "reader", "--version", "2022.01")
	cmd.Env = append(os.Environ(), "HOME="+o.work)
	out, err := cmd.Output()
	if i := strings.IndexByte(string(out), '{'); i >= 0 {
		if jerr := json.Unmarshal(out[i:], &res); jerr != nil && err == nil {
			err = jerr
		}
	}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			err = fmt.Errorf("%v: %s", err, oneLine(string(ee.Stderr)))
		}
		return res, fmt.Errorf("tally-agent load: %w", err)
	}
	return res, nil
}

// loadOneNode measures checkouts over WebSocket against one --dev node.
func loadOneNode(ctx context.Context, o *options, r *report) error {
	n, err := startNode(o, "load1", "--dev")
	if err != nil {
		return err
	}
	defer n.stop()
	res, err := agentLoad(ctx, o, n.ws(), "load1", o.devices)
	r.detail("load1", res)
	if err != nil {
		return err
	}
	st := statusMet
	if res.CheckoutsPS < 50_000 || res.LatencyP99ms > 25 {
		st = statusMissed
	}
	r.add(figure{Target: targetWS1, Want: ">= 50,000/s, p99 <= 25 ms", Value: res.CheckoutsPS, Unit: "checkouts/s", Status: st,
		Got:    fmt.Sprintf("%.0f/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms", res.CheckoutsPS, res.LatencyP50ms, res.LatencyP99ms, res.LatencyP999ms),
		Source: fmt.Sprintf("tally-agent load, %d devices, %s, against tallyd --dev (fsync on)", res.Connected, o.duration),
		Note:   fmt.Sprintf("%d errors, %d denials; latency is of each request (checkout or return)%s", res.Errors, res.Denials, firstError(res))})

	// Each of the devices above waits for its answer before it asks
	// again, so at the node's full rate a request's latency is mostly its
	// wait behind the others' (devices / rate). The same node with a tenth
	// of the devices shows the latency of a less crowded queue.
	few := max(o.devices/10, 1)
	res, err = agentLoad(ctx, o, n.ws(), "load1-few", few)
	r.detail("load1Few", res)
	if err != nil {
		return err
	}
	r.add(figure{Target: "checkouts over WebSocket, one node, durable, a tenth of the devices", Status: statusInfo,
		Got:    fmt.Sprintf("%.0f/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms", res.CheckoutsPS, res.LatencyP50ms, res.LatencyP99ms, res.LatencyP999ms),
		Source: fmt.Sprintf("tally-agent load, %d devices, %s, against the same tallyd --dev", res.Connected, o.duration),
		Note:   fmt.Sprintf("%d errors, %d denials%s", res.Errors, res.Denials, firstError(res))})
	return nil
}

// cluster starts three nodes on loopback: n1 with --dev, n2 and n3 joined
// with tokens, and waits until it is healthy.
func startCluster(ctx context.Context, o *options, prefix string) ([]*node, error) {
	raftPort := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "0"
		}
		defer ln.Close()
		_, p, _ := net.SplitHostPort(ln.Addr().String())
		return p
	}
	n1, err := startNode(o, prefix+"1", "--dev", "--raft-port", raftPort())
	if err != nil {
		return nil, err
	}
	nodes := []*node{n1}
	join := strings.TrimPrefix(n1.url, "https://")
	for _, name := range []string{prefix + "2", prefix + "3"} {
		out, err := n1.ctl(o, "cluster", "token", "--description", "bench")
		if err != nil {
			stopAll(nodes)
			return nil, fmt.Errorf("cluster token: %v: %s", err, out)
		}
		n, err := startNode(o, name, "--raft-port", raftPort(), "--join", join, "--join-token", strings.Fields(out)[0])
		if err != nil {
			stopAll(nodes)
			return nil, err
		}
		nodes = append(nodes, n)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := clusterStatus(o, nodes[2])
		if err == nil && st.Healthy && len(st.Members) == 3 {
			return nodes, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stopAll(nodes)
			return nil, fmt.Errorf("the cluster did not become healthy: %+v %v", st, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func stopAll(nodes []*node) {
	for _, n := range nodes {
		n.stop()
	}
}

type clusterStatusJSON struct {
	Leader  string `json:"leader"`
	Healthy bool   `json:"healthy"`
	Members []struct {
		ID string `json:"id"`
	} `json:"members"`
}

func clusterStatus(o *options, n *node) (clusterStatusJSON, error) {
	var st clusterStatusJSON
	out, err := n.ctl(o, "--json", "cluster", "status")
	if err != nil {
		return st, fmt.Errorf("%v: %s", err, oneLine(out))
	}
	return st, json.Unmarshal([]byte(out), &st)
}

// loadThreeNodes runs tally-agent load against each node of a cluster of
// three at once.
func loadThreeNodes(ctx context.Context, o *options, r *report) error {
	nodes, err := startCluster(ctx, o, "c")
	if err != nil {
		return err
	}
	defer stopAll(nodes)
	type out struct {
		res loadResult
		err error
	}
	results := make(chan out, len(nodes))
	per := max(1, o.devices/len(nodes))
	for _, n := range nodes {
		go func() {
			res, err := agentLoad(ctx, o, n.ws(), "load3-"+n.name, per)
			results <- out{res, err}
		}()
	}
	var sum loadResult
	var errs []string
	var all []loadResult
	for range nodes {
		o := <-results
		if o.err != nil {
			errs = append(errs, o.err.Error())
			continue
		}
		all = append(all, o.res)
		sum.Connected += o.res.Connected
		sum.CheckoutsPS += o.res.CheckoutsPS
		sum.Errors += o.res.Errors
		if sum.FirstError == "" {
			sum.FirstError = o.res.FirstError
		}
		sum.LatencyP50ms = max(sum.LatencyP50ms, o.res.LatencyP50ms)
		sum.LatencyP99ms = max(sum.LatencyP99ms, o.res.LatencyP99ms)
		sum.LatencyP999ms = max(sum.LatencyP999ms, o.res.LatencyP999ms)
	}
	r.detail("load3", all)
	if len(all) == 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	st := statusMet
	if sum.CheckoutsPS < 20_000 || sum.LatencyP99ms > 50 || len(errs) > 0 {
		st = statusMissed
	}
	errNote := ""
	if sum.FirstError != "" {
		errNote = "; first error: " + sum.FirstError
	}
	r.add(figure{Target: targetWS3, Want: ">= 20,000/s, p99 <= 50 ms", Value: sum.CheckoutsPS, Unit: "checkouts/s", Status: st,
		Got:    fmt.Sprintf("%.0f/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms", sum.CheckoutsPS, sum.LatencyP50ms, sum.LatencyP99ms, sum.LatencyP999ms),
		Source: fmt.Sprintf("three tallyd processes on loopback, one tally-agent load against each (%d devices in all, %s)", sum.Connected, o.duration),
		Note:   fmt.Sprintf("rates summed; each percentile is the worst of the three loads; %d errors%s", sum.Errors, errNote)})
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}

	// Devices that find the cluster by discovery all talk to the leader
	// (its endpoint comes first in the offer); the followers only
	// replicate. The same devices, all on the leader:
	cs, err := clusterStatus(o, nodes[0])
	if err != nil {
		return err
	}
	i := slices.IndexFunc(nodes, func(n *node) bool { return n.name == cs.Leader })
	if i < 0 {
		return fmt.Errorf("no leader in %+v", cs)
	}
	res, err := agentLoad(ctx, o, nodes[i].ws(), "load3-leader", sum.Connected)
	r.detail("load3Leader", res)
	if err != nil {
		return err
	}
	r.add(figure{Target: "checkouts over WebSocket, three nodes on one host, durable, every device on the leader", Status: statusInfo,
		Got:    fmt.Sprintf("%.0f/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms", res.CheckoutsPS, res.LatencyP50ms, res.LatencyP99ms, res.LatencyP999ms),
		Source: fmt.Sprintf("the same three tallyd processes, one tally-agent load of %d devices against the leader %s, %s", res.Connected, cs.Leader, o.duration),
		Note:   fmt.Sprintf("as devices that found the cluster by discovery connect; %d errors%s", res.Errors, firstError(res))})
	return nil
}

func firstError(res loadResult) string {
	if res.FirstError == "" {
		return ""
	}
	return "; first error: " + res.FirstError
}
