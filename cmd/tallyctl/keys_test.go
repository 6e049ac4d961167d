package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/core"
)

func TestKeysCommands(t *testing.T) {
	f := newFakeServer(t)
	pw := writeFile(t, "pw", fakePassword)
	massPW := writeFile(t, "mass.pw", "typed mass password\n")
	cases := []struct {
		name    string
		args    []string
		request string
		body    string
		want    []string
		notWant []string
	}{
		{"list masked", []string{"keys", "list"}, "GET /api/v1/keys", "",
			[]string{"ID      TYPE      KEY", "DESCRIPTION  STATE", "CREATED", "USED BY", "USED AT",
				"k-0001  one-time  ••••23", "line 4", "active", "2025-03-14T10:00:00Z",
				"k-0002", "used", "00:11:22:aa:bb:cc (ETHERNET)", "2025-03-14T11:00:00Z",
				"k-0003  mass", "inactive", "3 of 3 keys (page 1)"},
			[]string{"ABCDE-FGHJK", "fleet password"}},
		{"list shown and filtered", []string{"keys", "list", "--type", "mass", "--state", "INACTIVE", "--show"}, "GET /api/v1/keys?show=true&state=inactive&type=MASS", "",
			[]string{"fleet password", "1 of 1 keys"}, []string{"k-0001"}},
		{"list a page", []string{"keys", "list", "--page", "2", "--page-size", "2"}, "GET /api/v1/keys?page=2&pageSize=2", "",
			[]string{"k-0003", "1 of 3 keys (page 2)"}, nil},
		{"create one-time", []string{"keys", "create", "--type", "one-time", "--count", "2", "--description", "line 5"}, "POST /api/v1/keys",
			`{"type":"ONE_TIME","count":2,"description":"line 5"}`, []string{"NEWKY-SECRT-00004-XY000", "NEWKY-SECRT-00005-XY001", "line 5", "created 2 one-time keys"}, nil},
		{"create mass typed", []string{"keys", "create", "--type", "MASS", "--password-file", massPW}, "POST /api/v1/keys",
			`{"type":"MASS","secret":"typed mass password"}`, []string{"typed mass password", "created 1 mass keys"}, nil},
		{"create mass random", []string{"keys", "create", "--description", "fleet 2", "--type", "mass"}, "POST /api/v1/keys",
			`{"type":"MASS","description":"fleet 2"}`, []string{"mass", "fleet 2"}, nil},
		{"deactivate", []string{"keys", "deactivate", "k-0001"}, "PUT /api/v1/keys/k-0001", `{"active":false}`,
			[]string{`deactivated key k-0001: inactive, "line 4"`}, nil},
		{"activate", []string{"keys", "activate", "k-0001"}, "PUT /api/v1/keys/k-0001", `{"active":true}`,
			[]string{`activated key k-0001: active`}, nil},
		{"describe", []string{"keys", "describe", "k-0001", "press line 4"}, "PUT /api/v1/keys/k-0001", `{"description":"press line 4"}`,
			[]string{`described key k-0001: active, "press line 4"`}, nil},
		{"delete", []string{"keys", "delete", "k-0003"}, "DELETE /api/v1/keys/k-0003", "", []string{"deleted key k-0003"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := tallyctl(nil, append(serverArgs(f, false, pw), c.args...)...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout does not show %q:\n%s", w, r.stdout)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(r.stdout, w) {
					t.Errorf("stdout shows %q:\n%s", w, r.stdout)
				}
			}
			if f.lastRequest() != c.request {
				t.Errorf("last request %q, want %q", f.lastRequest(), c.request)
			}
			if c.body != "" {
				method, path, _ := strings.Cut(c.request, " ")
				var got, want any
				json.Unmarshal([]byte(f.body(method+" "+path)), &got)
				json.Unmarshal([]byte(c.body), &want)
				gotJSON, _ := json.Marshal(got)
				wantJSON, _ := json.Marshal(want)
				if string(gotJSON) != string(wantJSON) {
					t.Errorf("sent %s, want %s", gotJSON, wantJSON)
				}
			}
		})
	}

	for _, args := range [][]string{
		{"--json", "keys", "list"},
		{"keys", "list", "--json", "--show"},
		{"keys", "create", "--type", "one-time", "--count", "1", "--json"},
		{"--json", "keys", "describe", "k-0001", "x"},
	} {
		r := tallyctl(nil, append(serverArgs(f, false, pw), args...)...)
		var v map[string]any
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil {
			t.Errorf("%v: exit %d, stdout is not JSON:\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "activate", "k-0002"}, "one-time key is already used: k-0002 onboarded ETHERNET:00:11:22:aa:bb:cc (HTTP 409, key_used)"},
		{[]string{"keys", "delete", "k-9999"}, "unknown first-authentication key k-9999 (HTTP 404, unknown_key)"},
		{[]string{"keys", "describe", "k-9999", "x"}, "(HTTP 404, unknown_key)"},
		{[]string{"keys", "create", "--type", "mass", "--password-file", massPW}, "(HTTP 409, duplicate_key_secret)"},
		{[]string{"keys", "create", "--type", "one-time", "--count", "10001"}, "(HTTP 400, invalid_key)"},
		{[]string{"keys", "create", "--type", "mass", "--password-file", writeFile(t, "empty", "")}, "is empty"},
	} {
		tallyctl(nil, append(serverArgs(f, false, pw), c.args...)...).mustFail(t, 1, c.want)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"keys"}, "keys needs a subcommand"},
		{[]string{"keys", "show"}, `unknown keys subcommand "show"`},
		{[]string{"keys", "list", "--type", "twice"}, `--type "twice": want one-time or mass`},
		{[]string{"keys", "list", "--state", "gone"}, `--state "gone": want active, inactive or used`},
		{[]string{"keys", "list", "extra"}, "usage: tallyctl keys list"},
		{[]string{"keys", "create"}, "usage: tallyctl keys create --type one-time --count N"},
		{[]string{"keys", "create", "--type", "one-time"}, "--count N (1 to 10000) is required"},
		{[]string{"keys", "create", "--type", "one-time", "--count", "2", "--password-file", massPW}, "--password-file is for --type mass"},
		{[]string{"keys", "create", "--type", "mass", "--count", "2"}, "a mass key is made one at a time"},
		{[]string{"keys", "activate"}, "usage: tallyctl keys activate ID"},
		{[]string{"keys", "deactivate", "a", "b"}, "usage: tallyctl keys deactivate ID"},
		{[]string{"keys", "describe", "k-0001"}, "usage: tallyctl keys describe ID TEXT"},
		{[]string{"keys", "delete"}, "usage: tallyctl keys delete ID"},
	} {
		tallyctl(map[string]string{"TALLY_PASSWORD": "x"}, c.args...).mustFail(t, 2, c.want)
	}
}

