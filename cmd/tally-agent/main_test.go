package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/transport/device"
	"github.com/tallyhq/tally/transport/device/devicetest"
)

type result struct {
	code           int
	stdout, stderr string
}

func agent(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	if code != 0 && strings.Count(strings.TrimRight(errOut.String(), "\n"), "\n") > 0 {
		t.Errorf("failure reason is not one line: %q", errOut.String())
	}
	return result{code, out.String(), errOut.String()}
}

func mustAgent(t *testing.T, args ...string) string {
	t.Helper()
	r := agent(t, args...)
	if r.code != 0 {
		t.Fatalf("tally-agent %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

func writeCA(t *testing.T, srv *devicetest.Server) string {
	path := filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.HTTP.Certificate().Raw})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCommands(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	base := strings.TrimSuffix(srv.URL, "/ws/device")
	dev := []string{"--server", base, "--fingerprint", srv.TLSFingerprint, "--hostid", "agent-1"}

	out := mustAgent(t, append(dev, "hello")...)
	if !strings.Contains(out, srv.Identity.Fingerprint) || !strings.Contains(out, "agent-1 (STRING)") {
		t.Fatalf("hello:\n%s", out)
	}
	var w struct{ Node, Fingerprint string }
	if err := json.Unmarshal([]byte(mustAgent(t, append(dev, "--json", "hello")...)), &w); err != nil || w.Node != "node1" {
		t.Fatalf("hello --json: %+v %v", w, err)
	}

	if out := mustAgent(t, append(dev, "checkout", "cad", "1.0", "3")...); !strings.Contains(out, "cad 1.0: 3 held") {
		t.Fatalf("checkout:\n%s", out)
	}
	if got := srv.Used(t, "cad", "1.0"); got != 3 {
		t.Fatalf("used %d", got)
	}
	var short struct {
		Grants []struct {
			Expiry time.Time
		}
	}
	out = mustAgent(t, append(dev, "--borrow", "90s", "--json", "renew", "cad", "1.0", "3")...)
	if err := json.Unmarshal([]byte(out), &short); err != nil || len(short.Grants) != 1 || short.Grants[0].Expiry.After(time.Now().Add(2*time.Minute)) {
		t.Fatalf("renew with --borrow 90s:\n%s", out)
	}
	if out := mustAgent(t, append(dev, "status")...); !strings.Contains(out, "cad") || !strings.Contains(out, " 3 ") {
		t.Fatalf("status:\n%s", out)
	}
	var st struct {
		Leases []struct {
			Feature string
			Count   int64
		}
	}
	if err := json.Unmarshal([]byte(mustAgent(t, append(dev, "--json", "status")...)), &st); err != nil || len(st.Leases) != 1 || st.Leases[0].Count != 3 {
		t.Fatalf("status --json: %+v %v", st, err)
	}
	if out := mustAgent(t, append(dev, "renew", "cad", "1.0", "2")...); !strings.Contains(out, "2 held") {
		t.Fatalf("renew:\n%s", out)
	}

	r := agent(t, append(dev, "checkout", "cad", "1.0", "50")...)
	if r.code != 1 || !strings.Contains(r.stderr, "insufficient_count") {
		t.Fatalf("denied checkout: %+v", r)
	}

	if out := mustAgent(t, append(dev, "return", "cad")...); !strings.Contains(out, "none held") {
		t.Fatalf("return:\n%s", out)
	}
	if got := srv.Used(t, "cad", "1.0"); got != 0 {
		t.Fatalf("used %d after return", got)
	}
	mustAgent(t, append(dev, "checkout", "viewer", "2.0", "1")...)
	mustAgent(t, append(dev, "return", "viewer", "2.0")...)
}

func TestTrust(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	ca := writeCA(t, srv)
	mustAgent(t, "--server", srv.URL, "--ca", ca, "--hostid", "trust-1", "hello")
	mustAgent(t, "--server", srv.URL, "--insecure", "--hostid", "trust-1", "--identity", srv.Identity.Fingerprint, "hello")
	mustAgent(t, "--server", srv.URL, "--fingerprint", strings.ToLower(strings.ReplaceAll(srv.TLSFingerprint, ":", "")), "--hostid", "trust-1", "hello")

	for name, args := range map[string][]string{
		"wrong TLS pin":  {"--fingerprint", strings.Repeat("AB:", 31) + "AB"},
		"no trust":       {},
		"wrong identity": {"--insecure", "--identity", srv.TLSFingerprint},
	} {
		r := agent(t, append(append([]string{"--server", srv.URL, "--hostid", "trust-1"}, args...), "hello")...)
		if r.code != 1 || r.stderr == "" {
			t.Errorf("%s: %+v", name, r)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"teleport"},
		{"checkout", "cad", "1.0"},
		{"checkout", "cad", "1.0", "many"},
		{"--insecure", "--ca", "x.pem", "status"},
		{"--no-such-flag", "status"},
		{"--server", "ftp://x", "--insecure", "status"},
		{"load", "--devices", "0"},
		{"--borrow", "10ms", "--insecure", "checkout", "cad", "1.0", "1"},
		{"--borrow", "-1h", "--insecure", "checkout", "cad", "1.0", "1"},
	} {
		r := agent(t, args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "tally-agent: ") {
			t.Errorf("%q: %+v", args, r)
		}
	}
}

func TestLoad(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	out := mustAgent(t, "--server", srv.URL, "--fingerprint", srv.TLSFingerprint, "--hostid", "loader", "--json",
		"load", "--devices", "8", "--duration", "500ms", "--feature", "big", "--version", "1.0", "--verify")
	var rep loadReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Connected != 8 || rep.Checkouts == 0 || rep.Errors != 0 || rep.Denials != 0 || rep.LatencyP99ms <= 0 {
		t.Fatalf("report %+v", rep)
	}
	if got := srv.Used(t, "big", "1.0"); got != 0 {
		t.Fatalf("used %d after load", got)
	}
	text := mustAgent(t, "--server", srv.URL, "--insecure", "load", "--devices", "2", "--duration", "200ms", "--feature", "viewer", "--version", "2.0")
	if !strings.Contains(text, "checkouts/s") && !strings.Contains(text, "/s)") {
		t.Fatalf("load text:\n%s", text)
	}
}
