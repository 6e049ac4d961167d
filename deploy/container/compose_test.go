package container

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Bounds of the test and of each wait in it.
const (
	testTimeout     = 6 * time.Minute
	upTimeout       = 3 * time.Minute // compose up waits for the nodes' health
	formTimeout     = 2 * time.Minute
	failoverTimeout = 30 * time.Second
	// viewTimeout bounds the wait for what a node shows: an admin login on
	// a follower can take most of a minute after the leader dies.
	viewTimeout    = 2 * time.Minute
	catchUpTimeout = 90 * time.Second
	downTimeout    = 2 * time.Minute
	commandTimeout = 75 * time.Second // one docker command; tallyctl gives up after 60s
)

// nodes are the compose services running tallyd; each is its node ID too.
var nodes = []string{"tally1", "tally2", "tally3"}

// agentOf is the device container that checks out against node.
func agentOf(node string) string { return "agent" + strings.TrimPrefix(node, "tally") }

// TestComposeCluster starts deploy/compose.yaml and follows the life of
// the cluster: it forms by mDNS, every node grants leases, the leader is
// killed and a new one is elected with every lease kept, and the killed
// node comes back and catches up.
func TestComposeCluster(t *testing.T) {
	if os.Getenv("TALLY_E2E") != "1" {
		t.Skip("the container end-to-end test needs Docker and runs only with TALLY_E2E=1: make e2e-container")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	started := time.Now()
	step := func(format string, args ...any) {
		t.Logf("%6.1fs  %s", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}

	p := newProject(ctx, t)
	step("project %s: image %s, subnet %s.0/24, https on 127.0.0.1:%d", p.name, p.image, p.subnet, p.httpsPort)
	if out, err := p.compose(ctx, upTimeout, "up", "-d"); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	step("compose up done")

	// Formed: every node healthy to Docker and one leader of three voters
	// that every node names.
	ids := p.containers(ctx)
	var leader string
	err := waitFor(ctx, formTimeout, func() error {
		for _, n := range nodes {
			if h := p.health(ctx, ids[n]); h != "healthy" {
				return fmt.Errorf("%s is %q", n, h)
			}
		}
		l, err := p.agreedLeader(ctx, nodes, nodes)
		leader = l
		return err
	})
	if err != nil {
		t.Fatalf("the cluster did not form within %s: %v", formTimeout, err)
	}
	step("cluster formed by mDNS: leader %s, 3 voters, every node healthy", leader)
	p.checkPublishedPort(ctx)

	// Leases granted through every node: each device container checks
	// out on its own node, for itself and for two more hostids.
	want := leases{}
	for _, n := range nodes {
		a := agentOf(n)
		err := errors.Join(
			p.checkout(ctx, want, a, n, a, "cad", "1.0", 2),
			p.checkout(ctx, want, a, n, a, "viewer", "2.0", 1),
			p.checkout(ctx, want, a, n, a+"-dev1", "viewer", "2.0", 1),
			p.checkout(ctx, want, a, n, a+"-dev2", "viewer", "2.0", 1),
		)
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if err := waitFor(ctx, 20*time.Second, func() error { return p.checkLeases(ctx, n, want) }); err != nil {
			t.Fatalf("before the leader is killed: %v", err)
		}
	}
	step("%d leases granted through the three nodes, every node shows them", len(want))

	// The leader dies: the others elect one of themselves and keep every
	// lease.
	killed := leader
	survivors := slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return n == killed })
	if out, err := p.run(ctx, commandTimeout, "docker", "kill", ids[killed]); err != nil {
		t.Fatalf("docker kill %s: %v\n%s", killed, err, out)
	}
	killedAt := time.Now()
	err = waitFor(ctx, failoverTimeout, func() error {
		l, err := p.healthLeader(ctx, survivors)
		leader = l
		return err
	})
	if err != nil {
		t.Fatalf("no new leader within %s of killing %s: %v", failoverTimeout, killed, err)
	}
	step("killed leader %s; %s leads %.1fs later (health polled, no login)", killed, leader, time.Since(killedAt).Seconds())
	// Devices check out through both survivors, the follower forwarding
	// to the new leader.
	for _, n := range survivors {
		attempts := 0
		err := waitFor(ctx, viewTimeout, func() error {
			attempts++
			err := p.checkout(ctx, want, agentOf(n), n, "after-"+n, "cad", "1.0", 1)
			if err != nil {
				t.Logf("attempt %d: %v", attempts, err)
			}
			return err
		})
		if err != nil {
			t.Fatalf("after %s was killed: %v", killed, err)
		}
		step("checkout through %s granted at attempt %d, %.1fs after the kill", n, attempts, time.Since(killedAt).Seconds())
	}
	for _, n := range survivors {
		if err := waitFor(ctx, viewTimeout, func() error { return p.checkLeases(ctx, n, want) }); err != nil {
			t.Fatalf("after %s was killed: %v", killed, err)
		}
	}
	step("every lease kept on %s, %.1fs after the kill", strings.Join(survivors, " and "), time.Since(killedAt).Seconds())
	err = waitFor(ctx, viewTimeout, func() error {
		_, err := p.agreedLeader(ctx, survivors, []string{leader})
		return err
	})
	if err != nil {
		t.Fatalf("after %s was killed: %v", killed, err)
	}
	info, err := p.clusterStatus(ctx, leader)
	if err != nil {
		t.Fatalf("cluster status on %s: %v", leader, err)
	}
	target := info.member(leader).AppliedIndex
	step("both survivors name %s the leader; its applied index is %d", leader, target)

	// The killed node comes back with its volume and catches up.
	if out, err := p.run(ctx, commandTimeout, "docker", "start", ids[killed]); err != nil {
		t.Fatalf("docker start %s: %v\n%s", killed, err, out)
	}
	err = waitFor(ctx, catchUpTimeout, func() error {
		if h := p.health(ctx, ids[killed]); h != "healthy" {
			return fmt.Errorf("%s is %q", killed, h)
		}
		if _, err := p.agreedLeader(ctx, nodes, nodes); err != nil {
			return err
		}
		info, err := p.clusterStatus(ctx, killed)
		if err != nil {
			return err
		}
		if got := info.member(killed).AppliedIndex; got < target {
			return fmt.Errorf("%s applied %d, the leader had applied %d", killed, got, target)
		}
		return p.checkLeases(ctx, killed, want)
	})
	if err != nil {
		t.Fatalf("%s did not catch up within %s of its restart: %v", killed, catchUpTimeout, err)
	}
	step("%s restarted, healthy, caught up with every lease", killed)

	// What the image promises: a non-root user, a health check that
	// passes, and the version it is labelled with.
	for _, n := range nodes {
		p.checkNonRoot(ctx, n, ids[n])
		p.checkHealthLog(ctx, n, ids[n])
	}
	version := p.checkVersion(ctx)
	step("every tallyd runs as 10001:10001, its health check passes, and it is version %s as labelled", version)
}

