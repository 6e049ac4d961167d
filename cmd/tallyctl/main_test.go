package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/core/rights"
)

// result is what one invocation of tallyctl did.
type result struct {
	code           int
	stdout, stderr string
}

func tallyctl(env map[string]string, args ...string) result {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut, func(k string) string { return env[k] })
	return result{code, out.String(), errOut.String()}
}

// mustFail checks a failure: the exit code and one line on stderr that
// starts with "tallyctl: " and holds want.
func (r result) mustFail(t *testing.T, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "tallyctl: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr is not one line starting with \"tallyctl: \": %q", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q does not say %q", r.stderr, want)
	}
}

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const demoLinesText = `# acme's rights for the press shop
cad 1.0 10 vendor="edition=pro"
viewer 2.0 25 overdraft=5 expiry=2026-12-31
export 1.0 100 metered undo=10m id=exp
`

func TestProducerKeygenAndIssue(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "acme")
	r := tallyctl(nil, "producer", "keygen", "--out", prefix)
	if r.code != 0 {
		t.Fatalf("keygen: %+v", r)
	}
	info, err := os.Stat(prefix + ".key")
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", info, err)
	}
	pubPEM, err := os.ReadFile(prefix + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := rights.ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stdout, rights.KeyFingerprint(pub)) {
		t.Errorf("keygen does not print the fingerprint: %q", r.stdout)
	}
	keyBefore, _ := os.ReadFile(prefix + ".key")
	tallyctl(nil, "producer", "keygen", "--out", prefix).mustFail(t, 1, "exists")
	if keyAfter, _ := os.ReadFile(prefix + ".key"); !bytes.Equal(keyBefore, keyAfter) {
		t.Fatal("keygen overwrote the key")
	}
	// A lone .pub is not overwritten either, and no .key is left behind.
	os.WriteFile(filepath.Join(dir, "half.pub"), []byte("x"), 0o644)
	tallyctl(nil, "producer", "keygen", "--out", filepath.Join(dir, "half")).mustFail(t, 1, "half.pub exists")
	if _, err := os.Stat(filepath.Join(dir, "half.key")); err == nil {
		t.Error("keygen left a key beside an existing .pub")
	}

	lines := writeFile(t, "lines.txt", demoLinesText)
	out := filepath.Join(dir, "acme.rights")
	// Lower case without colons, as some tools print fingerprints.
	server := strings.ToLower(strings.ReplaceAll(fakeFingerprint, ":", ""))
	r = tallyctl(nil, "producer", "issue", "--key", prefix+".key", "--server", server, "--source", "acme",
		"--sequence", "3", "--lines", lines, "--lock", "server.allowDeviceDrop=false", "--out", out)
	if r.code != 0 || !strings.Contains(r.stdout, "3 lines") {
		t.Fatalf("issue: %+v", r)
	}
	file, _ := os.ReadFile(out)
	load, err := rights.NewVerifier(fakeFingerprint, pub).Verify(file)
	if err != nil {
		t.Fatalf("the issued file does not verify: %v", err)
	}
	if load.Source != "acme" || load.Sequence != 3 || len(load.Lines) != 3 || load.Locks["server.allowDeviceDrop"] != "false" {
		t.Fatalf("verified %+v", load)
	}
	if l := load.Lines[2]; l.ID != "exp" || !l.Metered || l.Count != 100 || l.Source != "acme" {
		t.Errorf("line 3: %+v", l)
	}
	if _, err := rights.NewVerifier(fakeFingerprint, &rights.DemoProducerKey().PublicKey).Verify(file); err == nil {
		t.Error("the file verifies with another key")
	}

	// Without --out the file goes to stdout; openssl's form of the fingerprint is accepted.
	r = tallyctl(nil, "producer", "issue", "--key", prefix+".key", "--server", "sha256 Fingerprint="+fakeFingerprint,
		"--source", "acme", "--sequence", "4", "--lines", lines)
	if r.code != 0 {
		t.Fatalf("issue to stdout: %+v", r)
	}
	if _, err := rights.NewVerifier(fakeFingerprint, pub).Verify([]byte(r.stdout)); err != nil {
		t.Fatalf("stdout does not verify: %v", err)
	}

	badLines := writeFile(t, "bad.txt", "cad 1.0 10\nviewer 2.0 many\n")
	base := []string{"producer", "issue", "--key", prefix + ".key", "--server", fakeFingerprint, "--source", "acme", "--sequence", "1"}
	tallyctl(nil, append(base, "--lines", badLines)...).mustFail(t, 1, "bad.txt: line 2: invalid count")
	tallyctl(nil, append(base, "--lines", writeFile(t, "empty.txt", "# nothing\n"))...).mustFail(t, 1, "no feature lines")
	tallyctl(nil, "producer", "issue", "--key", prefix+".key", "--source", "acme", "--sequence", "1", "--lines", lines).mustFail(t, 2, "needs --server")
	tallyctl(nil, "producer", "issue", "--key", prefix+".key", "--server", "AB:CD", "--source", "acme", "--sequence", "1", "--lines", lines).mustFail(t, 2, "not a SHA-256 fingerprint")
	tallyctl(nil, "producer", "issue", "--key", prefix+".key", "--server", fakeFingerprint, "--source", "acme", "--sequence", "0", "--lines", lines).mustFail(t, 2, "--sequence")
	tallyctl(nil, "producer", "issue", "--key", prefix+".pub", "--server", fakeFingerprint, "--source", "acme", "--sequence", "1", "--lines", lines).mustFail(t, 1, "invalid producer key")
	tallyctl(nil, append(base, "--lines", lines, "--lock", "novalue")...).mustFail(t, 2, "NAME=VALUE")
	tallyctl(nil, "producer", "keygen").mustFail(t, 2, "--out PREFIX")
	tallyctl(nil, "producer", "sign").mustFail(t, 2, "unknown producer subcommand")
}

