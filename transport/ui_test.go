package transport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// TestModelErrorPlace: a model that does not parse is refused with the
// line and column of the mistake.
func TestModelErrorPlace(t *testing.T) {
	e := newTestEnv(t)
	bad := "model \"sites\" {\n  partitions {\n    partition \"pune\" { \"cad\" 1.0 4 ]\n  }\n}\n"
	r := e.do("PUT", "/api/v1/model", "text/plain", bad, true)
	wantError(t, r, http.StatusBadRequest, "invalid_model")
	var eb errorBody
	r.json(t, &eb)
	if eb.Line != 3 || eb.Column != 36 || !strings.Contains(eb.Error, "line 3, column 36") {
		t.Errorf("error %+v, want line 3 column 36 (the ])", eb)
	}
	// Other errors have no place.
	r = e.do("PUT", "/api/v1/model", "text/plain", strings.Replace(sitesModel, `"cad" 1.0 4`, `"cad" 1.0 400`, 1), true)
	wantError(t, r, http.StatusConflict, "over_allocated")
	if bytes.Contains(r.body, []byte(`"line"`)) || bytes.Contains(r.body, []byte(`"column"`)) {
		t.Errorf("an error without a place has one: %s", r.body)
	}
}

// uiStandIn answers every request with its path, as the UI would serve a
// file, and sets the UI's own policy.
type uiStandIn struct{}

func (uiStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "ui-policy")
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprint(w, "ui:"+r.Method+" "+r.URL.Path)
}

// TestUIMounted: the UI answers every path the API does not own; the API's
// paths keep their JSON errors; every UI request has one metrics label.
func TestUIMounted(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.UI = uiStandIn{} })
	for _, path := range []string{"/", "/index.html", "/views/features.js", "/ws/other"} {
		r := e.do("GET", path, "", "", false)
		if r.status != http.StatusOK || string(r.body) != "ui:GET "+path || r.header.Get("Content-Security-Policy") != "ui-policy" {
			t.Errorf("GET %s: %d %q %q", path, r.status, r.body, r.header.Get("Content-Security-Policy"))
		}
	}
	if r := e.do("HEAD", "/app.js", "", "", false); r.status != http.StatusOK {
		t.Errorf("HEAD /app.js: %d", r.status)
	}
	// The UI decides what it does with other methods.
	if r := e.do("POST", "/app.js", "text/plain", "x", false); string(r.body) != "ui:POST /app.js" {
		t.Errorf("POST /app.js: %d %q", r.status, r.body)
	}
	// Under /api/ an unknown path is the API's 404, a known one with the
	// wrong method its 405, and /metrics keeps its 405.
	wantError(t, e.do("GET", "/api/v1/nothing/here", "", "", false), http.StatusNotFound, "not_found")
	wantError(t, e.do("POST", "/api/v1/nothing", "application/json", "{}", false), http.StatusNotFound, "not_found")
	wantError(t, e.do("GET", "/api", "", "", false), http.StatusNotFound, "not_found")
	wantError(t, e.do("PATCH", "/api/v1/features", "", "", true), http.StatusMethodNotAllowed, "method_not_allowed")
	wantError(t, e.do("POST", "/metrics", "", "", false), http.StatusMethodNotAllowed, "method_not_allowed")
	if r := e.do("GET", "/api/v1/health", "", "", false); r.status != http.StatusOK {
		t.Errorf("health: %d", r.status)
	}

	var buf bytes.Buffer
	e.server.WriteMetrics(&buf)
	for _, want := range []string{
		`tally_http_requests_total{route="GET /",code="200"} 6`,
		`tally_http_requests_total{route="unmatched",code="404"} 3`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), "/views/features.js") {
		t.Error("a UI path is a metrics label")
	}

	// Without a UI, / is the API's 404.
	wantError(t, newTestEnv(t).do("GET", "/", "", "", false), http.StatusNotFound, "not_found")
}

// benchServer is a server over a store holding devices devices and
// features features, with a token.
func benchServer(b *testing.B, devices, features int) (*Server, string) {
	b.Helper()
	fs := newFakeStore(b)
	lines := make([]core.FeatureLine, features)
	for i := range lines {
		lines[i] = core.FeatureLine{ID: fmt.Sprintf("f-%d", i), Name: fmt.Sprintf("feature-%04d", i), Version: version.MustParse("1.0"), Count: 100}
	}
	fs.mustApply(b, &core.LoadRights{Source: "bench", Sequence: 1, Lines: lines})
	for i := range devices {
		fs.mustApply(b, &core.Hello{Device: core.DeviceInfo{ID: hostidSerial(b, fmt.Sprintf("SN-%06d", i)), Type: core.DevicePhysical}})
	}
	srv, err := NewServer(Config{Store: fs, Rights: fakeRights{}, Identity: testIdentity(b), Now: (&testClock{now: t0}).Now,
		Online: func(id hostid.HostID) bool { return len(id.Value)%2 == 0 }})
	if err != nil {
		b.Fatal(err)
	}
	w := &accessWorld{store: fs, server: srv}
	return srv, w.mint(b, w.key(), "admin", 0, t0.Add(365*24*time.Hour))
}

// benchPage gets one page of a list through the whole handler: routing,
// authentication, the read, paging and JSON.
func benchPage(b *testing.B, srv *Server, token, path string, wantTotal int) {
	h := srv.Handler()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.RemoteAddr = "192.0.2.1:4000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var page pagedList[json.RawMessage]
	if err := json.Unmarshal(rec.Body.Bytes(), &page); rec.Code != http.StatusOK || err != nil || page.Total != wantTotal || len(page.Items) != 50 {
		b.Fatalf("%s: %d, total %d, %d items: %s", path, rec.Code, page.Total, len(page.Items), rec.Body.Bytes()[:min(200, rec.Body.Len())])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkListDevices10k: a page of 50 out of 10,000 devices.
func BenchmarkListDevices10k(b *testing.B) {
	srv, token := benchServer(b, 10_000, 1)
	benchPage(b, srv, token, "/api/v1/devices?page=101&pageSize=50", 10_003)
}

// BenchmarkListFeatures1k: a page of 50 out of 1,000 features.
func BenchmarkListFeatures1k(b *testing.B) {
	srv, token := benchServer(b, 0, 1_000)
	benchPage(b, srv, token, "/api/v1/features?page=11&pageSize=50", 1_002)
}