// project is one compose project of deploy/compose.yaml.
type project struct {
	t         *testing.T
	name      string
	image     string
	subnet    string // the first three octets of the project's /24
	httpsPort int
	password  string
	command   []string // docker-compose, or docker compose
	env       []string
	ids       map[string]string // service → container, once up
}

// newProject chooses a unique name, a free subnet and port and a
// password, and takes the project down with its volumes when the test
// ends.
func newProject(ctx context.Context, t *testing.T) *project {
	p := &project{t: t, name: "tallye2e" + randomHex(t, 4), password: randomHex(t, 16)}
	p.command = composeCommand(ctx)
	if p.command == nil {
		t.Fatal("neither docker-compose nor docker compose is available")
	}
	p.image = os.Getenv("TALLY_IMAGE")
	if p.image == "" {
		// Not from make e2e-container: build the image here.
		p.image = "tally-e2e:" + p.name
		out, err := p.run(ctx, 3*time.Minute, "make", "-C", filepath.Join("..", ".."), "image", "IMAGE=tally-e2e", "IMAGE_TAG="+p.name)
		if err != nil {
			t.Fatalf("make image: %v\n%s", err, out)
		}
		t.Cleanup(func() {
			p.run(context.Background(), commandTimeout, "docker", "image", "rm", p.image, "tally-e2e:latest")
		})
	}
	if out, err := p.run(ctx, commandTimeout, "docker", "image", "inspect", "-f", "{{.Id}}", p.image); err != nil {
		t.Fatalf("image %s: %v\n%s", p.image, err, out)
	}
	p.subnet = freeSubnet(ctx, t, p)
	p.httpsPort = freePort(t)
	p.env = append(os.Environ(),
		"TALLY_IMAGE="+p.image,
		"TALLY_NET="+p.subnet,
		"TALLY_HTTPS_PORT="+strconv.Itoa(p.httpsPort),
		"TALLY_ADMIN_PASSWORD="+p.password,
		// For tallyctl in the containers: docker exec -e TALLY_PASSWORD.
		"TALLY_PASSWORD="+p.password,
	)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), downTimeout)
		defer cancel()
		if t.Failed() {
			out, _ := p.compose(ctx, commandTimeout, "ps")
			t.Logf("compose ps:\n%s", out)
			out, _ = p.compose(ctx, commandTimeout, "logs", "--no-color", "--tail", "40")
			t.Logf("compose logs:\n%s", out)
		}
		p.down(ctx)
	})
	return p
}

