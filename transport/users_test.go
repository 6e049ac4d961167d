package transport

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
)

// doAs sends a request with token.
func (e *testEnv) doAs(token, method, path, contentType, body string) response {
	e.t.Helper()
	saved := e.token
	e.token = token
	defer func() { e.token = saved }()
	return e.do(method, path, contentType, body, true)
}

func TestUsers(t *testing.T) {
	e := newTestEnv(t)
	const ct = "application/json"
	r := e.do("POST", "/api/v1/users", ct, `{"name":"reader","roles":["READ"],"password":"reader password"}`, true)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var u core.UserSummary
	r.json(t, &u)
	if u.Name != "reader" || len(u.Roles) != 1 || u.Roles[0] != core.RoleRead || !u.Created.Equal(t0) {
		t.Errorf("created %+v", u)
	}
	if strings.Contains(string(r.body), "argon2") || strings.Contains(string(r.body), "reader password") {
		t.Errorf("the answer shows the password or its hash: %s", r.body)
	}

	before := e.store.snapshot(t)
	for _, c := range []struct{ body, code string }{
		{`{"name":"reader","roles":["READ"],"password":"reader password"}`, "user_exists"},
		{`{"name":"weak","roles":["READ"],"password":"short"}`, "weak_password"},
		{`{"name":"badrole","roles":["ROOT"],"password":"long enough"}`, "invalid_user"},
		{`{"name":"noroles","roles":[],"password":"long enough"}`, "invalid_user"},
		{`{"name":"bad name","roles":["READ"],"password":"long enough"}`, "invalid_user"},
		{`{"name":"anonymous@loopback","roles":["READ"],"password":"long enough"}`, "invalid_user"},
		{`{"name":"tallyd","roles":["READ"],"password":"long enough"}`, "invalid_user"},
		{`{"name":"x","roles":["READ"]}`, "bad_json"},
		{`{"name":"x","roles":["READ"],"password":"long enough","admin":true}`, "bad_json"},
	} {
		r := e.do("POST", "/api/v1/users", ct, c.body, true)
		status := map[string]int{"user_exists": 409}[c.code]
		if status == 0 {
			status = 400
		}
		wantError(t, r, status, c.code)
	}
	if !bytes.Equal(before, e.store.snapshot(t)) {
		t.Error("a refused user creation changed the state")
	}

	var list countedList[core.UserSummary]
	e.do("GET", "/api/v1/users", "", "", true).json(t, &list)
	if list.Total != 2 || list.Items[0].Name != "admin" || list.Items[1].Name != "reader" {
		t.Errorf("users %+v", list)
	}
	wantError(t, e.do("GET", "/api/v1/users/nobody", "", "", true), 404, "unknown_user")

	// The new user logs in, sees the views and is refused a change.
	readerToken := e.loginAs("reader", "reader password")
	if r := e.doAs(readerToken, "GET", "/api/v1/features", "", ""); r.status != 200 {
		t.Errorf("reader reads features: %d", r.status)
	}
	r = e.doAs(readerToken, "PUT", "/api/v1/model", "text/plain", sitesModel)
	wantError(t, r, 403, "access_denied")
	if !strings.Contains(string(r.body), "needs the RESERVATIONS role") {
		t.Errorf("403 body %s", r.body)
	}

	// New roles: a gained role works at once with the same token.
	r = e.do("PUT", "/api/v1/users/reader", ct, `{"roles":["READ","RESERVATIONS"]}`, true)
	r.json(t, &u)
	if r.status != 200 || len(u.Roles) != 2 {
		t.Fatalf("set roles: %d %s", r.status, r.body)
	}
	if r := e.doAs(readerToken, "PUT", "/api/v1/model", "text/plain", sitesModel); r.status != 204 {
		t.Errorf("with RESERVATIONS: %d %s", r.status, r.body)
	}
	// A lost role ends the user's tokens.
	e.do("PUT", "/api/v1/users/reader", ct, `{"roles":["READ"]}`, true)
	wantError(t, e.doAs(readerToken, "GET", "/api/v1/features", "", ""), 401, "unauthorized")

	// A new password from an administrator ends the user's tokens too.
	readerToken = e.loginAs("reader", "reader password")
	if r := e.do("PUT", "/api/v1/users/reader", ct, `{"password":"new reader password"}`, true); r.status != 200 {
		t.Fatalf("set password: %d %s", r.status, r.body)
	}
	wantError(t, e.doAs(readerToken, "GET", "/api/v1/features", "", ""), 401, "unauthorized")
	readerToken = e.loginAs("reader", "new reader password")
	before = e.store.snapshot(t)
	wantError(t, e.do("PUT", "/api/v1/users/reader", ct, `{"roles":["ADMIN"],"password":"weak"}`, true), 400, "weak_password")
	wantError(t, e.do("PUT", "/api/v1/users/reader", ct, `{}`, true), 400, "bad_json")
	wantError(t, e.do("PUT", "/api/v1/users/nobody", ct, `{"roles":["READ"]}`, true), 404, "unknown_user")
	wantError(t, e.do("PUT", "/api/v1/users/admin", ct, `{"roles":["READ"]}`, true), 409, "last_admin")
	wantError(t, e.do("DELETE", "/api/v1/users/admin", "", "", true), 409, "last_admin")
	if !bytes.Equal(before, e.store.snapshot(t)) {
		t.Error("a refused user change changed the state")
	}

	if r := e.do("DELETE", "/api/v1/users/reader", "", "", true); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	wantError(t, e.doAs(readerToken, "GET", "/api/v1/features", "", ""), 401, "unauthorized")
	wantError(t, e.do("DELETE", "/api/v1/users/reader", "", "", true), 404, "unknown_user")

	// No password or hash ever reaches the audit log.
	var audit auditResponse
	e.do("GET", "/api/v1/audit", "", "", true).json(t, &audit)
	for _, rec := range audit.Items {
		if strings.Contains(rec.Detail, "reader password") || strings.Contains(rec.Detail, "argon2") {
			t.Errorf("audit record %d shows a secret: %q", rec.Seq, rec.Detail)
		}
	}
}

