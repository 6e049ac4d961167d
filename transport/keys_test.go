package transport

import (
	"context"
	"crypto/rand"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/tallyhq/tally/core"
)

// keyList is a page of the keys list.
type keyList struct {
	Total int       `json:"total"`
	Items []keyView `json:"items"`
}

var (
	randomSecret = regexp.MustCompile(`^[A-HJ-NP-Z2-9]{5}(-[A-HJ-NP-Z2-9]{5}){3}$`)
	randomKeyID  = regexp.MustCompile(`^k-[0-9a-f]{16}$`)
)

func (e *testEnv) listKeys(t *testing.T, query string) keyList {
	t.Helper()
	r := e.do("GET", "/api/v1/keys"+query, "", "", true)
	if r.status != http.StatusOK {
		t.Fatalf("list keys%s: %d %s", query, r.status, r.body)
	}
	var l keyList
	r.json(t, &l)
	return l
}

// wantUnchanged sends a request that must be refused with status and code
// and checks that the state is as it was.
func (e *testEnv) wantRefused(t *testing.T, method, path, contentType, body string, status int, code string) {
	t.Helper()
	before := e.store.snapshot(t)
	wantError(t, e.do(method, path, contentType, body, true), status, code)
	if string(before) != string(e.store.snapshot(t)) {
		t.Fatalf("%s %s %s was refused but changed the state", method, path, body)
	}
}