// down removes the project's containers, network and volumes. Docker 20.10
// sometimes refuses to remove a network whose containers are all gone
// ("has active endpoints", moby/moby#42119), and compose then stops before
// the volumes: what compose leaves is removed by the project's label. A
// network Docker keeps that way is empty; only a restart of dockerd
// frees it.
func (p *project) down(ctx context.Context) {
	out, err := p.compose(ctx, downTimeout, "down", "--volumes", "--remove-orphans", "--timeout", "10")
	if err == nil {
		return
	}
	p.t.Logf("compose down: %v\n%s", err, out)
	label := "label=com.docker.compose.project=" + p.name
	left := func(kind string) []string {
		args := []string{kind, "ls", "-q", "--filter", label}
		if kind == "container" {
			args = append(args, "--all")
		}
		out, err := p.run(ctx, commandTimeout, "docker", args...)
		if err != nil {
			p.t.Errorf("the project's %ss: %v", kind, err)
		}
		return strings.Fields(out)
	}
	if ids := left("container"); len(ids) > 0 {
		if _, err := p.run(ctx, commandTimeout, "docker", append([]string{"rm", "-f", "-v"}, ids...)...); err != nil {
			p.t.Errorf("remove the project's containers: %v", err)
		}
	}
	if ids := left("volume"); len(ids) > 0 {
		if _, err := p.run(ctx, commandTimeout, "docker", append([]string{"volume", "rm"}, ids...)...); err != nil {
			p.t.Errorf("remove the project's volumes: %v", err)
		}
	}
	for _, id := range left("network") {
		err := waitFor(ctx, 10*time.Second, func() error {
			_, err := p.run(ctx, commandTimeout, "docker", "network", "rm", id)
			return err
		})
		if err != nil {
			p.t.Logf("Docker keeps the project's empty network %s (moby/moby#42119): %v", id, err)
		}
	}
}

// composeCommand is docker-compose, or the compose plugin of docker.
func composeCommand(ctx context.Context) []string {
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	if exec.CommandContext(ctx, "docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	return nil
}

// run runs a command with the project's environment and returns its
// standard output; an error carries standard error.
func (p *project) run(ctx context.Context, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = p.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), err
}

// compose runs a compose command on the project.
func (p *project) compose(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	full := append(slices.Clone(p.command[1:]), "-f", filepath.Join("..", "compose.yaml"), "-p", p.name)
	return p.run(ctx, timeout, p.command[0], append(full, args...)...)
}

