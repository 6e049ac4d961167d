package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLANPresence runs the real binaries on a real broadcast domain: three
// network namespaces on a bridge, tallyd in the first, a device agent
// answering scans in each of the others. A device finds the server by
// broadcast and checks out through what it found; the administrator's
// scan finds both devices and the online check sees them.
func TestLANPresence(t *testing.T) {
	ipCmd, ns := lanNamespaces(t, "tlan", "10.78.0", 3)
	bin := buildBinaries(t)
	work := t.TempDir()
	home := filepath.Join(work, "home")
	env := append(os.Environ(), "HOME="+home, "TALLY_ADMIN_PASSWORD=lan test password")
	in := func(name, prog string, args ...string) *exec.Cmd {
		cmd := exec.Command(ipCmd, append([]string{"netns", "exec", name, filepath.Join(bin, prog)}, args...)...)
		cmd.Env = env
		return cmd
	}
	run := func(name, prog string, args ...string) string {
		t.Helper()
		out, err := in(name, prog, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s in %s: %v\n%s", prog, strings.Join(args, " "), name, err, out)
		}
		return string(out)
	}
	background := func(cmd *exec.Cmd) {
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}

	// The server, on every address of its namespace.
	server := in(ns[0], "tallyd", "--dev", "--bind", "0.0.0.0", "--data-dir", filepath.Join(work, "data"), "--node-id", "lan1")
	stdout, err := server.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	server.Stderr = os.Stderr
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	background(server)
	var fingerprint string
	sc := bufio.NewScanner(stdout)
	for fingerprint == "" && sc.Scan() {
		if fp, ok := strings.CutPrefix(sc.Text(), "Licensing ID fingerprint: "); ok {
			fingerprint = fp
		}
	}
	if fingerprint == "" {
		t.Fatal("tallyd did not start")
	}
	go func() {
		for sc.Scan() {
		}
	}()

	// Two devices answer scans and pings. The second, with a home of its
	// own, follows the first invitation it gets and says so on stdout.
	var invited chan string
	for i, name := range ns[1:] {
		listen := in(name, "tally-agent", "--hostid", fmt.Sprintf("lan-device-%d", i+1), "listen", "--no-hw")
		if i == 1 {
			// The server's TLS certificate is self-signed: the device
			// checks the licensing ID instead, in the invitation and in the
			// welcome.
			listen = in(name, "tally-agent", "--insecure", "--hostid", "lan-device-2", "listen", "--no-hw", "--accept-first-invite")
			listen.Env = append(listen.Env, "HOME="+filepath.Join(work, "home2"))
			out, err := listen.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			listen.Stderr = os.Stderr
			invited = make(chan string, 16)
			go func() {
				lines := bufio.NewScanner(out)
				for lines.Scan() {
					invited <- lines.Text()
				}
				close(invited)
			}()
		}
		if err := listen.Start(); err != nil {
			t.Fatal(err)
		}
		background(listen)
	}

	// A device finds the server by broadcast and checks out through it.
	out := run(ns[1], "tally-agent", "--identity", fingerprint, "--hostid", "lan-device-1", "discover", "--timeout", "3s")
	if !strings.Contains(out, "wss://10.78.0.1:8443/ws/device") {
		t.Fatalf("discover found no offer from 10.78.0.1:\n%s", out)
	}
	out = run(ns[1], "tally-agent", "--server", "discover", "--insecure", "--identity", fingerprint,
		"--hostid", "lan-device-1", "checkout", "cad", "1.0", "2")
	if !strings.Contains(out, "cad 1.0: 2 held") {
		t.Fatalf("checkout through discovery:\n%s", out)
	}

	// The administrator's scan, by broadcast, finds both devices, and the
	// online check reaches them.
	ctl := []string{"--server", "https://127.0.0.1:8443", "--insecure"}
	env = append(env, "TALLY_PASSWORD=lan test password")
	out = run(ns[0], "tallyctl", append(ctl, "scan", "--timeout", "3s")...)
	for _, want := range []string{"lan-device-1", "lan-device-2", "10.78.0.2", "10.78.0.3"} {
		if !strings.Contains(out, want) {
			t.Fatalf("scan lacks %s:\n%s", want, out)
		}
	}
	out = run(ns[0], "tallyctl", append(ctl, "ping")...)
	if !strings.Contains(out, "2 of 2") {
		t.Fatalf("ping:\n%s", out)
	}

	// The administrator onboards the second device from the scan's list:
	// it gets a one-time key bound to it in a signed INVITE and onboards,
	// pinning the server's licensing ID; the next scan shows it onboarded
	// here.
	out = run(ns[0], "tallyctl", append(ctl, "onboard", "STRING", "lan-device-2")...)
	if !strings.Contains(out, "invited STRING lan-device-2 at 10.78.0.3:") {
		t.Fatalf("onboard:\n%s", out)
	}
	wantLine := "onboarded lan-device-2 with licensing ID " + fingerprint
	deadline := time.After(time.Minute)
	for followed := false; !followed; {
		select {
		case line, ok := <-invited:
			if !ok {
				t.Fatal("the invited device stopped")
			}
			followed = strings.HasPrefix(line, wantLine)
			if !followed && !strings.HasPrefix(line, "listening on") {
				t.Fatalf("the invited device said %q, want %q", line, wantLine)
			}
		case <-deadline:
			t.Fatal("the invited device did not onboard")
		}
	}
	if pinned, err := os.ReadFile(filepath.Join(work, "home2", ".tally-agent", "server.fingerprint")); err != nil || strings.TrimSpace(string(pinned)) != fingerprint {
		t.Fatalf("pinned %q, %v", pinned, err)
	}
	out = run(ns[0], "tallyctl", append(ctl, "keys", "list", "--json")...)
	if !strings.Contains(out, `"state": "USED"`) || !strings.Contains(out, `"value": "lan-device-2"`) {
		t.Fatalf("the invitation's key is not used by lan-device-2:\n%s", out)
	}
	out = run(ns[0], "tallyctl", append(ctl, "scan", "--timeout", "3s", "--json")...)
	if !strings.Contains(out, `"here": true`) {
		t.Fatalf("the second scan shows no device onboarded here:\n%s", out)
	}

	// Wake-on-LAN through the API: tshark in a device's namespace decodes
	// the magic packet for the right MAC.
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Log("no tshark: the magic packet is not captured")
		return
	}
	capture := exec.Command(ipCmd, "netns", "exec", ns[2], "timeout", "60", tshark, "-l", "-i", "eth0", "-c", "1",
		"-f", "udp dst port 9", "-Y", "wol", "-T", "fields", "-e", "wol.mac")
	var captured strings.Builder
	capture.Stdout = &captured
	progress, err := capture.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := capture.Start(); err != nil {
		t.Fatal(err)
	}
	background(capture)
	ready := bufio.NewScanner(progress)
	for ready.Scan() && !strings.Contains(ready.Text(), "Capturing on") {
	}
	go func() {
		for ready.Scan() {
		}
	}()
	run(ns[0], "tallyctl", append(ctl, "wake", "02:00:00:aa:bb:cc")...)
	capture.Wait()
	// tshark prints the MAC once for each of its 16 repetitions.
	got := strings.Split(strings.TrimSpace(captured.String()), ",")
	if len(got) != 16 || got[0] != "02:00:00:aa:bb:cc" || strings.Count(captured.String(), got[0]) != 16 {
		t.Fatalf("tshark decoded %q as the woken MAC", captured.String())
	}
}

