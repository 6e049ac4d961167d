package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// labelKey marks every container, network and volume of a run.
const labelKey = "tally.chaos.run"

// node is one tallyd container.
type node struct {
	id        string // node ID and host name: tally1…
	container string // container name
	volume    string
	ip        string
	// disk, when set, is bound as /data instead of the volume.
	disk *smallDisk
}

// cluster is the run's Docker network and its nodes.
type cluster struct {
	run      string
	image    string
	network  string
	subnet   string // first three octets
	password string
	nodes    []*node
}

// docker runs the docker CLI and returns its combined output.
func docker(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newCluster creates the network on a free /24 and names the nodes.
func newCluster(ctx context.Context, run, image string, size int) (*cluster, error) {
	c := &cluster{run: run, image: image, network: run + "-net", password: randomHex(16)}
	if err := os.Setenv("TALLY_ADMIN_PASSWORD", c.password); err != nil {
		return nil, err
	}
	var err error
	for range 20 {
		n, _ := rand.Int(rand.Reader, big.NewInt(200))
		c.subnet = "10.231." + strconv.Itoa(int(n.Int64())+20)
		_, err = docker(ctx, time.Minute, "network", "create", "--label", labelKey+"="+run,
			"--subnet", c.subnet+".0/24", c.network)
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	for i := 1; i <= size; i++ {
		id := "tally" + strconv.Itoa(i)
		c.nodes = append(c.nodes, &node{
			id:        id,
			container: run + "-" + id,
			volume:    run + "-" + id + "-data",
			ip:        c.subnet + "." + strconv.Itoa(10+i),
		})
	}
	return c, nil
}

// start creates and starts n's container from image on its volume.
func (c *cluster) start(ctx context.Context, n *node, image string) error {
	mount := "type=volume,source=" + n.volume + ",target=/data,volume-label=" + labelKey + "=" + c.run
	if n.disk != nil {
		mount = "type=bind,source=" + n.disk.dir + ",target=/data"
	}
	_, err := docker(ctx, 2*time.Minute, "run", "-d",
		"--name", n.container, "--hostname", n.id,
		"--label", labelKey+"="+c.run,
		"--network", c.network, "--ip", n.ip,
		"--mount", mount,
		// From this process's environment, so that no error shows it.
		"-e", "TALLY_ADMIN_PASSWORD",
		image,
		"--data-dir", "/data", "--bind", "0.0.0.0", "--node-id", n.id,
		"--bootstrap-expect", strconv.Itoa(len(c.nodes)), "--dev")
	return err
}

// remove removes n's container (its volume stays).
func (c *cluster) remove(ctx context.Context, n *node) error {
	_, err := docker(ctx, time.Minute, "rm", "-f", n.container)
	return err
}

// pid is the host PID of n's tallyd.
func (c *cluster) pid(ctx context.Context, n *node) (string, error) {
	out, err := docker(ctx, 30*time.Second, "inspect", "-f", "{{.State.Pid}}", n.container)
	if err != nil {
		return "", err
	}
	if out == "0" || out == "" {
		return "", fmt.Errorf("%s is not running", n.id)
	}
	return out, nil
}

// iptables runs iptables in n's network namespace.
func (c *cluster) iptables(ctx context.Context, n *node, args ...string) error {
	pid, err := c.pid(ctx, n)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	full := append([]string{"-t", pid, "-n", "iptables", "-w"}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", full...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("nsenter %s: %w: %s", strings.Join(full, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// cut drops all traffic between a and b, both ways, in both namespaces.
func (c *cluster) cut(ctx context.Context, a, b *node) error {
	for _, p := range [][2]*node{{a, b}, {b, a}} {
		if err := c.iptables(ctx, p[0], "-A", "INPUT", "-s", p[1].ip, "-j", "DROP"); err != nil {
			return err
		}
		if err := c.iptables(ctx, p[0], "-A", "OUTPUT", "-d", p[1].ip, "-j", "DROP"); err != nil {
			return err
		}
	}
	// The cut is real: a's namespace cannot open b's raft port.
	if c.reachable(ctx, a, b) {
		return fmt.Errorf("%s still reaches %s:61616 through the cut", a.id, b.id)
	}
	return nil
}

// reachable says whether a TCP connection from a's network namespace to
// b's raft port opens within a second.
func (c *cluster) reachable(ctx context.Context, from, to *node) bool {
	pid, err := c.pid(ctx, from)
	if err != nil {
		return false
	}
	err = exec.CommandContext(ctx, "nsenter", "-t", pid, "-n", "timeout", "1",
		"bash", "-c", "exec 3<>/dev/tcp/"+to.ip+"/61616").Run()
	return err == nil
}

// cleanup removes every container, the network and the volumes of the run.
func cleanup(run string) error {
	ctx := context.Background()
	filter := "label=" + labelKey + "=" + run
	var errs []string
	if ids, err := docker(ctx, time.Minute, "ps", "-aq", "--filter", filter); err == nil && ids != "" {
		if _, err := docker(ctx, 2*time.Minute, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if ids, err := docker(ctx, time.Minute, "network", "ls", "-q", "--filter", filter); err == nil && ids != "" {
		if _, err := docker(ctx, time.Minute, append([]string{"network", "rm"}, strings.Fields(ids)...)...); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if ids, err := docker(ctx, time.Minute, "volume", "ls", "-q", "--filter", filter); err == nil && ids != "" {
		if _, err := docker(ctx, time.Minute, append([]string{"volume", "rm", "-f"}, strings.Fields(ids)...)...); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cleanup: %s", strings.Join(errs, "; "))
	}
	return nil
}