// containers finds the container of each of the project's services by
// the labels compose gives them (one docker ps rather than a compose ps
// per service, which takes seconds with docker-compose 1).
func (p *project) containers(ctx context.Context) map[string]string {
	out, err := p.run(ctx, commandTimeout, "docker", "ps", "-a", "--no-trunc",
		"--filter", "label=com.docker.compose.project="+p.name,
		"--format", `{{.ID}} {{.Label "com.docker.compose.service"}}`)
	if err != nil {
		p.t.Fatalf("the project's containers: %v", err)
	}
	p.ids = map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if id, service, ok := strings.Cut(line, " "); ok {
			p.ids[service] = id
		}
	}
	for _, service := range append(slices.Clone(nodes), "agent1", "agent2", "agent3", "load") {
		if p.ids[service] == "" {
			p.t.Fatalf("no container of %s in %q", service, out)
		}
	}
	return p.ids
}

// health is Docker's health status of a container.
func (p *project) health(ctx context.Context, id string) string {
	out, err := p.run(ctx, commandTimeout, "docker", "inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}", id)
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(out)
}

// tallyctl runs tallyctl --json in a node's container, logged in as admin.
func (p *project) tallyctl(ctx context.Context, node string, out any, args ...string) error {
	full := append([]string{"exec", "-e", "TALLY_PASSWORD", p.ids[node], "/tallyctl", "--insecure", "--json"}, args...)
	stdout, err := p.run(ctx, commandTimeout, "docker", full...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		return fmt.Errorf("tallyctl %s on %s: %w: %q", strings.Join(args, " "), node, err, stdout)
	}
	return nil
}

// clusterInfo is what GET /api/v1/cluster says of the cluster.
type clusterInfo struct {
	Node    string          `json:"node"`
	Leader  string          `json:"leader"`
	Healthy bool            `json:"healthy"`
	Voters  int             `json:"voters"`
	Members []clusterMember `json:"members"`
}

// clusterMember is what it says of a member.
type clusterMember struct {
	ID           string `json:"id"`
	Voter        bool   `json:"voter"`
	Reachable    bool   `json:"reachable"`
	Leader       string `json:"leader"`
	AppliedIndex uint64 `json:"appliedIndex"`
}

// member returns the member with the node ID id (zero when there is none).
func (c clusterInfo) member(id string) clusterMember {
	for _, m := range c.Members {
		if m.ID == id {
			return m
		}
	}
	return clusterMember{}
}

func (p *project) clusterStatus(ctx context.Context, node string) (clusterInfo, error) {
	var info clusterInfo
	err := p.tallyctl(ctx, node, &info, "cluster", "status")
	return info, err
}

// agreedLeader asks each of askNodes for the cluster's status and returns
// the leader when all name the same one, among candidates, and reach it.
// The cluster is three voters throughout.
func (p *project) agreedLeader(ctx context.Context, askNodes, candidates []string) (string, error) {
	leader := ""
	for _, n := range askNodes {
		info, err := p.clusterStatus(ctx, n)
		if err != nil {
			return "", err
		}
		switch {
		case info.Voters != 3:
			return "", fmt.Errorf("%s sees %d voters, want 3", n, info.Voters)
		case !slices.Contains(candidates, info.Leader):
			return "", fmt.Errorf("%s sees leader %q, want one of %v", n, info.Leader, candidates)
		case leader != "" && info.Leader != leader:
			return "", fmt.Errorf("%s sees leader %s, another node %s", n, info.Leader, leader)
		case !info.member(info.Leader).Reachable:
			return "", fmt.Errorf("%s does not reach the leader %s", n, info.Leader)
		}
		for _, m := range info.Members {
			if slices.Contains(askNodes, m.ID) && !m.Reachable {
				return "", fmt.Errorf("%s does not reach %s", n, m.ID)
			}
		}
		leader = info.Leader
	}
	return leader, nil
}

