package transport

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/version"
)

func TestLogin(t *testing.T) {
	e := newTestEnv(t)
	r := e.do("POST", "/api/v1/auth/login", "application/json", `{"user":"admin","password":"`+testPassword+`"}`, false)
	if r.status != http.StatusOK {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	var tok loginResponse
	r.json(t, &tok)
	if payload, mac, ok := strings.Cut(tok.Token, "."); !ok || payload == "" || len(mac) != 43 {
		t.Errorf("token %q is not payload.HMAC-SHA256 in base64url", tok.Token)
	}
	if tok.User != "admin" || len(tok.Roles) != 1 || tok.Roles[0] != core.RoleAdmin {
		t.Errorf("login answers user %q roles %v", tok.User, tok.Roles)
	}
	if want := t0.Add(time.Hour).Format(time.RFC3339); tok.Expires != want {
		t.Errorf("expires %s, want %s (security.tokenDuration default 1h)", tok.Expires, want)
	}
	e.token = tok.Token
	if r := e.do("GET", "/api/v1/devices", "", "", true); r.status != http.StatusOK {
		t.Fatalf("with token: %d %s", r.status, r.body)
	}

	t.Run("wrong password", func(t *testing.T) {
		r := e.do("POST", "/api/v1/auth/login", "application/json", `{"user":"admin","password":"nope"}`, false)
		wantError(t, r, http.StatusUnauthorized, "bad_credentials")
		r = e.do("POST", "/api/v1/auth/login", "application/json", `{"user":"root","password":"`+testPassword+`"}`, false)
		wantError(t, r, http.StatusUnauthorized, "bad_credentials")
	})
	t.Run("no or bad token", func(t *testing.T) {
		r := e.do("GET", "/api/v1/devices", "", "", false)
		wantError(t, r, http.StatusUnauthorized, "unauthorized")
		if r.header.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
		req, _ := http.NewRequest("GET", e.url+"/api/v1/devices", nil)
		req.Header.Set("Authorization", "Bearer not-a-token")
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("bad token: %d", resp.StatusCode)
		}
	})
	t.Run("token expires", func(t *testing.T) {
		e.clock.advance(time.Hour)
		wantError(t, e.do("GET", "/api/v1/devices", "", "", true), http.StatusUnauthorized, "unauthorized")
		e.token = ""
	})
	t.Run("duration from property", func(t *testing.T) {
		r := e.do("PUT", "/api/v1/properties/security.tokenDuration", "application/json", `{"value":"90m"}`, true)
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		r = e.do("POST", "/api/v1/auth/login", "application/json", `{"user":"admin","password":"`+testPassword+`"}`, false)
		var tok loginResponse
		r.json(t, &tok)
		if want := e.clock.Now().Add(90 * time.Minute).Format(time.RFC3339); tok.Expires != want {
			t.Errorf("expires %s, want %s", tok.Expires, want)
		}
	})
}

func TestLoginRateLimit(t *testing.T) {
	e := newTestEnv(t)
	bad := `{"user":"admin","password":"guess"}`
	for range loginBurst {
		r := e.do("POST", "/api/v1/auth/login", "application/json", bad, false)
		wantError(t, r, http.StatusUnauthorized, "bad_credentials")
	}
	r := e.do("POST", "/api/v1/auth/login", "application/json", bad, false)
	wantError(t, r, http.StatusTooManyRequests, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Even the right password waits: the limit is on the address.
	good := `{"user":"admin","password":"` + testPassword + `"}`
	wantError(t, e.do("POST", "/api/v1/auth/login", "application/json", good, false), http.StatusTooManyRequests, "rate_limited")

	e.clock.advance(loginRefill)
	if r := e.do("POST", "/api/v1/auth/login", "application/json", good, false); r.status != http.StatusOK {
		t.Fatalf("after refill: %d %s", r.status, r.body)
	}
	// A good login gave its token back; one more guess is allowed, then not.
	wantError(t, e.do("POST", "/api/v1/auth/login", "application/json", bad, false), http.StatusUnauthorized, "bad_credentials")
	wantError(t, e.do("POST", "/api/v1/auth/login", "application/json", bad, false), http.StatusTooManyRequests, "rate_limited")

	var buf bytes.Buffer
	e.server.WriteMetrics(&buf)
	for _, want := range []string{"tally_http_login_failures_total 6", "tally_http_login_rate_limited_total 3"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, buf.String())
		}
	}
}