func TestKeys(t *testing.T) {
	e := newTestEnv(t)
	const ct = "application/json"

	r := e.do("POST", "/api/v1/keys", ct, `{"type":"ONE_TIME","count":3,"description":"line 4"}`, true)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created keyList
	r.json(t, &created)
	if created.Total != 3 || len(created.Items) != 3 {
		t.Fatalf("created %+v", created)
	}
	secrets := map[string]string{}
	for _, k := range created.Items {
		if !randomKeyID.MatchString(k.ID) || !randomSecret.MatchString(k.Secret) || !k.Shown ||
			k.Type != core.KeyOneTime || k.State != core.KeyActive || k.Description != "line 4" || !k.Created.Equal(t0) {
			t.Errorf("created key %+v", k)
		}
		secrets[k.ID] = k.Secret
	}
	if len(secrets) != 3 {
		t.Fatalf("created keys share IDs: %+v", created.Items)
	}
	last, _ := auditTail(e)
	if last.Action != "createKeys" || last.User != "admin" || strings.Contains(last.Detail, created.Items[0].Secret) {
		t.Errorf("audit: %+v", last)
	}

	// Listed masked, unless shown.
	l := e.listKeys(t, "")
	if l.Total != 3 {
		t.Fatalf("list: %+v", l)
	}
	for _, k := range l.Items {
		if k.Shown || k.Secret != "••••"+secrets[k.ID][len(secrets[k.ID])-2:] {
			t.Errorf("masked key %+v", k)
		}
	}
	for _, k := range e.listKeys(t, "?show=true").Items {
		if !k.Shown || k.Secret != secrets[k.ID] {
			t.Errorf("shown key %+v, want secret %s", k, secrets[k.ID])
		}
	}
	if l := e.listKeys(t, "?pageSize=2&page=2"); l.Total != 3 || len(l.Items) != 1 {
		t.Errorf("page 2 of 2: %+v", l)
	}

	// Mass keys: typed, then random.
	r = e.do("POST", "/api/v1/keys", ct, `{"type":"MASS","description":"fleet","secret":"typed mass password"}`, true)
	if r.status != http.StatusCreated {
		t.Fatalf("create mass: %d %s", r.status, r.body)
	}
	var mass keyList
	r.json(t, &mass)
	if mass.Total != 1 || mass.Items[0].Secret != "typed mass password" || mass.Items[0].Type != core.KeyMass {
		t.Fatalf("mass key %+v", mass)
	}
	massID := mass.Items[0].ID
	r = e.do("POST", "/api/v1/keys", ct, `{"type":"mass"}`, true)
	r.json(t, &mass)
	if r.status != http.StatusCreated || !randomSecret.MatchString(mass.Items[0].Secret) {
		t.Fatalf("random mass key: %d %s", r.status, r.body)
	}
	if l := e.listKeys(t, "?type=MASS"); l.Total != 2 {
		t.Errorf("MASS keys: %+v", l)
	}
	if l := e.listKeys(t, "?type=one-time&state=active"); l.Total != 3 {
		t.Errorf("active one-time keys: %+v", l)
	}

	// Activate, deactivate, describe.
	id := created.Items[0].ID
	r = e.do("PUT", "/api/v1/keys/"+id, ct, `{"active":false}`, true)
	var k keyView
	r.json(t, &k)
	if r.status != http.StatusOK || k.State != core.KeyInactive || k.Shown {
		t.Fatalf("deactivate: %d %s", r.status, r.body)
	}
	if l := e.listKeys(t, "?state=inactive"); l.Total != 1 || l.Items[0].ID != id {
		t.Errorf("inactive keys: %+v", l)
	}
	r = e.do("PUT", "/api/v1/keys/"+id, ct, `{"active":true,"description":"line 5"}`, true)
	r.json(t, &k)
	if r.status != http.StatusOK || k.State != core.KeyActive || k.Description != "line 5" {
		t.Fatalf("activate and describe: %d %s", r.status, r.body)
	}

	// A used one-time key cannot be activated or deactivated.
	used := created.Items[1]
	e.store.mustApply(t, &core.Onboard{Device: core.DeviceInfo{ID: testMAC(9), Type: core.DevicePhysical},
		Secret: used.Secret, PublicKey: []byte("device public key")})
	if l := e.listKeys(t, "?state=USED"); l.Total != 1 || l.Items[0].ID != used.ID || l.Items[0].UsedBy != testMAC(9) {
		t.Errorf("used keys: %+v", l)
	}

	// Every refusal leaves the state as it was.
	for _, c := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"POST", "/api/v1/keys", `{"type":"MASS","secret":"typed mass password"}`, 409, "duplicate_key_secret"},
		{"POST", "/api/v1/keys", `{"type":"MASS","secret":"` + used.Secret + `"}`, 409, "duplicate_key_secret"},
		{"POST", "/api/v1/keys", `{"type":"ONE_TIME","count":0}`, 400, "invalid_key"},
		{"POST", "/api/v1/keys", `{"type":"ONE_TIME","count":10001}`, 400, "invalid_key"},
		{"POST", "/api/v1/keys", `{"type":"ONE_TIME","count":-1}`, 400, "invalid_key"},
		{"POST", "/api/v1/keys", `{"type":"ONE_TIME"}`, 400, "bad_json"},
		{"POST", "/api/v1/keys", `{"type":"ONE_TIME","count":1,"secret":"typed password"}`, 400, "invalid_key"},
		{"POST", "/api/v1/keys", `{"type":"MASS","count":2}`, 400, "invalid_key"},
		{"POST", "/api/v1/keys", `{"type":"MASS","secret":"short"}`, 400, "invalid_key"},
		{"POST", "/api/v1/keys", `{"type":"MASS","secret":" leading space"}`, 400, "invalid_key"},
		{"POST", "/api/v1/keys", `{"type":"MASS","secret":"tab\tinside"}`, 400, "invalid_key"},
		{"POST", "/api/v1/keys", `{"type":"MASS","description":"` + strings.Repeat("d", 257) + `"}`, 400, "invalid_key"},
		{"POST", "/api/v1/keys", `{"type":"SOMETIMES","count":1}`, 400, "invalid_key"},
		{"POST", "/api/v1/keys", `{"count":1}`, 400, "bad_json"},
		{"POST", "/api/v1/keys", `{"type":"ONE_TIME","count":1,"id":"mine"}`, 400, "bad_json"},
		{"POST", "/api/v1/keys", `{"type":"ONE_TIME","count":"3"}`, 400, "bad_json"},
		{"POST", "/api/v1/keys", `{"type":"ONE_TIME","count":1`, 400, "bad_json"},
		{"PUT", "/api/v1/keys/" + used.ID, `{"active":true}`, 409, "key_used"},
		{"PUT", "/api/v1/keys/" + used.ID, `{"active":false,"description":"x"}`, 409, "key_used"},
		{"PUT", "/api/v1/keys/" + id, `{"active":false,"description":"bell\u0007"}`, 400, "invalid_key"},
		{"PUT", "/api/v1/keys/" + id, `{}`, 400, "bad_json"},
		{"PUT", "/api/v1/keys/" + id, `{"active":"no"}`, 400, "bad_json"},
		{"PUT", "/api/v1/keys/k-nope", `{"active":true}`, 404, "unknown_key"},
		{"PUT", "/api/v1/keys/bad%20id", `{"active":true}`, 400, "invalid_key"},
		{"DELETE", "/api/v1/keys/k-nope", ``, 404, "unknown_key"},
	} {
		ct := "application/json"
		if c.body == "" {
			ct = ""
		}
		e.wantRefused(t, c.method, c.path, ct, c.body, c.status, c.code)
	}
	e.wantRefused(t, "POST", "/api/v1/keys", "text/plain", `{"type":"ONE_TIME","count":1}`, 415, "unsupported_media_type")
	for _, q := range []string{"?type=SOME", "?state=gone", "?show=maybe", "?pageSize=0"} {
		code := "bad_query"
		if strings.Contains(q, "page") {
			code = "bad_paging"
		}
		wantError(t, e.do("GET", "/api/v1/keys"+q, "", "", true), 400, code)
	}

	// Delete.
	r = e.do("DELETE", "/api/v1/keys/"+massID, "", "", true)
	if r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if l := e.listKeys(t, "?type=MASS"); l.Total != 1 {
		t.Errorf("after delete: %+v", l)
	}
	e.wantRefused(t, "DELETE", "/api/v1/keys/"+massID, "", "", 404, "unknown_key")
	// Its password is free again.
	r = e.do("POST", "/api/v1/keys", ct, `{"type":"MASS","secret":"typed mass password"}`, true)
	if r.status != http.StatusCreated {
		t.Errorf("reuse of a deleted key's password: %d %s", r.status, r.body)
	}
}