// healthLeader asks each of askNodes for its health (no login) and
// returns the one that says it leads, when exactly one does.
func (p *project) healthLeader(ctx context.Context, askNodes []string) (string, error) {
	var leaders []string
	for _, n := range askNodes {
		out, err := p.run(ctx, commandTimeout, "docker", "exec", p.ids[n], "/tallyctl", "--insecure", "--json", "health")
		if err != nil {
			return "", err
		}
		var h struct{ Leader bool }
		if err := json.Unmarshal([]byte(out), &h); err != nil {
			return "", fmt.Errorf("health of %s: %w: %q", n, err, out)
		}
		if h.Leader {
			leaders = append(leaders, n)
		}
	}
	if len(leaders) != 1 {
		return "", fmt.Errorf("leaders among %v: %v", askNodes, leaders)
	}
	return leaders[0], nil
}

// checkPublishedPort asks tally1 for its health through the port it
// publishes on the host's loopback.
func (p *project) checkPublishedPort(ctx context.Context) {
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // the node's self-signed certificate
	}
	defer client.CloseIdleConnections()
	url := fmt.Sprintf("https://127.0.0.1:%d/api/v1/health", p.httpsPort)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	res, err := client.Do(req)
	if err != nil {
		p.t.Fatalf("health through the published port: %v", err)
	}
	defer res.Body.Close()
	var h struct{ Status, Node string }
	if err := json.NewDecoder(res.Body).Decode(&h); err != nil || res.StatusCode != http.StatusOK || h.Status != "ok" || h.Node != "tally1" {
		p.t.Fatalf("GET %s: %s, %+v, %v; want 200 ok from tally1", url, res.Status, h, err)
	}
}

// lease is a device's hold on a feature version.
type lease struct{ device, feature, version string }

// leases are the counts the devices were granted.
type leases map[lease]int64