func TestProducerKeygenJSON(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "k")
	r := tallyctl(nil, "--json", "producer", "keygen", "--out", prefix)
	var out map[string]string
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || out["key"] != prefix+".key" || len(out["fingerprint"]) != 95 {
		t.Fatalf("%+v", r)
	}
}

func TestCommandLineErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "no command"},
		{[]string{"--nope", "health"}, "flag provided but not defined: -nope"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"--ca", "x.pem", "--insecure", "health"}, "exclude each other"},
		{[]string{"--server", "http://127.0.0.1:8443", "health"}, "not an https://HOST:PORT address"},
		{[]string{"--server", "127.0.0.1:8443", "health"}, "not an https://HOST:PORT address"},
		{[]string{"features", "--page-size", "5000"}, "--page-size must be between 1 and 1000"},
		{[]string{"features", "--page", "-1"}, "--page must be 1 or more"},
		{[]string{"backup"}, "backup"},
		{[]string{"backup", "create"}, "backup create --out FILE [--backup-password-file FILE]"},
		{[]string{"backup", "restore"}, "backup restore FILE [--backup-password-file FILE]"},
		{[]string{"backup", "restore", "a", "b"}, "backup restore FILE [--backup-password-file FILE]"},
		{[]string{"features", "--page", "two"}, "features: invalid value"},
		{[]string{"features", "show", "cad"}, "usage: tallyctl features show NAME VERSION"},
		{[]string{"features", "extra"}, "usage: tallyctl features"},
		{[]string{"devices", "show", "MAC", "00:11:22:33:44:55"}, "unknown hostid type"},
		{[]string{"devices", "drop", "ETHERNET", "not-a-mac"}, "invalid hostid value"},
		{[]string{"reservations"}, "reservations needs a subcommand"},
		{[]string{"reservations", "purge"}, `unknown reservations subcommand "purge"`},
		{[]string{"reservations", "delete"}, "usage: tallyctl reservations delete GROUP..."},
		{[]string{"model", "upload"}, "usage: tallyctl model upload FILE"},
		{[]string{"properties", "set", "a"}, "usage: tallyctl properties set NAME VALUE"},
		{[]string{"rights", "load"}, "usage: tallyctl rights load FILE"},
		{[]string{"pools", "x"}, "usage: tallyctl pools"},
	}
	for _, c := range cases {
		tallyctl(map[string]string{"TALLY_PASSWORD": "x"}, c.args...).mustFail(t, 2, c.want)
	}

	for _, help := range [][]string{{"--help"}, {"help"}, {"features", "-h"}} {
		r := tallyctl(nil, help...)
		if r.code != 0 || !strings.Contains(r.stdout, "producer issue") || !strings.Contains(r.stdout, "reservations export [FILE]") {
			t.Errorf("%v: %+v", help, r)
		}
	}
}