// TestKeysRoles checks that only KEYS (and ADMIN) see keys at all: a READ
// user, who may read every view, may not list them.
func TestKeysRoles(t *testing.T) {
	e := newTestEnv(t)
	e.store.addUser(t, "reader", "reader password", core.RoleRead)
	e.store.addUser(t, "keeper", "keeper password", core.RoleKeys)
	reader := e.loginAs("reader", "reader password")
	keeper := e.loginAs("keeper", "keeper password")
	wantError(t, e.doAs(reader, "GET", "/api/v1/keys", "", ""), 403, "access_denied")
	r := e.doAs(keeper, "POST", "/api/v1/keys", "application/json", `{"type":"ONE_TIME","count":1}`)
	if r.status != http.StatusCreated {
		t.Fatalf("KEYS creates: %d %s", r.status, r.body)
	}
	wantError(t, e.doAs(keeper, "GET", "/api/v1/client-key", "", ""), 403, "access_denied")
	wantError(t, e.doAs(keeper, "POST", "/api/v1/licensing-id/backup", "application/json", `{"password":"long enough"}`), 403, "access_denied")
}

func TestNewKeySecret(t *testing.T) {
	if len(secretAlphabet) != 32 || strings.ContainsAny(secretAlphabet, "01IO") {
		t.Fatalf("alphabet %q", secretAlphabet)
	}
	seen := map[string]bool{}
	for range 1000 {
		s, err := newKeySecret(rand.Reader)
		if err != nil || !randomSecret.MatchString(s) || seen[s] {
			t.Fatalf("secret %q: %v", s, err)
		}
		seen[s] = true
	}
	if _, err := newKeySecret(strings.NewReader("short")); err == nil {
		t.Fatal("a secret from too little randomness")
	}
	if maskSecret("AB") != "••••" || maskSecret("ABCDE-FGHJK") != "••••JK" {
		t.Errorf("masks %q %q", maskSecret("AB"), maskSecret("ABCDE-FGHJK"))
	}
}

// auditTail returns the last audit record and the number of records.
func auditTail(e *testEnv) (core.AuditRecord, int) {
	var recs []core.AuditRecord
	e.store.Read(context.Background(), func(st *core.State) error {
		recs = st.Audit(0, 0)
		return nil
	})
	if len(recs) == 0 {
		return core.AuditRecord{}, 0
	}
	return recs[len(recs)-1], len(recs)
}
