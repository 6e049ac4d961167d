package transport

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/capability"
	"github.com/tallyhq/tally/core/licensingid"
	"github.com/tallyhq/tally/core/rights"
	"github.com/tallyhq/tally/core/version"
)

// rolePassword is the password of every user the role table logs in as.
const rolePassword = "role password 1"

// everyRole lists the roles; each gets a user named "u-" + the role.
var everyRole = []core.Role{core.RoleAdmin, core.RoleRead, core.RoleReservations, core.RoleOffline, core.RoleDropDevice, core.RoleKeys}

// accessWorld is a server over a fresh store holding a user per role, a
// user "victim" (READ) for the user routes to act on, and users whose
// tokens the test ends.
type accessWorld struct {
	store  *fakeStore
	server *Server
}

func newAccessWorld(t *testing.T) *accessWorld {
	t.Helper()
	fs := newFakeStore(t)
	for _, r := range everyRole {
		fs.addUser(t, "u-"+r.String(), rolePassword, r)
	}
	for _, name := range []string{"victim", "gone", "logged-out"} {
		fs.addUser(t, name, rolePassword, core.RoleRead)
	}
	clock := &testClock{now: t0}
	cfg := Config{Store: fs, Rights: fakeRights{}, Identity: testIdentity(t), Now: clock.Now,
		RestoreIdentity: func(*licensingid.ID) error { return nil }}
	// Scans without targets reach a test agent; magic packets a listener.
	newDiscoveryRig(t, cfg.Identity, &cfg)
	cfg.Cluster = newFakeCluster()
	cfg.Capability = capability.NewVerifier(cfg.Identity.Fingerprint(), &rights.DemoProducerKey().PublicKey)
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.stopScans)
	srv.hashPassword = cheapHashOf
	return &accessWorld{store: fs, server: srv}
}

