package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestAdminCommands(t *testing.T) {
	f := newFakeServer(t)
	pw := writeFile(t, "pw", fakePassword)
	newPW := writeFile(t, "new", "a new password\n")
	cases := []struct {
		name    string
		args    []string
		request string
		body    string // what the server was sent, when it matters
		want    []string
	}{
		{"users list", []string{"users", "list"}, "GET /api/v1/users", "",
			[]string{"NAME    ROLES", "PASSWORD CHANGED", "admin   ADMIN", "reader  READ", "2 users"}},
		{"users create", []string{"users", "create", "ops", "--role", "reservations", "--role", "OFFLINE", "--password-file", newPW}, "POST /api/v1/users",
			`{"name":"ops","password":"a new password","roles":["RESERVATIONS","OFFLINE"]}`, []string{"created user ops with roles RESERVATIONS,OFFLINE"}},
		{"users create, flags first", []string{"users", "create", "--role", "READ,KEYS", "--password-file", newPW, "ops2"}, "POST /api/v1/users",
			`{"name":"ops2","password":"a new password","roles":["READ","KEYS"]}`, []string{"created user ops2"}},
		{"users set-roles", []string{"users", "set-roles", "reader", "--role", "READ", "--role", "DROPDEVICE"}, "PUT /api/v1/users/reader",
			`{"roles":["READ","DROPDEVICE"]}`, []string{"reader now has the roles READ,DROPDEVICE"}},
		{"users set-password", []string{"users", "set-password", "reader", "--password-file", newPW}, "PUT /api/v1/users/reader",
			`{"password":"a new password"}`, []string{"changed the password of reader"}},
		{"users delete", []string{"users", "delete", "reader"}, "DELETE /api/v1/users/reader", "", []string{"deleted user reader"}},
		{"passwd", []string{"passwd", "--password-file", newPW}, "PUT /api/v1/auth/password",
			`{"current":"` + fakePassword + `","new":"a new password"}`, []string{"changed the password of admin"}},
		{"audit", []string{"audit", "--after", "1", "--limit", "2"}, "GET /api/v1/audit?after=1&limit=2", "",
			[]string{"SEQ  TIME", "USER    FROM", "ACTION", "DETAIL", "tallyd", "local", "createUser", "192.0.2.7", `set server.pageSize to "7"`, "2 of 3 audit records", "chain verified"}},
		{"licensing-id show", []string{"licensing-id", "show"}, "GET /api/v1/licensing-id", "",
			[]string{"Licensing ID:", f.id.Display(), "Fingerprint:", f.id.Fingerprint(), "HOST", "SERVER STATUS", "box-1", "Running", "Main licensing ID"}},
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
}

func TestAuditNotVerified(t *testing.T) {
	f := newFakeServer(t)
	f.mu.Lock()
	f.auditBroken = true
	f.mu.Unlock()
	pw := writeFile(t, "pw", fakePassword)
	r := tallyctl(nil, append(serverArgs(f, false, pw), "audit")...)
	r.mustFail(t, 1, "the audit log does not verify")
	if strings.Contains(r.stdout, "chain verified") || !strings.Contains(r.stdout, "createUser") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	r = tallyctl(nil, append(serverArgs(f, false, pw), "--json", "audit")...)
	var v map[string]any
	if r.code != 1 || json.Unmarshal([]byte(r.stdout), &v) != nil || v["verified"] != false {
		t.Errorf("audit --json on a broken chain: %+v", r)
	}
}

func TestLicensingIDExport(t *testing.T) {
	f := newFakeServer(t)
	pw := writeFile(t, "pw", fakePassword)
	out := filepath.Join(t.TempDir(), "id.cert")
	r := tallyctl(nil, append(serverArgs(f, false, pw), "licensing-id", "export", "--out", out)...)
	if r.code != 0 || !strings.Contains(r.stdout, f.id.Fingerprint()) || !strings.Contains(r.stdout, out) {
		t.Fatalf("%+v", r)
	}
	data, err := os.ReadFile(out)
	if err != nil || string(data) != string(f.id.CertificatePEM()) {
		t.Fatalf("exported %q: %v", data, err)
	}
	r = tallyctl(nil, append(serverArgs(f, false, pw), "--json", "licensing-id", "export", "--out", out)...)
	var v map[string]string
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v["fingerprint"] != f.id.Fingerprint() || v["file"] != out {
		t.Errorf("--json export: %+v", r)
	}
	if openssl, err := exec.LookPath("openssl"); err == nil {
		got, err := exec.Command(openssl, "x509", "-noout", "-fingerprint", "-sha256", "-in", out).Output()
		if _, fp, _ := strings.Cut(strings.TrimSpace(string(got)), "="); err != nil || fp != f.id.Fingerprint() {
			t.Errorf("openssl: %q %v", got, err)
		}
	}
}

func TestAdminJSONAndErrors(t *testing.T) {
	f := newFakeServer(t)
	pw := writeFile(t, "pw", fakePassword)
	newPW := writeFile(t, "new", "a new password")
	for _, args := range [][]string{
		{"--json", "users", "list"},
		{"users", "create", "x", "--json", "--role", "READ", "--password-file", newPW},
		{"--json", "users", "set-roles", "reader", "--role", "READ"},
		{"--json", "audit"},
		{"--json", "licensing-id", "show"},
	} {
		r := tallyctl(nil, append(serverArgs(f, false, pw), args...)...)
		var v any
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil {
			t.Errorf("%v: exit %d, stdout is not JSON:\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"users", "create", "admin", "--role", "READ", "--password-file", newPW}, `user already exists: "admin" (HTTP 409, user_exists)`},
		{[]string{"users", "delete", "admin"}, "(HTTP 409, last_admin)"},
		{[]string{"users", "set-roles", "nobody", "--role", "READ"}, `unknown user "nobody" (HTTP 404, unknown_user)`},
		{[]string{"passwd", "--password-file", writeFile(t, "empty", "")}, "is empty"},
	} {
		tallyctl(nil, append(serverArgs(f, false, pw), c.args...)...).mustFail(t, 1, c.want)
	}
	wrong := writeFile(t, "wrong", "not it")
	tallyctl(nil, "--server", f.URL, "--ca", f.caFile, "--password-file", wrong, "passwd", "--password-file", newPW).mustFail(t, 1, "log in as admin")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"users"}, "users needs a subcommand"},
		{[]string{"users", "create", "x", "--password-file", newPW}, "usage: tallyctl users create NAME --role ROLE"},
		{[]string{"users", "create", "x", "--role", "READ"}, "usage: tallyctl users create NAME"},
		{[]string{"users", "create", "--role", "READ", "--password-file", newPW}, "usage: tallyctl users create NAME"},
		{[]string{"users", "create", "x", "y", "--role", "READ", "--password-file", newPW}, "usage: tallyctl users create NAME"},
		{[]string{"users", "create", "x", "--role", "ROOT", "--password-file", newPW}, `unknown role "ROOT"`},
		{[]string{"users", "set-roles", "x"}, "usage: tallyctl users set-roles NAME --role ROLE"},
		{[]string{"users", "set-password", "x"}, "usage: tallyctl users set-password NAME --password-file FILE"},
		{[]string{"users", "delete"}, "usage: tallyctl users delete NAME"},
		{[]string{"passwd"}, "usage: tallyctl passwd --password-file NEW"},
		{[]string{"audit", "--limit", "5000"}, "--limit must be between 1 and 1000"},
		{[]string{"audit", "--after", "-1"}, "audit: invalid value"},
		{[]string{"licensing-id"}, "licensing-id needs a subcommand"},
		{[]string{"licensing-id", "export"}, "usage: tallyctl licensing-id export --out FILE"},
		{[]string{"licensing-id", "backup"}, "usage: tallyctl licensing-id backup --out FILE"},
		{[]string{"licensing-id", "import"}, `unknown licensing-id subcommand "import"`},
	} {
		tallyctl(map[string]string{"TALLY_PASSWORD": "x"}, c.args...).mustFail(t, 2, c.want)
	}
}
