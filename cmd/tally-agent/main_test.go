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

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/transport/device"
	"github.com/tallyhq/tally/transport/device/devicetest"
	"github.com/tallyhq/tally/transport/deviceproto"
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

func TestOnboardThenCheckoutWithKeyFile(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	_, secrets := srv.CreateKeys(t, core.KeyOneTime, 1)
	srv.Apply(t, &core.SetProperty{Name: "security.requireOnboarding", Value: "true"})
	home := t.TempDir()
	t.Setenv("HOME", home)
	dev := []string{"--server", srv.URL, "--fingerprint", srv.TLSFingerprint, "--hostid", "agent-ob"}

	// Not onboarded: checkouts are denied.
	if r := agent(t, append(dev, "checkout", "cad", "1.0", "1")...); r.code != 1 || !strings.Contains(r.stderr, "not_onboarded") {
		t.Fatalf("checkout before onboarding: %+v", r)
	}

	if out := mustAgent(t, append(dev, "onboard", "--key", secrets[0])...); out != "agent-ob\n" {
		t.Fatalf("onboard printed %q", out)
	}
	keyFile := filepath.Join(home, ".tally-agent", "agent-ob.key")
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	data, _ := os.ReadFile(keyFile)
	if _, err := deviceproto.ParseDeviceKey(data); err != nil {
		t.Fatal(err)
	}

	// Later commands authenticate with the saved key.
	if out := mustAgent(t, append(dev, "hello")...); !strings.Contains(out, "onboarded:    true") {
		t.Fatalf("hello:\n%s", out)
	}
	if out := mustAgent(t, append(dev, "checkout", "cad", "1.0", "2")...); !strings.Contains(out, "cad 1.0: 2 held") {
		t.Fatalf("checkout:\n%s", out)
	}
	if out := mustAgent(t, append(dev, "status")...); !strings.Contains(out, "cad") {
		t.Fatalf("status:\n%s", out)
	}

	// The used key onboards no other device.
	r := agent(t, "--server", srv.URL, "--fingerprint", srv.TLSFingerprint, "--hostid", "agent-other", "onboard", "--key", secrets[0])
	if r.code != 1 || !strings.Contains(r.stderr, "key_used") {
		t.Fatalf("second onboard: %+v", r)
	}

	// Another key, or none, does not pass for the device.
	other := filepath.Join(t.TempDir(), "other.key")
	r = agent(t, "--server", srv.URL, "--fingerprint", srv.TLSFingerprint, "--hostid", "agent-other", "--key-file", other, "onboard", "--key", "not-a-real-key")
	if r.code != 1 || !strings.Contains(r.stderr, "unknown_key") {
		t.Fatalf("onboard with an unknown key: %+v", r)
	}
	if r := agent(t, append(dev, "--key-file", other, "status")...); r.code != 1 || !strings.Contains(r.stderr, "auth_failed") {
		t.Fatalf("status with another key: %+v", r)
	}
	if r := agent(t, append(dev, "--key-file", filepath.Join(t.TempDir(), "missing.key"), "status")...); r.code != 1 || !strings.Contains(r.stderr, "missing.key") {
		t.Fatalf("status with a missing --key-file: %+v", r)
	}
	os.Rename(keyFile, keyFile+".bak")
	if r := agent(t, append(dev, "status")...); r.code != 1 || !strings.Contains(r.stderr, "auth_required") {
		t.Fatalf("status without the key file: %+v", r)
	}
	os.Rename(keyFile+".bak", keyFile)
	mustAgent(t, append(dev, "return", "cad")...)
	if got := srv.Used(t, "cad", "1.0"); got != 0 {
		t.Fatalf("used %d after return", got)
	}
	if r := agent(t, append(dev, "onboard")...); r.code != 2 {
		t.Fatalf("onboard without --key: %+v", r)
	}
}

func TestLoadOnboards(t *testing.T) {
	srv := devicetest.NewServer(t, device.Config{})
	_, secrets := srv.CreateKeys(t, core.KeyMass, 1)
	srv.Apply(t, &core.SetProperty{Name: "security.requireOnboarding", Value: "true"})
	args := []string{"--server", srv.URL, "--fingerprint", srv.TLSFingerprint, "--hostid", "onload", "--json",
		"load", "--devices", "4", "--duration", "300ms", "--feature", "big", "--version", "1.0", "--onboard-key", secrets[0]}
	for range 2 { // the second run authenticates the devices the first onboarded
		var rep loadReport
		if err := json.Unmarshal([]byte(mustAgent(t, args...)), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Connected != 4 || rep.Onboarded != 4 || rep.Checkouts == 0 || rep.Denials != 0 || rep.Errors != 0 {
			t.Fatalf("report %+v", rep)
		}
	}
	var uses uint64
	srv.Read(t, func(s *core.State) error {
		uses = s.Keys(core.KeyFilter{})[0].Uses
		return nil
	})
	if uses != 4 {
		t.Fatalf("the mass key was used %d times for 4 devices", uses)
	}
}