// lanNamespaces makes a LAN of n network namespaces: a bridge in a
// namespace of its own and a veth port to each, whose eth0 has the address
// subnet.1, subnet.2, ... (/24). It returns the ip command and the
// namespaces' names, and skips the test where namespaces cannot be made.
func lanNamespaces(t *testing.T, prefix, subnet string, n int) (string, []string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real processes in network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	ipCmd, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("needs the ip command (iproute2)")
	}
	var r [3]byte
	rand.Read(r[:])
	suffix := hex.EncodeToString(r[:])
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ipCmd, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	bridge := prefix + "br-" + suffix
	if out, err := exec.Command(ipCmd, "netns", "add", bridge).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command(ipCmd, "netns", "del", bridge).Run() })
	ip("-n", bridge, "link", "add", "br0", "type", "bridge")
	ip("-n", bridge, "link", "set", "br0", "up")
	ns := make([]string, n)
	for i := range ns {
		ns[i] = fmt.Sprintf("%s%d-%s", prefix, i, suffix)
		name := ns[i]
		ip("netns", "add", name)
		t.Cleanup(func() { exec.Command(ipCmd, "netns", "del", name).Run() })
		port := fmt.Sprintf("p%d", i)
		ip("-n", bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name)
		ip("-n", bridge, "link", "set", port, "master", "br0", "up")
		ip("-n", name, "link", "set", "lo", "up")
		ip("-n", name, "addr", "add", fmt.Sprintf("%s.%d/24", subnet, i+1), "brd", "+", "dev", "eth0")
		ip("-n", name, "link", "set", "eth0", "up")
	}
	for _, name := range ns {
		up := false
		for range 1000 {
			out, _ := exec.Command(ipCmd, "-n", name, "-o", "link", "show", "eth0").Output()
			if up = strings.Contains(string(out), "LOWER_UP"); up {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !up {
			t.Fatalf("eth0 in %s never came up", name)
		}
	}
	return ipCmd, ns
}