func TestClientKeyCommands(t *testing.T) {
	f := newFakeServer(t)
	pw := writeFile(t, "pw", fakePassword)
	r := tallyctl(nil, append(serverArgs(f, false, pw), "client-key", "show")...)
	if r.code != 0 || !strings.Contains(r.stdout, "no client key is installed") {
		t.Fatalf("%+v", r)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pkcs1 := x509.MarshalPKCS1PublicKey(&key.PublicKey)
	dir := t.TempDir()
	files := map[string][]byte{
		"spki.der":  spki,
		"pkcs1.der": pkcs1,
		"spki.pem":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}),
		"pkcs1.pem": append([]byte("comment before\n"), pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1})...),
	}
	for name, data := range files {
		path := filepath.Join(dir, name)
		os.WriteFile(path, data, 0o644)
		r := tallyctl(nil, append(serverArgs(f, false, pw), "client-key", "upload", path)...)
		if r.code != 0 || !strings.Contains(r.stdout, "installed the client key from "+path) || !strings.Contains(r.stdout, "RSA, 2048 bits") {
			t.Fatalf("%s: %+v", name, r)
		}
		want := spki
		if strings.HasPrefix(name, "pkcs1") {
			want = pkcs1
		}
		if got := f.body("POST /api/v1/client-key"); got != string(want) {
			t.Errorf("%s: sent %d bytes, want the %d bytes of DER", name, len(got), len(want))
		}
	}
	r = tallyctl(nil, append(serverArgs(f, false, pw), "client-key", "show")...)
	if r.code != 0 || !strings.Contains(r.stdout, "Fingerprint:") || !strings.Contains(r.stdout, "RSA, 2048 bits") {
		t.Fatalf("%+v", r)
	}
	r = tallyctl(nil, append(serverArgs(f, false, pw), "--json", "client-key", "show")...)
	var v map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v["present"] != true {
		t.Errorf("--json: %+v", r)
	}

	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallDER, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	tallyctl(nil, append(serverArgs(f, false, pw), "client-key", "upload", writeFile(t, "small.der", string(smallDER)))...).
		mustFail(t, 1, "want a 2048-bit RSA public key (HTTP 400, invalid_client_key)")
	tallyctl(nil, append(serverArgs(f, false, pw), "client-key", "upload", writeFile(t, "cert.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))...).
		mustFail(t, 1, "no PEM PUBLIC KEY or RSA PUBLIC KEY block")
	tallyctl(nil, append(serverArgs(f, false, pw), "client-key", "upload", filepath.Join(dir, "missing"))...).mustFail(t, 1, "no such file")
	tallyctl(nil, append(serverArgs(f, false, pw), "client-key", "upload", writeFile(t, "big", strings.Repeat("x", 70000)))...).mustFail(t, 1, "larger than")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"client-key"}, "client-key needs a subcommand"},
		{[]string{"client-key", "upload"}, "usage: tallyctl client-key upload FILE"},
		{[]string{"client-key", "show", "x"}, "usage: tallyctl client-key show"},
	} {
		tallyctl(map[string]string{"TALLY_PASSWORD": "x"}, c.args...).mustFail(t, 2, c.want)
	}
}

