package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOnlineExchange: tallyd's leader reaches tally-backoffice through the
// built-in http connector (tallyd re-executed as a go-plugin process): it
// registers the licensing ID, an activation asked through the API arrives
// as feature lines, and the usage of a checkout reaches the back office
// once.
func TestOnlineExchange(t *testing.T) {
	r := newClusterRig(t)
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
	run("tally-backoffice", "--data", books, "entitlement", "add", "--id", "ACT-1", "--feature", "press", "--version", "2.0", "--count", "5")

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
	defer func() { office.Process.Kill(); office.Wait() }()
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

	cfg, _ := json.Marshal(map[string]any{"connectors": map[string]any{
		"office": map[string]any{"builtin": "http", "args": []string{"--url", url, "--pin", pin}},
	}})
	cfgFile := filepath.Join(r.work, "tallyd.json")
	os.WriteFile(cfgFile, cfg, 0o600)
	if err := r.start("b1", "--dev", "--config", cfgFile, "--producer-key", filepath.Join(r.work, "producer.pub")); err != nil {
		t.Fatal(err)
	}
	r.mustCtl("b1", "properties", "set", "backoffice.connector", "office")
	r.mustCtl("b1", "offline", "activate", "--id", "ACT-1", "--count", "3", "--out", filepath.Join(r.work, "unused.bin"))
	total := func() (int, string) {
		out, _ := r.ctl("b1", "--json", "features")
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
	r.waitFor("the activated lines", func() (bool, string) {
		n, out := total()
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
		n, out := total()
		return n == 4, out
	})
	r.kill("b1")
	office.Process.Kill()
	office.Wait()
	usage := run("tally-backoffice", "--data", books, "usage")
	if strings.Count(usage, "window 1 ") != 1 || !strings.Contains(usage, `"checkouts":1`) {
		t.Fatalf("usage at the back office:\n%s", usage)
	}
	// The licensing ID was registered online, once.
	if servers := run("tally-backoffice", "--data", books, "servers"); strings.Count(servers, "\n") != 2 {
		t.Fatalf("servers:\n%s", servers)
	}
}