// checkout has hostid check count of a feature out from the agent
// container against node, and records the grant in want. Asking again
// after a failure is safe: holding the same count is a renewal.
func (p *project) checkout(ctx context.Context, want leases, agent, node, hostid, feature, ver string, count int64) error {
	out, err := p.run(ctx, commandTimeout, "docker", "exec", p.ids[agent], "/tally-agent",
		"--server", "wss://"+node+":8443", "--insecure", "--hostid", hostid, "--json",
		"checkout", feature, ver, strconv.FormatInt(count, 10))
	if err != nil {
		return fmt.Errorf("checkout on %s: %w", node, err)
	}
	var res struct {
		Grants []struct {
			Feature, Version string
			Count            int64
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return fmt.Errorf("checkout on %s: %w: %q", node, err, out)
	}
	for _, g := range res.Grants {
		if g.Feature == feature && g.Version == ver && g.Count == count {
			want[lease{hostid, feature, ver}] = count
			return nil
		}
	}
	return fmt.Errorf("checkout of %s %s %d by %s on %s: granted %+v", feature, ver, count, hostid, node, res.Grants)
}

// checkLeases compares the devices each feature in want serves, as node
// shows them, with want.
func (p *project) checkLeases(ctx context.Context, node string, want leases) error {
	features := map[[2]string]bool{}
	for l := range want {
		features[[2]string{l.feature, l.version}] = true
	}
	got := leases{}
	for _, f := range slices.SortedFunc(maps.Keys(features), func(a, b [2]string) int { return strings.Compare(a[0]+a[1], b[0]+b[1]) }) {
		var detail struct {
			Served []struct {
				Device struct{ Value string }
				Count  int64
			}
		}
		if err := p.tallyctl(ctx, node, &detail, "features", "show", f[0], f[1]); err != nil {
			return err
		}
		for _, s := range detail.Served {
			got[lease{s.Device.Value, f[0], f[1]}] = s.Count
		}
	}
	if !maps.Equal(got, want) {
		return fmt.Errorf("%s serves %v, want %v", node, got, want)
	}
	return nil
}

// checkNonRoot checks that the node's processes run as 10001:10001.
func (p *project) checkNonRoot(ctx context.Context, node, id string) {
	out, err := p.run(ctx, commandTimeout, "docker", "inspect", "-f", "{{.Config.User}}", id)
	if err != nil || strings.TrimSpace(out) != "10001:10001" {
		p.t.Errorf("%s: configured user %q, %v; want 10001:10001", node, strings.TrimSpace(out), err)
	}
	out, err = p.run(ctx, commandTimeout, "docker", "top", id, "-o", "pid,uid,gid,args")
	if err != nil {
		p.t.Fatalf("docker top %s: %v", node, err)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")[1:]
	if len(rows) == 0 {
		p.t.Errorf("%s: no process", node)
	}
	for _, row := range rows {
		if f := strings.Fields(row); len(f) < 4 || f[1] != "10001" || f[2] != "10001" {
			p.t.Errorf("%s: process %q, want uid and gid 10001", node, row)
		}
	}
}

// checkHealthLog checks Docker's record of the node's health check.
func (p *project) checkHealthLog(ctx context.Context, node, id string) {
	out, err := p.run(ctx, commandTimeout, "docker", "inspect", "-f", "{{json .State.Health}}", id)
	if err != nil {
		p.t.Fatalf("docker inspect %s: %v", node, err)
	}
	var h struct {
		Status string
		Log    []struct {
			ExitCode int
			Output   string
		}
	}
	if err := json.Unmarshal([]byte(out), &h); err != nil || len(h.Log) == 0 {
		p.t.Fatalf("%s: health %q: %v", node, out, err)
	}
	last := h.Log[len(h.Log)-1]
	if h.Status != "healthy" || last.ExitCode != 0 || !strings.Contains(last.Output, "ok") || !strings.Contains(last.Output, node) {
		p.t.Errorf("%s: health %s, last check exit %d: %q", node, h.Status, last.ExitCode, last.Output)
	}
}

// checkVersion compares the image's version label with what tallyd says
// it is, and returns it.
func (p *project) checkVersion(ctx context.Context) string {
	label, err := p.run(ctx, commandTimeout, "docker", "image", "inspect", "-f", `{{index .Config.Labels "org.opencontainers.image.version"}}`, p.image)
	if err != nil {
		p.t.Fatal(err)
	}
	out, err := p.run(ctx, commandTimeout, "docker", "exec", p.ids["tally1"], "/tallyd", "version")
	if err != nil {
		p.t.Fatal(err)
	}
	label = strings.TrimSpace(label)
	if got := strings.TrimSpace(out); label == "" || got != "tallyd "+label {
		p.t.Errorf("image labelled version %q, tallyd says %q", label, got)
	}
	return label
}

// waitFor calls check every half second until it succeeds or timeout
// passes, and returns its last error.
func waitFor(ctx context.Context, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// freeSubnet returns the first three octets of a /24 in 172.29.0.0/16 that
// no Docker network on this host overlaps, chosen at random so that
// parallel runs rarely meet.
func freeSubnet(ctx context.Context, t *testing.T, p *project) string {
	ids, err := p.run(ctx, commandTimeout, "docker", "network", "ls", "-q")
	if err != nil {
		t.Fatal(err)
	}
	var used []netip.Prefix
	if ids := strings.Fields(ids); len(ids) > 0 {
		out, err := p.run(ctx, commandTimeout, "docker", append([]string{"network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"}, ids...)...)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range strings.Fields(out) {
			if pfx, err := netip.ParsePrefix(s); err == nil {
				used = append(used, pfx)
			}
		}
	}
	start, err := rand.Int(rand.Reader, big.NewInt(256))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 256 {
		third := (int(start.Int64()) + i) % 256
		candidate := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 29, byte(third), 0}), 24)
		if !slices.ContainsFunc(used, candidate.Overlaps) {
			return fmt.Sprintf("172.29.%d", third)
		}
	}
	t.Fatal("every /24 of 172.29.0.0/16 is taken by a Docker network")
	return ""
}

// freePort returns a TCP port free on the host's loopback.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