func TestLimiterKey(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7:5555":             "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:1":   "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:1":       "192.0.2.7",
		"not an address":             "not an address",
		"[fe80::1%eth0]:1":           "fe80::/64",
	} {
		if got := limiterKey(addr); got != want {
			t.Errorf("limiterKey(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestHealth(t *testing.T) {
	e := newTestEnv(t)
	r := e.do("GET", "/api/v1/health", "", "", false)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var h healthResponse
	r.json(t, &h)
	want := healthResponse{Status: "ok", Version: "1.2.3", Node: "node-a", Fingerprint: e.id.Fingerprint(), Leader: true, Time: t0.Format(time.RFC3339)}
	if h != want {
		t.Errorf("health %+v, want %+v", h, want)
	}
	for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

func TestFeatures(t *testing.T) {
	e := newTestEnv(t)
	var page pagedList[core.FeatureSummary]
	r := e.do("GET", "/api/v1/features", "", "", true)
	r.json(t, &page)
	if page.Total != 2 || page.Page != 1 || page.PageSize != 20 || len(page.Items) != 2 {
		t.Fatalf("features page %+v", page)
	}
	if f := page.Items[0]; f.Name != "cad" || f.Total != 10 || f.Used != 2 || f.Available != 8 {
		t.Errorf("cad row %+v", f)
	}
	e.do("GET", "/api/v1/features?name=viewer", "", "", true).json(t, &page)
	if page.Total != 1 || page.Items[0].Name != "viewer" {
		t.Errorf("name=viewer: %+v", page)
	}
	e.do("GET", "/api/v1/features?name=view", "", "", true).json(t, &page)
	if page.Total != 0 || page.Items == nil {
		t.Errorf("name=view is not exact: %+v", page)
	}
	e.do("GET", "/api/v1/features?page=2&pageSize=1", "", "", true).json(t, &page)
	if page.Total != 2 || page.Page != 2 || page.PageSize != 1 || len(page.Items) != 1 || page.Items[0].Name != "viewer" {
		t.Errorf("page 2 of 1: %+v", page)
	}
	e.do("GET", "/api/v1/features?page=3&pageSize=1", "", "", true).json(t, &page)
	if page.Total != 2 || len(page.Items) != 0 || page.Items == nil {
		t.Errorf("page past the end: %+v", page)
	}
	e.do("GET", "/api/v1/features?page=9223372036854775807&pageSize=1000", "", "", true).json(t, &page)
	if len(page.Items) != 0 {
		t.Errorf("huge page: %+v", page)
	}

	var d core.FeatureDetail
	r = e.do("GET", "/api/v1/features/cad/1.0", "", "", true)
	r.json(t, &d)
	if d.Name != "cad" || len(d.Lines) != 1 || len(d.Served) != 1 || d.Served[0].Device != testMAC(1) || d.Served[0].Count != 2 {
		t.Errorf("cad 1.0 details %+v", d)
	}
	// 1 and 1.0 are the same version.
	if r := e.do("GET", "/api/v1/features/cad/1", "", "", true); r.status != http.StatusOK {
		t.Errorf("cad/1: %d %s", r.status, r.body)
	}
	wantError(t, e.do("GET", "/api/v1/features/cad/2.0", "", "", true), http.StatusNotFound, "unknown_feature_version")
	wantError(t, e.do("GET", "/api/v1/features/nope/1.0", "", "", true), http.StatusNotFound, "unknown_feature")
}

func TestPageSizeProperty(t *testing.T) {
	e := newTestEnv(t)
	if r := e.do("PUT", "/api/v1/properties/server.pageSize", "application/json", `{"value":"2"}`, true); r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var page pagedList[core.DeviceSummary]
	e.do("GET", "/api/v1/devices", "", "", true).json(t, &page)
	if page.Total != 3 || page.PageSize != 2 || len(page.Items) != 2 {
		t.Errorf("devices with server.pageSize 2: %+v", page)
	}
	e.do("GET", "/api/v1/devices?page=2", "", "", true).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != testMAC(3) {
		t.Errorf("page 2: %+v", page)
	}
}

func TestDevices(t *testing.T) {
	e := newTestEnv(t)
	var page pagedList[core.DeviceSummary]
	e.do("GET", "/api/v1/devices", "", "", true).json(t, &page)
	if page.Total != 3 || page.Items[0].ID != testMAC(1) || page.Items[0].Alias != "dev1" {
		t.Fatalf("devices %+v", page)
	}
	var d core.DeviceDetail
	// Any accepted spelling of the value finds the canonical device.
	r := e.do("GET", "/api/v1/devices/ethernet/00-11-22-33-44-01", "", "", true)
	r.json(t, &d)
	if d.ID != testMAC(1) || len(d.Leases) != 1 || d.Leases[0].Count != 2 {
		t.Errorf("device details %+v", d)
	}
	wantError(t, e.do("GET", "/api/v1/devices/ETHERNET/00:11:22:33:44:99", "", "", true), http.StatusNotFound, "unknown_device")

	if r := e.do("DELETE", "/api/v1/devices/ETHERNET/00:11:22:33:44:01", "", "", true); r.status != http.StatusNoContent {
		t.Fatalf("drop: %d %s", r.status, r.body)
	}
	wantError(t, e.do("GET", "/api/v1/devices/ETHERNET/00:11:22:33:44:01", "", "", true), http.StatusNotFound, "unknown_device")
	wantError(t, e.do("DELETE", "/api/v1/devices/ETHERNET/00:11:22:33:44:01", "", "", true), http.StatusNotFound, "unknown_device")

	// server.allowDeviceDrop false refuses drops with 403.
	e.do("PUT", "/api/v1/properties/server.allowDeviceDrop", "application/json", `{"value":"false"}`, true)
	before := e.store.snapshot(t)
	wantError(t, e.do("DELETE", "/api/v1/devices/ETHERNET/00:11:22:33:44:02", "", "", true), http.StatusForbidden, "drop_not_allowed")
	if !bytes.Equal(before, e.store.snapshot(t)) {
		t.Error("a refused drop changed the state")
	}
}

func TestDeviceValueEscaped(t *testing.T) {
	e := newTestEnv(t)
	e.store.mustApply(t, &core.Hello{Device: core.DeviceInfo{ID: hostidSerial(t, "SN/42 a")}})
	path := "/api/v1/devices/SERIAL/" + url.PathEscape("SN/42 a")
	var d core.DeviceDetail
	r := e.do("GET", path, "", "", true)
	r.json(t, &d)
	if d.ID.Value != "SN/42 a" {
		t.Errorf("escaped value: %d %+v", r.status, d)
	}
}

const reservationsJSON = `[{"name":"lab","reservations":[{"hostId":{"value":"00:11:22:33:44:02","type":"ETHERNET"},"reservationEntries":[{"featureName":"cad","featureVersion":"1.0","featureCount":3}]}]}]`

func TestReservations(t *testing.T) {
	e := newTestEnv(t)
	if r := e.do("POST", "/api/v1/reservations", "application/json; charset=utf-8", reservationsJSON, true); r.status != http.StatusNoContent {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	var page pagedList[core.ReservationRow]
	e.do("GET", "/api/v1/reservations", "", "", true).json(t, &page)
	if page.Total != 1 || page.Items[0].Group != "lab" || page.Items[0].Count != 3 || !page.Items[0].Satisfiable {
		t.Fatalf("reservations %+v", page)
	}
	r := e.do("GET", "/api/v1/reservations/export", "", "", true)
	groups, err := core.ParseReservations(r.body)
	if err != nil || len(groups) != 1 || groups[0].Name != "lab" {
		t.Fatalf("export %s: %v", r.body, err)
	}
	// A model cannot join reservations.
	wantError(t, e.do("PUT", "/api/v1/model", "text/plain", sitesModel, true), http.StatusConflict, "model_exclusive")

	// A group named like the export route is still deletable.
	wantError(t, e.do("DELETE", "/api/v1/reservations/export", "", "", true), http.StatusNotFound, "unknown_group")
	if r := e.do("DELETE", "/api/v1/reservations/lab", "", "", true); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	wantError(t, e.do("DELETE", "/api/v1/reservations/lab", "", "", true), http.StatusNotFound, "unknown_group")
	r = e.do("GET", "/api/v1/reservations/export", "", "", true)
	if strings.TrimSpace(string(r.body)) != "[]" {
		t.Errorf("export after delete: %s", r.body)
	}
}

const sitesModel = `model "sites" {
  partitions {
    partition "pune" { "cad" 1.0 4 }
  }
  on hostid("00:11:22:33:44:02", ETHERNET) { use "pune" }
  on any() { accept }
}
`

func TestModelAndPools(t *testing.T) {
	e := newTestEnv(t)
	var m modelResponse
	e.do("GET", "/api/v1/model", "", "", true).json(t, &m)
	if m.Text != "" {
		t.Errorf("no model yet: %q", m.Text)
	}
	if r := e.do("PUT", "/api/v1/model", "text/plain; charset=utf-8", sitesModel, true); r.status != http.StatusNoContent {
		t.Fatalf("put model: %d %s", r.status, r.body)
	}
	e.do("GET", "/api/v1/model", "", "", true).json(t, &m)
	if m.Text == "" {
		t.Error("model text empty after upload")
	}
	var pools countedList[core.PoolSummary]
	e.do("GET", "/api/v1/pools", "", "", true).json(t, &pools)
	if pools.Total != 2 || pools.Items[1].Name != "pune" || len(pools.Items[1].Features) != 1 || pools.Items[1].Features[0].Allocated != 4 {
		t.Errorf("pools %+v", pools)
	}
	// Reservations cannot join a model.
	wantError(t, e.do("POST", "/api/v1/reservations", "application/json", reservationsJSON, true), http.StatusConflict, "model_exclusive")
	// A model that asks for more than the rights hold.
	over := strings.Replace(sitesModel, `"cad" 1.0 4`, `"cad" 1.0 400`, 1)
	wantError(t, e.do("PUT", "/api/v1/model", "text/plain", over, true), http.StatusConflict, "over_allocated")

	if r := e.do("DELETE", "/api/v1/model", "", "", true); r.status != http.StatusNoContent {
		t.Fatalf("delete model: %d %s", r.status, r.body)
	}
	e.do("GET", "/api/v1/pools", "", "", true).json(t, &pools)
	if pools.Total != 1 || pools.Items[0].Name != "default" {
		t.Errorf("pools after delete %+v", pools)
	}
}

func TestProperties(t *testing.T) {
	e := newTestEnv(t)
	var props countedList[testProperty]
	e.do("GET", "/api/v1/properties", "", "", true).json(t, &props)
	if props.Total < 10 || props.Total != len(props.Items) {
		t.Fatalf("properties %+v", props)
	}
	var p testProperty
	e.do("GET", "/api/v1/properties/licensing.borrowInterval", "", "", true).json(t, &p)
	if p.Value != "168h" {
		t.Errorf("borrowInterval %+v", p)
	}
	r := e.do("PUT", "/api/v1/properties/licensing.borrowInterval", "application/json", `{"value":"90m"}`, true)
	r.json(t, &p)
	if r.status != http.StatusOK || p.Value != "1h30m0s" || p.Name != "licensing.borrowInterval" {
		t.Errorf("set: %d %+v", r.status, p)
	}
	wantError(t, e.do("GET", "/api/v1/properties/no.such", "", "", true), http.StatusNotFound, "unknown_property")
	wantError(t, e.do("PUT", "/api/v1/properties/no.such", "application/json", `{"value":"1"}`, true), http.StatusNotFound, "unknown_property")
	wantError(t, e.do("PUT", "/api/v1/properties/server.pageSize", "application/json", `{"value":"0"}`, true), http.StatusBadRequest, "invalid_property")

	// A producer-locked property refuses changes.
	e.store.mustApply(t, &core.LoadRights{Source: "locks", Sequence: 1, Locks: map[string]string{"licensing.renewInterval": "50"}})
	before := e.store.snapshot(t)
	wantError(t, e.do("PUT", "/api/v1/properties/licensing.renewInterval", "application/json", `{"value":"20"}`, true), http.StatusConflict, "property_locked")
	if !bytes.Equal(before, e.store.snapshot(t)) {
		t.Error("a refused property change changed the state")
	}
}

// testProperty is the part of core.Property the tests read back
// (core.PropertyKind does not decode).
type testProperty struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Locked bool   `json:"locked"`
}

func TestRights(t *testing.T) {
	e := newTestEnv(t)
	line := core.FeatureLine{ID: "sim-1", Name: "sim", Version: version.MustParse("3.0"), Count: 7}
	body := fakeRightsJSON(t, "file-a", 1, line)
	r := e.do("POST", "/api/v1/rights", "application/json", body, true)
	var rr rightsResponse
	r.json(t, &rr)
	if r.status != http.StatusOK || rr != (rightsResponse{Source: "file-a", Sequence: 1, Lines: 1}) {
		t.Fatalf("upload: %d %+v", r.status, rr)
	}
	var page pagedList[core.FeatureSummary]
	e.do("GET", "/api/v1/features?name=sim", "", "", true).json(t, &page)
	if page.Total != 1 || page.Items[0].Total != 7 {
		t.Errorf("sim after upload: %+v", page)
	}
	if r := e.do("POST", "/api/v1/rights", "application/octet-stream", fakeRightsJSON(t, "file-a", 2, line), true); r.status != http.StatusOK {
		t.Errorf("octet-stream upload: %d %s", r.status, r.body)
	}
	before := e.store.snapshot(t)
	wantError(t, e.do("POST", "/api/v1/rights", "application/json", body, true), http.StatusConflict, "stale_rights")
	wantError(t, e.do("POST", "/api/v1/rights", "application/json", `{"format":"other"}`, true), http.StatusBadRequest, "bad_rights")
	wantError(t, e.do("POST", "/api/v1/rights", "application/json", fakeRightsJSON(t, "wrong-line", 1), true), http.StatusBadRequest, "invalid_feature")
	if !bytes.Equal(before, e.store.snapshot(t)) {
		t.Error("refused rights changed the state")
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := newTestEnv(t)
	r := e.do("GET", "/api/v1/openapi.json", "", "", false)
	if r.status != http.StatusOK || !bytes.Equal(r.body, openAPIDocument) {
		t.Errorf("openapi.json: %d, %d bytes", r.status, len(r.body))
	}
}

func TestMetricsRoute(t *testing.T) {
	e := newTestEnv(t)
	e.do("GET", "/api/v1/health", "", "", false)
	e.do("GET", "/api/v1/nothing/here", "", "", false)
	r := e.do("GET", "/metrics", "", "", false)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", r.status, r.header.Get("Content-Type"))
	}
	text := string(r.body)
	for _, want := range []string{
		`tally_http_requests_total{route="GET /api/v1/health",code="200"} 1`,
		`tally_http_requests_total{route="unmatched",code="404"} 1`,
		`tally_http_request_duration_seconds_count{route="GET /api/v1/health"} 1`,
		`tally_http_request_duration_seconds_bucket{route="GET /api/v1/health",le="+Inf"} 1`,
		"# TYPE tally_http_requests_total counter",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The server's own metrics come first, then Config.Metrics.
	if i, j := strings.Index(text, "tally_http_tokens"), strings.Index(text, "tally_test_extra 1"); i < 0 || j < i {
		t.Errorf("order of metrics: own at %d, extra at %d", i, j)
	}
	checkExposition(t, text)
}

// checkExposition checks the lines of Prometheus text: comments are HELP
// or TYPE, samples are name{labels} value.
func checkExposition(t *testing.T, text string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			if !strings.HasPrefix(line, "# HELP ") && !strings.HasPrefix(line, "# TYPE ") {
				t.Errorf("bad comment %q", line)
			}
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 || strings.ContainsAny(line[i+1:], "{}\" ") {
			t.Errorf("bad sample %q", line)
		}
	}
}

func TestDevicesMounted(t *testing.T) {
	dev := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "no hijack", http.StatusInternalServerError)
			return
		}
		conn, brw, err := hj.Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 204 No Content\r\nX-Device: yes\r\n\r\n")
		brw.Flush()
	})
	e := newTestEnv(t, func(c *Config) { c.Devices = dev })
	// Hijacking needs HTTP/1.1.
	e.client.Transport.(*http.Transport).ForceAttemptHTTP2 = false
	e.client.Transport.(*http.Transport).TLSClientConfig.NextProtos = []string{"http/1.1"}
	r := e.do("GET", "/ws/device", "", "", false)
	if r.status != http.StatusNoContent || r.header.Get("X-Device") != "yes" {
		t.Errorf("device handler: %d %v", r.status, r.header)
	}
	// The request is counted when the handler returns, which may be just
	// after the client read the answer.
	var buf bytes.Buffer
	const counted = `tally_http_requests_total{route="GET /ws/device",code="101"} 1`
	for i := 0; i < 10000; i++ {
		buf.Reset()
		e.server.WriteMetrics(&buf)
		if strings.Contains(buf.String(), counted) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !strings.Contains(buf.String(), counted) || strings.Contains(buf.String(), `duration_seconds_count{route="GET /ws/device"}`) {
		t.Errorf("hijacked request metrics:\n%s", buf.String())
	}

	without := newTestEnv(t)
	wantError(t, without.do("GET", "/ws/device", "", "", false), http.StatusNotFound, "not_found")
}