// mint signs a token as the server would at login.
func (w *accessWorld) mint(t testing.TB, key []byte, user string, epoch uint64, expires time.Time) string {
	t.Helper()
	tok, err := signToken(key, tokenClaims{User: user, Epoch: epoch, Expires: expires.Unix(), Nonce: "n"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (w *accessWorld) key() []byte {
	w.store.mu.Lock()
	defer w.store.mu.Unlock()
	return w.store.state.TokenKey()
}

func (w *accessWorld) serve(method, path, contentType, body, token, remote string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = remote
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	w.server.Handler().ServeHTTP(rec, req)
	return rec
}

func (w *accessWorld) lastAudit() (core.AuditRecord, int) {
	w.store.mu.Lock()
	defer w.store.mu.Unlock()
	recs := w.store.state.Audit(0, 0)
	if len(recs) == 0 {
		return core.AuditRecord{}, 0
	}
	return recs[len(recs)-1], len(recs)
}

// accessCase is a request to a route that succeeds for a caller with the
// right: its role (anyRole for every user), and for a write, the command
// type the audit log must record.
type accessCase struct {
	role              core.Role
	method, path      string
	contentType, body string
	setup             func(t *testing.T, fs *fakeStore)
	action            string // the audited command; empty for reads
	anonymousRefused  bool   // an anonymous caller has no session or password
	wantStatus        int
}

func accessCases(t *testing.T) map[string]accessCase {
	line := core.FeatureLine{ID: "sim-1", Name: "sim", Version: version.MustParse("3.0"), Count: 7}
	withGroup := func(t *testing.T, fs *fakeStore) {
		groups, err := core.ParseReservations([]byte(reservationsJSON))
		if err != nil {
			t.Fatal(err)
		}
		fs.mustApply(t, &core.SetReservations{Groups: groups})
	}
	withModel := func(t *testing.T, fs *fakeStore) { fs.mustApply(t, &core.SetModel{Text: sitesModel}) }
	withKey := func(t *testing.T, fs *fakeStore) {
		fs.mustApply(t, &core.CreateKeys{KeyType: core.KeyOneTime, Keys: []core.NewKey{{ID: "k-test", Secret: "SECRET-0001"}}})
	}
	withJoinToken := func(t *testing.T, fs *fakeStore) {
		fs.mustApply(t, &core.CreateJoinToken{ID: "0123456789abcdef", Verifier: bytes.Repeat([]byte{1}, 32), Expires: t0.Add(time.Hour)})
	}
	restoreBody := backupRequestBody(t, testIdentity(t), "backup password")
	// A database backup of a world like the one each case runs in.
	databaseBackup := string(newAccessWorld(t).store.snapshot(t))
	const json = "application/json"
	return map[string]accessCase{
		"POST /api/v1/auth/logout":              {role: anyRole, action: "logout", anonymousRefused: true, wantStatus: 204},
		"PUT /api/v1/auth/password":             {role: anyRole, contentType: json, body: `{"current":"` + rolePassword + `","new":"another password 2"}`, action: "setPassword", anonymousRefused: true, wantStatus: 204},
		"GET /api/v1/server":                    {role: anyRole, wantStatus: 200},
		"GET /api/v1/features":                  {role: anyRole, wantStatus: 200},
		"GET /api/v1/features/{name}/{version}": {role: anyRole, path: "/api/v1/features/cad/1.0", wantStatus: 200},
		"GET /api/v1/devices":                   {role: anyRole, wantStatus: 200},
		"GET /api/v1/devices/{type}/{value}":    {role: anyRole, path: "/api/v1/devices/ETHERNET/00:11:22:33:44:01", wantStatus: 200},
		"DELETE /api/v1/devices/{type}/{value}": {role: core.RoleDropDevice, path: "/api/v1/devices/ETHERNET/00:11:22:33:44:01", action: "dropDevice", wantStatus: 204},
		"GET /api/v1/reservations":              {role: anyRole, setup: withGroup, wantStatus: 200},
		"GET /api/v1/reservations/export":       {role: anyRole, setup: withGroup, wantStatus: 200},
		"POST /api/v1/reservations":             {role: core.RoleReservations, contentType: json, body: reservationsJSON, action: "setReservations", wantStatus: 204},
		"DELETE /api/v1/reservations/{group}":   {role: core.RoleReservations, path: "/api/v1/reservations/lab", setup: withGroup, action: "deleteReservations", wantStatus: 204},
		"GET /api/v1/model":                     {role: anyRole, setup: withModel, wantStatus: 200},
		"PUT /api/v1/model":                     {role: core.RoleReservations, contentType: "text/plain", body: sitesModel, action: "setModel", wantStatus: 204},
		"DELETE /api/v1/model":                  {role: core.RoleReservations, setup: withModel, action: "deleteModel", wantStatus: 204},
		"GET /api/v1/pools":                     {role: anyRole, wantStatus: 200},
		"GET /api/v1/properties":                {role: anyRole, wantStatus: 200},
		"GET /api/v1/properties/{name}":         {role: anyRole, path: "/api/v1/properties/server.pageSize", wantStatus: 200},
		"PUT /api/v1/properties/{name}":         {role: core.RoleAdmin, path: "/api/v1/properties/server.pageSize", contentType: json, body: `{"value":"7"}`, action: "setProperty", wantStatus: 200},
		"POST /api/v1/rights":                   {role: core.RoleOffline, contentType: json, body: fakeRightsJSON(t, "file-x", 1, line), action: "loadRights", wantStatus: 200},
		"GET /api/v1/users":                     {role: core.RoleAdmin, wantStatus: 200},
		"POST /api/v1/users":                    {role: core.RoleAdmin, contentType: json, body: `{"name":"newbie","roles":["READ"],"password":"newbie password"}`, action: "createUser", wantStatus: 201},
		"GET /api/v1/users/{name}":              {role: core.RoleAdmin, path: "/api/v1/users/victim", wantStatus: 200},
		"PUT /api/v1/users/{name}":              {role: core.RoleAdmin, path: "/api/v1/users/victim", contentType: json, body: `{"roles":["READ","OFFLINE"]}`, action: "setUserRoles", wantStatus: 200},
		"DELETE /api/v1/users/{name}":           {role: core.RoleAdmin, path: "/api/v1/users/victim", action: "deleteUser", wantStatus: 204},
		"GET /api/v1/audit":                     {role: anyRole, wantStatus: 200},
		"GET /api/v1/history":                   {role: anyRole, path: "/api/v1/history?feature=cad", wantStatus: 200},
		"GET /api/v1/licensing-id":              {role: anyRole, wantStatus: 200},
		"GET /api/v1/licensing-id/cert":         {role: anyRole, wantStatus: 200},
		"POST /api/v1/licensing-id/backup":      {role: core.RoleAdmin, contentType: json, body: `{"password":"backup password"}`, wantStatus: 200},
		"POST /api/v1/licensing-id/restore":     {role: core.RoleAdmin, contentType: json, body: restoreBody, wantStatus: 200},
		"GET /api/v1/backup":                    {role: core.RoleAdmin, wantStatus: 200},
		"POST /api/v1/backup":                   {role: core.RoleAdmin, contentType: json, body: `{"password":"backup password"}`, wantStatus: 200},
		"POST /api/v1/backup/restore":           {role: core.RoleAdmin, contentType: "application/octet-stream", body: databaseBackup, action: "restoreBackup", wantStatus: 204},
		"GET /api/v1/keys":                      {role: core.RoleKeys, setup: withKey, wantStatus: 200},
		"POST /api/v1/keys":                     {role: core.RoleKeys, contentType: json, body: `{"type":"ONE_TIME","count":2}`, action: "createKeys", wantStatus: 201},
		"PUT /api/v1/keys/{id}":                 {role: core.RoleKeys, path: "/api/v1/keys/k-test", setup: withKey, contentType: json, body: `{"active":false}`, action: "setKeyActive", wantStatus: 200},
		"DELETE /api/v1/keys/{id}":              {role: core.RoleKeys, path: "/api/v1/keys/k-test", setup: withKey, action: "deleteKey", wantStatus: 204},
		"GET /api/v1/client-key":                {role: core.RoleAdmin, wantStatus: 200},
		"POST /api/v1/client-key":               {role: core.RoleAdmin, contentType: "application/octet-stream", body: string(rsaSPKI(t, 2048)), action: "setClientKey", wantStatus: 200},
		"POST /api/v1/discovery/scan":           {role: core.RoleAdmin, contentType: json, body: `{"timeoutSeconds":0.2}`, wantStatus: 202},
		"GET /api/v1/discovery/scan":            {role: anyRole, wantStatus: 200},
		"GET /api/v1/discovery/devices":         {role: anyRole, wantStatus: 200},
		"POST /api/v1/discovery/ping":           {role: core.RoleAdmin, wantStatus: 200},
		"POST /api/v1/discovery/wake":           {role: core.RoleAdmin, contentType: json, body: `{"device":{"type":"ETHERNET","value":"00:11:22:33:44:55"}}`, wantStatus: 202},
		"GET /api/v1/offline/status":            {role: core.RoleOffline, wantStatus: 200},
		"GET /api/v1/offline/request":           {role: core.RoleOffline, action: "beginSync", wantStatus: 200},
		"POST /api/v1/offline/activation":       {role: core.RoleOffline, contentType: json, body: `{"activationId":"ACT-1","count":2}`, action: "beginSync", wantStatus: 200},
		"POST /api/v1/offline/response":         {role: core.RoleOffline, contentType: "application/octet-stream", body: "not a response", wantStatus: 400},
		"GET /api/v1/cluster":                   {role: anyRole, wantStatus: 200},
		"DELETE /api/v1/cluster/members/{id}":   {role: core.RoleAdmin, path: "/api/v1/cluster/members/node-c", wantStatus: 204},
		"GET /api/v1/cluster/tokens":            {role: core.RoleAdmin, wantStatus: 200},
		"POST /api/v1/cluster/tokens":           {role: core.RoleAdmin, action: "createJoinToken", wantStatus: 201},
		"DELETE /api/v1/cluster/tokens/{id}":    {role: core.RoleAdmin, path: "/api/v1/cluster/tokens/0123456789abcdef", setup: withJoinToken, action: "deleteJoinToken", wantStatus: 204},
		// No scan ran in the role table's world: the invitation is refused
		// after the role check (TestInvite shows one that goes out).
		"POST /api/v1/discovery/onboard": {role: core.RoleAdmin, contentType: json, body: `{"device":{"type":"ETHERNET","value":"00:11:22:33:44:55"}}`, wantStatus: 404},
	}
}

// caller is who sends a request in the role table.
type caller struct {
	name string
	// role is the caller's one role; 0 for callers without a valid token.
	role core.Role
	// token returns the bearer token to send ("" for none).
	token func(t *testing.T, w *accessWorld) string
	// remote is the address the request comes from.
	remote string
	// status and code are the refusal every request gets, for callers
	// without a valid token.
	status int
	code   string
	// anonymous callers hold every right but have no session.
	anonymous bool
}

func accessCallers() []caller {
	var out []caller
	for _, r := range everyRole {
		name := "u-" + r.String()
		out = append(out, caller{name: name, role: r, remote: "192.0.2.1:4000", token: func(t *testing.T, w *accessWorld) string {
			return w.mint(t, w.key(), name, 0, t0.Add(time.Hour))
		}})
	}
	refused := func(name string, token func(t *testing.T, w *accessWorld) string) caller {
		return caller{name: name, remote: "192.0.2.1:4000", token: token, status: http.StatusUnauthorized, code: "unauthorized"}
	}
	return append(out,
		refused("no token", func(*testing.T, *accessWorld) string { return "" }),
		caller{name: "no token from loopback", remote: "127.0.0.1:4000", status: http.StatusUnauthorized, code: "unauthorized",
			token: func(*testing.T, *accessWorld) string { return "" }},
		refused("forged token", func(t *testing.T, w *accessWorld) string {
			return w.mint(t, bytes.Repeat([]byte{9}, core.TokenKeyLen), "u-ADMIN", 0, t0.Add(time.Hour))
		}),
		refused("tampered token", func(t *testing.T, w *accessWorld) string {
			// The claims of an ADMIN with the MAC of a READ user's token.
			_, mac, _ := strings.Cut(w.mint(t, w.key(), "u-READ", 0, t0.Add(time.Hour)), ".")
			claims, _, _ := strings.Cut(w.mint(t, w.key(), "u-ADMIN", 0, t0.Add(time.Hour)), ".")
			return claims + "." + mac
		}),
		refused("expired token", func(t *testing.T, w *accessWorld) string {
			return w.mint(t, w.key(), "u-ADMIN", 0, t0)
		}),
		refused("token of a deleted user", func(t *testing.T, w *accessWorld) string {
			tok := w.mint(t, w.key(), "gone", 0, t0.Add(time.Hour))
			w.store.mustApply(t, &core.DeleteUser{Name: "gone"})
			return tok
		}),
		refused("token after logout", func(t *testing.T, w *accessWorld) string {
			tok := w.mint(t, w.key(), "logged-out", 0, t0.Add(time.Hour))
			w.store.mustApply(t, &core.Logout{Name: "logged-out"})
			return tok
		}),
		refused("token of an unknown user", func(t *testing.T, w *accessWorld) string {
			return w.mint(t, w.key(), "nobody", 0, t0.Add(time.Hour))
		}),
		refused("not a token", func(*testing.T, *accessWorld) string { return "not-a-token" }),
		caller{name: "anonymous on loopback, security off", remote: "127.0.0.1:4000", anonymous: true,
			token: func(t *testing.T, w *accessWorld) string {
				w.store.mustApply(t, &core.SetProperty{Name: "security.enabled", Value: "false"})
				return ""
			}},
		refused("anonymous from afar, security off", func(t *testing.T, w *accessWorld) string {
			w.store.mustApply(t, &core.SetProperty{Name: "security.enabled", Value: "false"})
			return ""
		}),
	)
}

// TestRoleTable sends every authenticated route's request as every caller:
// a user of each role, and callers without a valid token. A caller with
// the right gets the route's answer and, for a write, an audit record
// naming the user and address; one without gets 403 access_denied naming
// the role, or 401; and a refused request changes nothing.
func TestRoleTable(t *testing.T) {
	cases := accessCases(t)
	probe := newAccessWorld(t)
	for _, rt := range probe.server.routes {
		if rt.public {
			continue
		}
		c, ok := cases[rt.pattern()]
		if !ok {
			t.Errorf("route %s has no case in the role table", rt.pattern())
			continue
		}
		if c.role != rt.role {
			t.Errorf("route %s needs %v, the role table wants %v", rt.pattern(), rt.role, c.role)
		}
		delete(cases, rt.pattern())
		path := c.path
		if path == "" {
			path = rt.path
		}
		for _, who := range accessCallers() {
			t.Run(rt.pattern()+"/"+who.name, func(t *testing.T) {
				w := newAccessWorld(t)
				if c.setup != nil {
					c.setup(t, w.store)
				}
				token := who.token(t, w)
				before := w.store.snapshot(t)
				_, auditBefore := w.lastAudit()
				rec := w.serve(rt.method, path, c.contentType, c.body, token, who.remote)

				var wantStatus int
				var wantCode string
				switch {
				case who.anonymous && c.anonymousRefused:
					wantStatus, wantCode = http.StatusBadRequest, "anonymous"
				case who.anonymous:
					wantStatus = c.wantStatus
				case who.status != 0:
					wantStatus, wantCode = who.status, who.code
				case c.role == anyRole || (core.User{Roles: []core.Role{who.role}}).Has(c.role):
					wantStatus = c.wantStatus
				default:
					wantStatus, wantCode = http.StatusForbidden, "access_denied"
				}
				if rec.Code != wantStatus {
					t.Fatalf("%s %s as %s: %d %s, want %d", rt.method, path, who.name, rec.Code, rec.Body, wantStatus)
				}
				if wantCode != "" {
					var eb errorBody
					if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Code != wantCode {
						t.Fatalf("error body %s, want code %s", rec.Body, wantCode)
					}
					if wantCode == "access_denied" && eb.Error != "access denied: needs the "+c.role.String()+" role" {
						t.Errorf("403 message %q does not name the %s role", eb.Error, c.role)
					}
					if !bytes.Equal(before, w.store.snapshot(t)) {
						t.Fatal("a refused request changed the state")
					}
					return
				}
				last, auditAfter := w.lastAudit()
				if c.action == "" {
					if !bytes.Equal(before, w.store.snapshot(t)) {
						t.Error("a read changed the state")
					}
					return
				}
				wantUser, wantAddress := who.name, "192.0.2.1"
				if who.anonymous {
					wantUser, wantAddress = "anonymous@loopback", "127.0.0.1"
				}
				if auditAfter != auditBefore+1 || last.Action != c.action || last.User != wantUser || last.Address != wantAddress {
					t.Errorf("audit after %s: %d records (was %d), last %+v; want %s by %s from %s",
						c.action, auditAfter, auditBefore, last, c.action, wantUser, wantAddress)
				}
			})
		}
	}
	for pattern := range cases {
		t.Errorf("the role table has a case for %s, which is not a route", pattern)
	}
}