func TestLicensingIDBackupRestoreCommands(t *testing.T) {
	f := newFakeServer(t)
	pw := writeFile(t, "pw", fakePassword)
	backupPW := writeFile(t, "backup.pw", "backup password\n")
	out := filepath.Join(t.TempDir(), "id.tallyid")
	r := tallyctl(nil, append(serverArgs(f, false, pw), "licensing-id", "backup", "--out", out, "--backup-password-file", backupPW)...)
	if r.code != 0 || !strings.Contains(r.stdout, "wrote the licensing ID backup to "+out) || !strings.Contains(r.stdout, f.id.Fingerprint()) {
		t.Fatalf("%+v", r)
	}
	if got := f.body("POST /api/v1/licensing-id/backup"); got != `{"password":"backup password"}` {
		t.Errorf("sent %s", got)
	}
	data, err := os.ReadFile(out)
	if fi, _ := os.Stat(out); err != nil || string(data) != fakeBackupPrefix+"backup password" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file %q: %v", data, err)
	}
	// An existing file is not overwritten.
	tallyctl(nil, append(serverArgs(f, false, pw), "licensing-id", "backup", "--out", out, "--backup-password-file", backupPW)...).mustFail(t, 1, "exists")
	tallyctl(nil, append(serverArgs(f, false, pw), "licensing-id", "backup", "--out", out+"2", "--backup-password-file", writeFile(t, "weak", "short"))...).
		mustFail(t, 1, "(HTTP 400, weak_password)")
	if _, err := os.Stat(out + "2"); err == nil {
		t.Error("a refused backup left a file")
	}
	r = tallyctl(nil, append(serverArgs(f, false, pw), "--json", "licensing-id", "backup", "--out", out+"3", "--backup-password-file", backupPW)...)
	var v map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v["fingerprint"] != f.id.Fingerprint() || v["file"] != out+"3" {
		t.Errorf("--json backup: %+v", r)
	}

	r = tallyctl(nil, append(serverArgs(f, false, pw), "licensing-id", "restore", out, "--backup-password-file", backupPW)...)
	if r.code != 0 || !strings.Contains(r.stdout, "Fingerprint: "+fakeFingerprint) || !strings.Contains(r.stdout, "restart tallyd to use it") {
		t.Fatalf("restore: %+v", r)
	}
	r = tallyctl(nil, append(serverArgs(f, false, pw), "--json", "licensing-id", "restore", "--backup-password-file", backupPW, out)...)
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v["restartRequired"] != true {
		t.Errorf("--json restore: %+v", r)
	}
	tallyctl(nil, append(serverArgs(f, false, pw), "licensing-id", "restore", out, "--backup-password-file", writeFile(t, "wrong", "wrong password"))...).
		mustFail(t, 1, "wrong password for licensing ID backup (HTTP 400, wrong_password)")
	tallyctl(nil, append(serverArgs(f, false, pw), "licensing-id", "restore", writeFile(t, "bad.tallyid", "garbage"), "--backup-password-file", backupPW)...).
		mustFail(t, 1, "(HTTP 400, damaged_backup)")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"licensing-id", "backup", "--out", out}, "usage: tallyctl licensing-id backup --out FILE --backup-password-file FILE"},
		{[]string{"licensing-id", "backup", "--backup-password-file", backupPW}, "usage: tallyctl licensing-id backup"},
		{[]string{"licensing-id", "restore", out}, "usage: tallyctl licensing-id restore FILE --backup-password-file FILE"},
		{[]string{"licensing-id", "restore", "--backup-password-file", backupPW}, "usage: tallyctl licensing-id restore"},
	} {
		tallyctl(map[string]string{"TALLY_PASSWORD": "x"}, c.args...).mustFail(t, 2, c.want)
	}
}