func TestSecurityDisabledLoopback(t *testing.T) {
	e := newTestEnv(t)
	wantError(t, e.do("GET", "/api/v1/model", "", "", false), http.StatusUnauthorized, "unauthorized")
	e.do("PUT", "/api/v1/properties/security.enabled", "application/json", `{"value":"false"}`, true)
	if r := e.do("GET", "/api/v1/model", "", "", false); r.status != http.StatusOK {
		t.Errorf("anonymous on loopback with security off: %d %s", r.status, r.body)
	}
	// A token that is presented must still be good.
	e.token = "bogus"
	wantError(t, e.do("GET", "/api/v1/model", "", "", true), http.StatusUnauthorized, "unauthorized")
	if isLoopback("192.0.2.1:80") || !isLoopback("[::1]:80") || !isLoopback("127.0.0.9:1") {
		t.Error("isLoopback")
	}
}

func TestNotApplied(t *testing.T) {
	e := newTestEnv(t)
	e.token = e.login(testPassword)
	e.store.setNotApplied(true)
	for _, c := range []struct{ method, path, ct, body string }{
		{"GET", "/api/v1/features", "", ""},
		{"GET", "/api/v1/features/cad/1.0", "", ""},
		{"GET", "/api/v1/devices", "", ""},
		{"GET", "/api/v1/devices/ETHERNET/00:11:22:33:44:01", "", ""},
		{"DELETE", "/api/v1/devices/ETHERNET/00:11:22:33:44:01", "", ""},
		{"GET", "/api/v1/reservations", "", ""},
		{"GET", "/api/v1/reservations/export", "", ""},
		{"POST", "/api/v1/reservations", "application/json", reservationsJSON},
		{"DELETE", "/api/v1/reservations/lab", "", ""},
		{"GET", "/api/v1/model", "", ""},
		{"PUT", "/api/v1/model", "text/plain", sitesModel},
		{"DELETE", "/api/v1/model", "", ""},
		{"GET", "/api/v1/pools", "", ""},
		{"GET", "/api/v1/properties", "", ""},
		{"GET", "/api/v1/properties/server.pageSize", "", ""},
		{"PUT", "/api/v1/properties/server.pageSize", "application/json", `{"value":"5"}`},
		{"POST", "/api/v1/rights", "application/json", fakeRightsJSON(t, "x", 1, core.FeatureLine{Name: "a", Version: version.MustParse("1"), Count: 1})},
		{"POST", "/api/v1/auth/login", "application/json", `{"user":"admin","password":"` + testPassword + `"}`},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			wantError(t, e.do(c.method, c.path, c.ct, c.body, !strings.HasSuffix(c.path, "login")), http.StatusServiceUnavailable, "not_applied")
		})
	}
	if r := e.do("GET", "/api/v1/health", "", "", false); r.status != http.StatusOK {
		t.Errorf("health without a store: %d", r.status)
	}
	if !strings.Contains(e.logs.String(), "request not applied") {
		t.Error("503s are not logged")
	}
}
