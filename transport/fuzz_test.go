package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/licensingid"
	"github.com/tallyhq/tally/core/password"
)

// The fuzz targets feed arbitrary bodies to every route that reads one
// (seed corpora in testdata/fuzz). Whatever comes in, the answer is never a
// 5xx, every error is the documented JSON, and a refused request leaves the
// state as it was.

// fuzzEnv is a server driven through its handler, without a network.
type fuzzEnv struct {
	store  *fakeStore
	server *Server
	id     *licensingid.ID
	token  string
}

func newFuzzEnv(t testing.TB) *fuzzEnv {
	t.Helper()
	fe := &fuzzEnv{store: newFakeStore(t)}
	fe.server = fe.newServer(t)
	r := fe.serve(t, "POST", "/api/v1/auth/login", "application/json", []byte(`{"user":"admin","password":"`+testPassword+`"}`))
	var tok loginResponse
	if err := json.Unmarshal(r.Body.Bytes(), &tok); err != nil || tok.Token == "" {
		t.Fatalf("login: %d %s", r.Code, r.Body)
	}
	fe.token = tok.Token
	return fe
}

func (fe *fuzzEnv) newServer(t testing.TB) *Server {
	t.Helper()
	clock := &testClock{now: t0}
	if fe.id == nil {
		fe.id = testIdentity(t)
	}
	srv, err := NewServer(Config{Store: fe.store, Rights: fakeRights{}, Identity: fe.id, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv.hashPassword = cheapHashOf
	return srv
}

func (fe *fuzzEnv) serve(t testing.TB, method, path, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.RemoteAddr = "192.0.2.1:4000"
	req.Header.Set("Content-Type", contentType)
	if fe.token != "" {
		req.Header.Set("Authorization", "Bearer "+fe.token)
	}
	rec := httptest.NewRecorder()
	fe.server.Handler().ServeHTTP(rec, req)
	return rec
}

// check sends the request and checks the invariants; it returns the status.
func (fe *fuzzEnv) check(t *testing.T, method, path, contentType string, body []byte) int {
	t.Helper()
	return fe.checkResponse(t, method, path, contentType, body).Code
}

// checkResponse is check returning the whole response.
func (fe *fuzzEnv) checkResponse(t *testing.T, method, path, contentType string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	before := fe.store.snapshot(t)
	rec := fe.serve(t, method, path, contentType, body)
	if rec.Code >= 500 {
		t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
	if rec.Code >= 400 {
		var eb errorBody
		dec := json.NewDecoder(rec.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&eb); err != nil || eb.Code == "" || eb.Error == "" || strings.ContainsAny(eb.Error, "\r\n") {
			t.Fatalf("%s %s: %d with error body %q (%v)", method, path, rec.Code, rec.Body, err)
		}
		if !bytes.Equal(before, fe.store.snapshot(t)) {
			t.Fatalf("%s %s: refused with %d (%s) but the state changed", method, path, rec.Code, eb.Code)
		}
	}
	return rec
}

func FuzzLogin(f *testing.F) {
	fe := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		// A fresh server each time, so the login limiter does not end the search.
		fe.server = fe.newServer(t)
		fe.token = ""
		if fe.check(t, "POST", "/api/v1/auth/login", "application/json", body) == http.StatusOK {
			var req loginRequest
			if err := decodeJSON(body, &req); err != nil || *req.User != "admin" || *req.Password != testPassword {
				t.Fatalf("login with %q succeeded", body)
			}
		}
	})
}

// FuzzCreateUser sends arbitrary bodies to POST /api/v1/users. A user is
// created only from a well-formed body with a policy-conforming password,
// holds exactly the roles asked for, and can log in with the password.
func FuzzCreateUser(f *testing.F) {
	fe := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		if fe.check(t, "POST", "/api/v1/users", "application/json", body) != http.StatusCreated {
			return
		}
		var req createUserRequest
		if err := decodeJSON(body, &req); err != nil || req.Name == nil || req.Password == nil {
			t.Fatalf("created a user from %q", body)
		}
		if err := password.Check(*req.Password); err != nil {
			t.Fatalf("created a user with a password the policy refuses: %v", err)
		}
		var u core.UserSummary
		fe.store.Read(context.Background(), func(st *core.State) error {
			u, _ = st.User(*req.Name)
			return nil
		})
		roles, err := parseRoles(req.Roles)
		if err != nil || !sameRoles(u.Roles, roles) {
			t.Fatalf("user %q holds %v, asked for %v", *req.Name, u.Roles, req.Roles)
		}
		login, _ := json.Marshal(map[string]string{"user": *req.Name, "password": *req.Password})
		saved := fe.token
		fe.token = ""
		rec := fe.serve(t, "POST", "/api/v1/auth/login", "application/json", login)
		fe.token = saved
		if rec.Code != http.StatusOK {
			t.Fatalf("the new user cannot log in: %d %s", rec.Code, rec.Body)
		}
		// Leave the store as it was for the next input.
		fe.store.mustApply(t, &core.DeleteUser{Name: *req.Name})
	})
}