func TestLogoutAndPasswordChange(t *testing.T) {
	e := newTestEnv(t)
	first := e.login(testPassword)
	second := e.login(testPassword)
	if first == second {
		t.Fatal("two logins gave the same token")
	}
	if r := e.doAs(first, "POST", "/api/v1/auth/logout", "", ""); r.status != 204 {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	// Logout ends every token of the user, as on every node.
	wantError(t, e.doAs(first, "GET", "/api/v1/model", "", ""), 401, "unauthorized")
	wantError(t, e.doAs(second, "GET", "/api/v1/model", "", ""), 401, "unauthorized")

	tok := e.login(testPassword)
	const ct = "application/json"
	before := e.store.snapshot(t)
	wantError(t, e.doAs(tok, "PUT", "/api/v1/auth/password", ct, `{"current":"wrong password","new":"a brand new password"}`), 403, "bad_credentials")
	wantError(t, e.doAs(tok, "PUT", "/api/v1/auth/password", ct, `{"current":"`+testPassword+`","new":"short"}`), 400, "weak_password")
	wantError(t, e.doAs(tok, "PUT", "/api/v1/auth/password", ct, `{"current":"`+testPassword+`"}`), 400, "bad_json")
	if !bytes.Equal(before, e.store.snapshot(t)) {
		t.Error("a refused password change changed the state")
	}
	if r := e.doAs(tok, "PUT", "/api/v1/auth/password", ct, `{"current":"`+testPassword+`","new":"a brand new password"}`); r.status != 204 {
		t.Fatalf("password change: %d %s", r.status, r.body)
	}
	wantError(t, e.doAs(tok, "GET", "/api/v1/model", "", ""), 401, "unauthorized")
	r := e.do("POST", "/api/v1/auth/login", ct, `{"user":"admin","password":"`+testPassword+`"}`, false)
	wantError(t, r, 401, "bad_credentials")
	e.token = e.loginAs("admin", "a brand new password")
	var audit auditResponse
	e.do("GET", "/api/v1/audit", "", "", true).json(t, &audit)
	if audit.Total != 2 || audit.Items[0].Action != "logout" || audit.Items[1].Action != "setPassword" ||
		audit.Items[1].User != "admin" || audit.Items[1].Address != "127.0.0.1" {
		t.Errorf("audit %+v", audit)
	}
}

// TestLoginRateLimitPerUser guesses one user's password from many
// addresses: past the user's limit even the right password waits, while
// other users and, later, the user itself log in.
func TestLoginRateLimitPerUser(t *testing.T) {
	w := newAccessWorld(t)
	login := func(user, pw, remote string) int {
		b, _ := json.Marshal(map[string]string{"user": user, "password": pw})
		return w.serve("POST", "/api/v1/auth/login", "application/json", string(b), "", remote).Code
	}
	for i := range userLoginBurst {
		// Two guesses from each address stay below the address limit.
		if code := login("u-READ", "guess", fmt.Sprintf("192.0.2.%d:1", 10+i/2)); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	rec := w.serve("POST", "/api/v1/auth/login", "application/json", `{"user":"u-READ","password":"`+rolePassword+`"}`, "", "198.51.100.1:1")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "for this user") {
		t.Fatalf("right password past the user's limit: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if code := login("u-ADMIN", rolePassword, "198.51.100.1:1"); code != http.StatusOK {
		t.Errorf("another user from the same address: %d", code)
	}
	// A user's limit taken does not use up the address's.
	for range loginBurst {
		login("u-READ", rolePassword, "198.51.100.2:1")
	}
	if code := login("u-OFFLINE", rolePassword, "198.51.100.2:1"); code != http.StatusOK {
		t.Errorf("the address was charged for the user's limit: %d", code)
	}
	w.server.cfg.Now = func() time.Time { return t0.Add(loginRefill) }
	if code := login("u-READ", rolePassword, "198.51.100.3:1"); code != http.StatusOK {
		t.Errorf("after refill: %d", code)
	}
}

func TestAuditRoute(t *testing.T) {
	e := newTestEnv(t)
	for i := range 5 {
		r := e.do("PUT", "/api/v1/properties/server.pageSize", "application/json", fmt.Sprintf(`{"value":"%d"}`, 10+i), true)
		if r.status != 200 {
			t.Fatal(r.status)
		}
	}
	var a auditResponse
	e.do("GET", "/api/v1/audit", "", "", true).json(t, &a)
	if a.Total != 5 || len(a.Items) != 5 || !a.Verified {
		t.Fatalf("audit %+v", a)
	}
	first := a.Items[0]
	if first.Seq != 1 || first.User != "admin" || first.Address != "127.0.0.1" || first.Action != "setProperty" ||
		!strings.Contains(first.Detail, "server.pageSize") || !first.At.Equal(t0) || first.Hash == "" {
		t.Errorf("first record %+v", first)
	}
	e.do("GET", "/api/v1/audit?after=2&limit=2", "", "", true).json(t, &a)
	if a.Total != 5 || len(a.Items) != 2 || a.Items[0].Seq != 3 || a.Items[1].Seq != 4 || a.Items[0].Prev == "" {
		t.Errorf("after=2&limit=2: %+v", a)
	}
	e.do("GET", "/api/v1/audit?after=5", "", "", true).json(t, &a)
	if len(a.Items) != 0 || a.Items == nil {
		t.Errorf("after the end: %+v", a)
	}
	for _, q := range []string{"after=-1", "after=x", "limit=0", "limit=1001", "limit=two"} {
		wantError(t, e.do("GET", "/api/v1/audit?"+q, "", "", true), 400, "bad_paging")
	}
}

func TestLicensingID(t *testing.T) {
	e := newTestEnv(t)
	var got licensingIDResponse
	r := e.do("GET", "/api/v1/licensing-id", "", "", true)
	r.json(t, &got)
	id := e.id
	want := licensingIDResponse{Display: id.Display(), ID: id.String(), Fingerprint: id.Fingerprint(),
		Servers: []licensingIDServer{{Host: "host-a", ServerStatus: "Running", IDStatus: "Main licensing ID", Display: id.Display(), Fingerprint: id.Fingerprint()}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("licensing ID\n got %+v\nwant %+v", got, want)
	}
	// The raw JSON carries the documented field names.
	for _, f := range []string{`"display"`, `"id"`, `"fingerprint"`, `"servers"`, `"host"`, `"serverStatus"`, `"idStatus"`} {
		if !bytes.Contains(r.body, []byte(f)) {
			t.Errorf("no %s in %s", f, r.body)
		}
	}

	r = e.do("GET", "/api/v1/licensing-id/cert", "", "", true)
	if r.status != 200 || r.header.Get("Content-Type") != "application/x-pem-file" ||
		r.header.Get("Content-Disposition") != `attachment; filename="licensing-id.cert"` {
		t.Fatalf("cert: %d %v", r.status, r.header)
	}
	if !bytes.Equal(r.body, id.CertificatePEM()) {
		t.Error("the exported certificate is not the ID's")
	}
	if b, _ := pem.Decode(r.body); b == nil || b.Type != "CERTIFICATE" {
		t.Error("the export is not a PEM certificate")
	}

	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed")
	}
	file := filepath.Join(t.TempDir(), "licensing-id.cert")
	if err := os.WriteFile(file, r.body, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "x509", "-noout", "-fingerprint", "-sha256", "-in", file).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	_, fp, ok := strings.Cut(strings.TrimSpace(string(out)), "=")
	if !ok || fp != got.Fingerprint {
		t.Errorf("openssl prints %q, the API shows %s", out, got.Fingerprint)
	}
}
