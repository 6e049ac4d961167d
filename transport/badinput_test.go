package transport

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// TestBadInput sends every route input it must refuse and checks the
// documented 4xx JSON error and that the state did not change.
func TestBadInput(t *testing.T) {
	e := newTestEnv(t)
	e.token = e.login(testPassword)
	const json = "application/json"
	huge := func(n int) string { return `{"value":"` + strings.Repeat("x", n) + `"}` }
	cases := []struct {
		name, method, path, ct, body string
		status                       int
		code                         string
	}{
		// login
		{"login malformed", "POST", "/api/v1/auth/login", json, `{"user":`, 400, "bad_json"},
		{"login empty", "POST", "/api/v1/auth/login", json, ``, 400, "bad_json"},
		{"login unknown field", "POST", "/api/v1/auth/login", json, `{"user":"admin","password":"x","role":"ADMIN"}`, 400, "bad_json"},
		{"login wrong type", "POST", "/api/v1/auth/login", json, `{"user":"admin","password":42}`, 400, "bad_json"},
		{"login missing password", "POST", "/api/v1/auth/login", json, `{"user":"admin"}`, 400, "bad_json"},
		{"login two values", "POST", "/api/v1/auth/login", json, `{"user":"a","password":"b"} {}`, 400, "bad_json"},
		{"login array", "POST", "/api/v1/auth/login", json, `[]`, 400, "bad_json"},
		{"login oversized", "POST", "/api/v1/auth/login", json, `{"user":"admin","password":"` + strings.Repeat("p", maxLoginBody) + `"}`, 413, "too_large"},
		{"login no content type", "POST", "/api/v1/auth/login", "", `{"user":"admin","password":"x"}`, 415, "unsupported_media_type"},
		{"login text", "POST", "/api/v1/auth/login", "text/plain", `{"user":"admin","password":"x"}`, 415, "unsupported_media_type"},
		{"login latin1", "POST", "/api/v1/auth/login", "application/json; charset=latin1", `{"user":"admin","password":"x"}`, 415, "unsupported_media_type"},
		{"login bad media type", "POST", "/api/v1/auth/login", "application/", `{}`, 415, "unsupported_media_type"},
		{"login GET", "GET", "/api/v1/auth/login", "", ``, 405, "method_not_allowed"},

		// paging
		{"page 0", "GET", "/api/v1/features?page=0", "", "", 400, "bad_paging"},
		{"page -1", "GET", "/api/v1/devices?page=-1", "", "", 400, "bad_paging"},
		{"page text", "GET", "/api/v1/reservations?page=two", "", "", 400, "bad_paging"},
		{"page empty", "GET", "/api/v1/features?page=", "", "", 400, "bad_paging"},
		{"page overflow", "GET", "/api/v1/features?page=99999999999999999999999", "", "", 400, "bad_paging"},
		{"pageSize 0", "GET", "/api/v1/devices?pageSize=0", "", "", 400, "bad_paging"},
		{"pageSize 1001", "GET", "/api/v1/reservations?pageSize=1001", "", "", 400, "bad_paging"},
		{"pageSize float", "GET", "/api/v1/features?pageSize=1.5", "", "", 400, "bad_paging"},

		// features
		{"bad version", "GET", "/api/v1/features/cad/1..0", "", "", 400, "bad_version"},
		{"version letters", "GET", "/api/v1/features/cad/v1", "", "", 400, "bad_version"},
		{"feature missing version", "GET", "/api/v1/features/cad", "", "", 404, "not_found"},
		{"features POST", "POST", "/api/v1/features", json, `{}`, 405, "method_not_allowed"},

		// devices
		{"bad hostid type", "GET", "/api/v1/devices/MAC/00:11:22:33:44:01", "", "", 400, "bad_hostid"},
		{"bad ethernet", "GET", "/api/v1/devices/ETHERNET/00:11:22", "", "", 400, "bad_hostid"},
		{"bad uuid", "DELETE", "/api/v1/devices/UUID/not-a-uuid", "", "", 400, "bad_hostid"},
		{"bad serial", "DELETE", "/api/v1/devices/SERIAL/%01", "", "", 400, "bad_hostid"},
		{"device PUT", "PUT", "/api/v1/devices/ETHERNET/00:11:22:33:44:01", json, `{}`, 405, "method_not_allowed"},

		// reservations
		{"reservations malformed", "POST", "/api/v1/reservations", json, `[{"name":`, 400, "invalid_reservation"},
		{"reservations unknown field", "POST", "/api/v1/reservations", json, `[{"name":"g","owner":"x","reservations":[]}]`, 400, "invalid_reservation"},
		{"reservations wrong type", "POST", "/api/v1/reservations", json, `[{"name":7}]`, 400, "invalid_reservation"},
		{"reservations bad hostid", "POST", "/api/v1/reservations", json, strings.Replace(reservationsJSON, "00:11:22:33:44:02", "zz", 1), 400, "invalid_reservation"},
		{"reservations bad version", "POST", "/api/v1/reservations", json, strings.Replace(reservationsJSON, `"1.0"`, `"1.x"`, 1), 400, "invalid_reservation"},
		{"reservations zero count", "POST", "/api/v1/reservations", json, strings.Replace(reservationsJSON, `"featureCount":3`, `"featureCount":0`, 1), 400, "invalid_count"},
		{"reservations unknown feature", "POST", "/api/v1/reservations", json, strings.Replace(reservationsJSON, `"cad"`, `"nope"`, 1), 404, "unknown_feature"},
		{"reservations empty", "POST", "/api/v1/reservations", json, `[]`, 400, "invalid_reservation"},
		{"reservations null", "POST", "/api/v1/reservations", json, `null`, 400, "invalid_reservation"},
		{"reservations trailing", "POST", "/api/v1/reservations", json, reservationsJSON + `[]`, 400, "invalid_reservation"},
		{"reservations oversized", "POST", "/api/v1/reservations", json, "[" + strings.Repeat(" ", maxReservationsBody) + "]", 413, "too_large"},
		{"reservations text", "POST", "/api/v1/reservations", "text/plain", reservationsJSON, 415, "unsupported_media_type"},
		{"reservations PUT", "PUT", "/api/v1/reservations", json, reservationsJSON, 405, "method_not_allowed"},
		{"reservations export POST", "POST", "/api/v1/reservations/export", json, `[]`, 405, "method_not_allowed"},
		{"reservations group GET", "GET", "/api/v1/reservations/lab", "", "", 405, "method_not_allowed"},

		// model
		{"model syntax", "PUT", "/api/v1/model", "text/plain", `model "x" {`, 400, "invalid_model"},
		{"model not utf8", "PUT", "/api/v1/model", "text/plain", "model \"\xff\" {}", 400, "invalid_model"},
		{"model json", "PUT", "/api/v1/model", json, `{"text":"x"}`, 415, "unsupported_media_type"},
		{"model oversized", "PUT", "/api/v1/model", "text/plain", strings.Repeat("#", maxModelBody+1), 413, "too_large"},
		{"model POST", "POST", "/api/v1/model", "text/plain", sitesModel, 405, "method_not_allowed"},

		// pools, properties
		{"pools DELETE", "DELETE", "/api/v1/pools", "", "", 405, "method_not_allowed"},
		{"property malformed", "PUT", "/api/v1/properties/server.pageSize", json, `{"value":`, 400, "bad_json"},
		{"property unknown field", "PUT", "/api/v1/properties/server.pageSize", json, `{"value":"5","locked":false}`, 400, "bad_json"},
		{"property wrong type", "PUT", "/api/v1/properties/server.pageSize", json, `{"value":5}`, 400, "bad_json"},
		{"property missing value", "PUT", "/api/v1/properties/server.pageSize", json, `{}`, 400, "bad_json"},
		{"property null value", "PUT", "/api/v1/properties/server.pageSize", json, `{"value":null}`, 400, "bad_json"},
		{"property bad value", "PUT", "/api/v1/properties/server.pageSize", json, `{"value":"lots"}`, 400, "invalid_property"},
		{"property bad duration", "PUT", "/api/v1/properties/security.tokenDuration", json, `{"value":"1s"}`, 400, "invalid_property"},
		{"property oversized", "PUT", "/api/v1/properties/server.pageSize", json, huge(maxPropertyBody), 413, "too_large"},
		{"property form", "PUT", "/api/v1/properties/server.pageSize", "application/x-www-form-urlencoded", `value=5`, 415, "unsupported_media_type"},
		{"property unknown", "PUT", "/api/v1/properties/no.such", json, `{"value":"5"}`, 404, "unknown_property"},
		{"properties POST", "POST", "/api/v1/properties", json, `{}`, 405, "method_not_allowed"},

		// rights
		{"rights malformed", "POST", "/api/v1/rights", json, `{"format":`, 400, "bad_rights"},
		{"rights empty", "POST", "/api/v1/rights", json, ``, 400, "bad_rights"},
		{"rights unknown field", "POST", "/api/v1/rights", json, `{"format":"fake-rights/1","extra":1}`, 400, "bad_rights"},
		{"rights sequence 0", "POST", "/api/v1/rights", json, `{"format":"fake-rights/1","source":"s","sequence":0}`, 400, "invalid_feature"},
		{"rights oversized", "POST", "/api/v1/rights", json, strings.Repeat(" ", maxRightsBody+1), 413, "too_large"},
		{"rights text", "POST", "/api/v1/rights", "text/plain", `{}`, 415, "unsupported_media_type"},
		{"rights GET", "GET", "/api/v1/rights", "", "", 405, "method_not_allowed"},

		// elsewhere
		{"unknown path", "GET", "/api/v1/nothing", "", "", 404, "not_found"},
		{"health POST", "POST", "/api/v1/health", json, `{}`, 405, "method_not_allowed"},
		{"metrics POST", "POST", "/metrics", json, `{}`, 405, "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.store.snapshot(t)
			r := e.do(c.method, c.path, c.ct, c.body, true)
			wantError(t, r, c.status, c.code)
			if c.status == http.StatusMethodNotAllowed && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if !bytes.Equal(before, e.store.snapshot(t)) {
				t.Error("the state changed")
			}
		})
	}
}

// TestErrorFor checks the mapping of errors that do not reach it through
// the routes.
func TestErrorFor(t *testing.T) {
	if ae := errorFor(errPlain("disk on fire")); ae.status != 500 || ae.code != "internal" || strings.Contains(ae.msg, "fire") {
		t.Errorf("unknown error: %+v", ae)
	}
	if got := oneLine("line 1: bad\n  line 2: worse\r\n"); got != "line 1: bad; line 2: worse" {
		t.Errorf("oneLine: %q", got)
	}
}

type errPlain string

func (e errPlain) Error() string { return string(e) }