// sameRoles compares role sets.
func sameRoles(a, b []core.Role) bool {
	has := func(set []core.Role, r core.Role) bool { return slices.Contains(set, r) }
	for _, r := range a {
		if !has(b, r) {
			return false
		}
	}
	for _, r := range b {
		if !has(a, r) {
			return false
		}
	}
	return true
}

func FuzzReservationsImport(f *testing.F) {
	fe := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fe.check(t, "POST", "/api/v1/reservations", "application/json", body)
	})
}

func FuzzPropertySet(f *testing.F) {
	fe := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		fe.check(t, "PUT", "/api/v1/properties/"+url.PathEscape(name), "application/json", body)
		// The token must outlive whatever the fuzzer does to the properties.
		if rec := fe.serve(t, "GET", "/api/v1/model", "", nil); rec.Code != http.StatusOK {
			t.Fatalf("token lost: %d %s", rec.Code, rec.Body)
		}
	})
}

func FuzzRightsUpload(f *testing.F) {
	fe := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fe.check(t, "POST", "/api/v1/rights", "application/json", body)
	})
}

// TestInternalErrorHidden checks that an error the API does not know is a
// 500 with a generic message, and that the detail goes to the log only.
func TestInternalErrorHidden(t *testing.T) {
	e := newTestEnv(t)
	e.token = e.login(testPassword)
	e.store.mu.Lock()
	e.store.fail = errors.New("secret detail")
	e.store.mu.Unlock()
	r := e.do("GET", "/api/v1/model", "", "", true)
	wantError(t, r, http.StatusInternalServerError, "internal")
	if strings.Contains(string(r.body), "secret detail") {
		t.Errorf("detail leaked: %s", r.body)
	}
	if !strings.Contains(e.logs.String(), "secret detail") {
		t.Error("the detail is not logged")
	}
}

// FuzzCreateKeys sends arbitrary bodies to POST /api/v1/keys. Keys are
// created only from a well-formed body, as many as asked for, of the type
// asked for, each with its secret shown once and no two alike.
func FuzzCreateKeys(f *testing.F) {
	fe := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := fe.checkResponse(t, "POST", "/api/v1/keys", "application/json", body)
		if rec.Code != http.StatusCreated {
			return
		}
		var req createKeysRequest
		if err := decodeJSON(body, &req); err != nil || req.Type == nil {
			t.Fatalf("created keys from %q", body)
		}
		var created struct {
			Total int       `json:"total"`
			Items []keyView `json:"items"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil {
			t.Fatalf("answer %q: %v", rec.Body, err)
		}
		want := 1
		if req.Count != nil {
			want = *req.Count
		}
		if created.Total != want || len(created.Items) != want {
			t.Fatalf("%q created %d keys", body, created.Total)
		}
		secrets := map[string]bool{}
		for _, k := range created.Items {
			if !k.Shown || secrets[k.Secret] || strings.HasPrefix(k.Secret, maskPrefix) || k.State != core.KeyActive ||
				k.Description != req.Description || (req.Secret != nil && k.Secret != *req.Secret) {
				t.Fatalf("%q created %+v", body, k)
			}
			secrets[k.Secret] = true
			// Leave the keys as they were for the next input.
			fe.store.mustApply(t, &core.DeleteKey{ID: k.ID})
		}
		// Each creation adds an audit record, which every later snapshot
		// copies; start afresh before that slows the search down.
		var records int
		fe.store.Read(context.Background(), func(st *core.State) error {
			records = st.AuditCount()
			return nil
		})
		if records > 200 {
			*fe = *newFuzzEnv(t)
		}
	})
}