func TestMissingPassword(t *testing.T) {
	f := newFakeServer(t)
	tallyctl(nil, "--server", f.URL, "--ca", f.caFile, "features").mustFail(t, 1, "no password for admin: give --password-file FILE or set TALLY_PASSWORD")
	tallyctl(nil, "--server", f.URL, "--ca", f.caFile, "--password-file", filepath.Join(t.TempDir(), "none"), "features").mustFail(t, 1, "read password")
	tallyctl(nil, "--server", f.URL, "--ca", f.caFile, "--password-file", writeFile(t, "empty", "\n"), "features").mustFail(t, 1, "is empty")
	if f.loginCount() != 0 {
		t.Errorf("%d logins without a password", f.loginCount())
	}
	// health needs no password.
	if r := tallyctl(nil, "--server", f.URL, "--ca", f.caFile, "health"); r.code != 0 {
		t.Errorf("health: %+v", r)
	}
}

func TestLogin(t *testing.T) {
	f := newFakeServer(t)
	tallyctl(map[string]string{"TALLY_PASSWORD": "wrong"}, "--server", f.URL, "--ca", f.caFile, "features").
		mustFail(t, 1, "log in as admin: wrong user or password (HTTP 401, unauthorized)")
	tallyctl(map[string]string{"TALLY_PASSWORD": fakePassword}, "--server", f.URL, "--ca", f.caFile, "--user", "bob", "features").
		mustFail(t, 1, "log in as bob")

	// One login per invocation, however many requests it makes; the
	// password file's trailing newline is not part of the password.
	pw := writeFile(t, "pw", fakePassword+"\n")
	before := f.loginCount()
	r := tallyctl(nil, "--server", f.URL, "--ca", f.caFile, "--password-file", pw, "reservations", "delete", "a", "b", "c")
	if r.code != 0 || f.loginCount() != before+1 {
		t.Fatalf("%+v, %d logins", r, f.loginCount()-before)
	}
}

func TestTLS(t *testing.T) {
	f := newFakeServer(t)
	env := map[string]string{"TALLY_PASSWORD": fakePassword}
	tallyctl(env, "--server", f.URL, "health").mustFail(t, 1, "certificate is not trusted")
	tallyctl(env, "--server", f.URL, "--ca", otherCA(t), "health").mustFail(t, 1, "certificate is not trusted")
	tallyctl(env, "--server", f.URL, "--ca", writeFile(t, "junk.pem", "junk"), "health").mustFail(t, 1, "no PEM certificate")
	tallyctl(env, "--server", f.URL, "--ca", filepath.Join(t.TempDir(), "missing.pem"), "health").mustFail(t, 1, "read CA")
	if r := tallyctl(env, "--server", f.URL+"/", "--insecure", "health"); r.code != 0 {
		t.Errorf("--insecure with a trailing slash: %+v", r)
	}
	if r := tallyctl(map[string]string{"TALLY_SERVER": f.URL}, "--ca", f.caFile, "health"); r.code != 0 {
		t.Errorf("TALLY_SERVER: %+v", r)
	}
	caEnv := map[string]string{"TALLY_SERVER": f.URL, "TALLY_CA": f.caFile}
	if r := tallyctl(caEnv, "health"); r.code != 0 {
		t.Errorf("TALLY_CA: %+v", r)
	}
	if r := tallyctl(map[string]string{"TALLY_SERVER": f.URL, "TALLY_CA": otherCA(t)}, "--insecure", "health"); r.code != 0 {
		t.Errorf("--insecure over TALLY_CA: %+v", r)
	}
	// Nothing listens on a closed server's address.
	closed := newFakeServer(t)
	closed.Close()
	tallyctl(env, "--server", closed.URL, "--insecure", "health").mustFail(t, 1, closed.URL)
}