// TestDatabaseBackupCommands: backup create writes the server's backup as
// it is, or sealed under --backup-password-file; backup restore sends the
// snapshot back, opening a sealed file with its password first.
func TestDatabaseBackupCommands(t *testing.T) {
	f := newFakeServer(t)
	pw := writeFile(t, "pw", fakePassword)
	backupPW := writeFile(t, "backup.pw", "backup password\n")
	dir := t.TempDir()
	plain, sealedFile := filepath.Join(dir, "plain.json"), filepath.Join(dir, "sealed.tallydb")

	r := tallyctl(nil, append(serverArgs(f, false, pw), "backup", "create", "--out", plain)...)
	if data, _ := os.ReadFile(plain); r.code != 0 || string(data) != fakeDatabaseBackup || !strings.Contains(r.stdout, "--backup-password-file") {
		t.Fatalf("plain backup: %+v, file %q", r, data)
	}
	r = tallyctl(nil, append(serverArgs(f, false, pw), "--json", "backup", "create", "--out", sealedFile, "--backup-password-file", backupPW)...)
	var v map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v["sealed"] != true {
		t.Fatalf("sealed backup: %+v", r)
	}
	data, err := os.ReadFile(sealedFile)
	if fi, _ := os.Stat(sealedFile); err != nil || fi.Mode().Perm() != 0o600 || !core.IsSealedBackup(data) || strings.Contains(string(data), "argon2id") {
		t.Fatalf("sealed file %q: %v", data, err)
	}
	if got, err := core.OpenBackup(data, []byte("backup password")); err != nil || string(got) != fakeDatabaseBackup {
		t.Fatalf("the sealed file opens to %q, %v", got, err)
	}
	tallyctl(nil, append(serverArgs(f, false, pw), "backup", "create", "--out", sealedFile+"2", "--backup-password-file", writeFile(t, "weak", "short"))...).
		mustFail(t, 1, "the password has 5 bytes; want 8 to 256")
	if _, err := os.Stat(sealedFile + "2"); err == nil {
		t.Error("a refused backup left a file")
	}

	// Both restore to the same snapshot on the server.
	for _, args := range [][]string{{"backup", "restore", plain}, {"backup", "restore", sealedFile, "--backup-password-file", backupPW}} {
		f.mu.Lock()
		delete(f.bodies, "POST /api/v1/backup/restore")
		f.mu.Unlock()
		if r := tallyctl(nil, append(serverArgs(f, false, pw), args...)...); r.code != 0 || f.body("POST /api/v1/backup/restore") != fakeDatabaseBackup {
			t.Fatalf("%v: %+v, sent %q", args, r, f.body("POST /api/v1/backup/restore"))
		}
	}
	tallyctl(nil, append(serverArgs(f, false, pw), "backup", "restore", sealedFile)...).
		mustFail(t, 2, "is sealed: give its password with --backup-password-file")
	tallyctl(nil, append(serverArgs(f, false, pw), "backup", "restore", sealedFile, "--backup-password-file", writeFile(t, "wrong", "wrong password"))...).
		mustFail(t, 1, "wrong password for sealed database backup")
	tallyctl(nil, append(serverArgs(f, false, pw), "backup", "restore", plain, "--backup-password-file", backupPW)...).
		mustFail(t, 1, "is not a sealed backup")
	damaged := writeFile(t, "damaged", string(data[:len(data)-3]))
	tallyctl(nil, append(serverArgs(f, false, pw), "backup", "restore", damaged, "--backup-password-file", backupPW)...).
		mustFail(t, 1, "sealed database backup is damaged")
}
