package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/core"
)

// serverArgs are the global flags that reach the fake server, trusting its
// certificate through --ca or skipping the check with --insecure.
func serverArgs(f *fakeServer, insecure bool, pwFile string) []string {
	if insecure {
		return []string{"--server", f.URL, "--insecure", "--password-file", pwFile}
	}
	return []string{"--server", f.URL, "--ca", f.caFile, "--password-file", pwFile}
}

func TestServerCommands(t *testing.T) {
	f := newFakeServer(t)
	pw := writeFile(t, "pw", fakePassword)
	reservations := writeFile(t, "res.json", `[{"name":"g","reservations":[{"hostId":{"value":"00-11-22-33-44-55","type":"ETHERNET"},"reservationEntries":[{"featureName":"cad","featureVersion":"1.0","featureCount":3}]}]}]`)
	model := writeFile(t, "m.model", `model "sites" { on any() { accept } }`)
	rightsFile := writeFile(t, "acme.rights", `{"format":"tally-rights/1"}`)
	exportFile := filepath.Join(t.TempDir(), "export.json")

	cases := []struct {
		name    string
		args    []string
		request string   // the last request the server saw, when it matters
		want    []string // in stdout
	}{
		{"health", []string{"health"}, "", []string{"Status:", "ok", fakeFingerprint, "Leader:", "true"}},
		{"features", []string{"features"}, "GET /api/v1/features", []string{
			"FEATURE  VERSION  TOTAL", "FIRST-EXPIRY", "COUNTED",
			"cad      1.0      10", "permanent", "2026-03-01", "reader   2.0      uncounted", "3 of 3 features (page 1)"}},
		{"features by name, paged", []string{"features", "--name", "cad", "--page", "1", "--page-size", "2"},
			"GET /api/v1/features?name=cad&page=1&pageSize=2", []string{"cad", "1 of 1 features"}},
		{"features page 2", []string{"features", "--page", "2", "--page-size", "2"}, "GET /api/v1/features?page=2&pageSize=2",
			[]string{"reader", "1 of 3 features (page 2)"}},
		{"features show", []string{"features", "show", "cad", "1.0"}, "GET /api/v1/features/cad/1.0", []string{
			"Feature:", "cad", "Reserved:", "edition=pro", "Served devices:", "00:11:22:aa:bb:cc", "ETHERNET", "PHYSICAL", "press-line-1", "2026-03-01T00:00:00Z", "demo-cad"}},
		{"devices", []string{"devices"}, "GET /api/v1/devices", []string{"DEVICE ID", "00:11:22:aa:bb:cc", "a/b c", "VIRTUAL", "2 of 2 devices"}},
		{"devices show, canonical and escaped", []string{"devices", "show", "ethernet", "00-11-22-AA-BB-CC"}, "GET /api/v1/devices/ETHERNET/00:11:22:aa:bb:cc",
			[]string{"Device ID:", "press1", "site=pune", "Leases:", "cad"}},
		{"devices show, a value with a slash", []string{"devices", "show", "STRING", "a/b c"}, "GET /api/v1/devices/STRING/a%2Fb%20c", []string{"a/b c", "VIRTUAL"}},
		{"devices drop", []string{"devices", "drop", "ETHERNET", "00:11:22:aa:bb:cc"}, "DELETE /api/v1/devices/ETHERNET/00:11:22:aa:bb:cc",
			[]string{"dropped device 00:11:22:aa:bb:cc (ETHERNET)"}},
		{"reservations list", []string{"reservations", "list"}, "GET /api/v1/reservations", []string{"STATUS", "satisfiable", "unsatisfiable", "pune", "2 of 2 reservation entries"}},
		{"reservations import", []string{"reservations", "import", reservations}, "POST /api/v1/reservations", []string{"imported 1 reservation groups"}},
		{"reservations export to a file", []string{"reservations", "export", exportFile}, "GET /api/v1/reservations/export", []string{"exported 1 reservation groups to " + exportFile}},
		{"reservations export to stdout", []string{"reservations", "export"}, "GET /api/v1/reservations/export", []string{`"name": "pune"`, `"featureCount": 2`}},
		{"reservations delete", []string{"reservations", "delete", "pune", "kassel 2"}, "DELETE /api/v1/reservations/kassel%202", []string{`deleted reservation group "pune"`, `"kassel 2"`}},
		{"model upload", []string{"model", "upload", model}, "PUT /api/v1/model", []string{"installed the license model"}},
		{"model get", []string{"model", "get"}, "GET /api/v1/model", []string{`model "sites"`}},
		{"pools", []string{"pools"}, "GET /api/v1/pools", []string{"ID  POOL", "default", "short", "empty    -"}},
		{"properties", []string{"properties", "get"}, "GET /api/v1/properties", []string{"NAME", "server.pageSize", "50", "int", "server.allowDeviceDrop", "yes"}},
		{"property", []string{"properties", "get", "server.pageSize"}, "GET /api/v1/properties/server.pageSize", []string{"Description:", "rows per page", "Range:", "1..1000"}},
		{"properties set", []string{"properties", "set", "server.pageSize", "100"}, "PUT /api/v1/properties/server.pageSize", []string{"server.pageSize = 100"}},
		{"rights load", []string{"rights", "load", rightsFile}, "POST /api/v1/rights", []string{`loaded 5 lines from "acme" at sequence 3`}},
		{"model delete", []string{"model", "delete"}, "DELETE /api/v1/model", []string{"deleted the license model"}},
	}
	for _, insecure := range []bool{false, true} {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := tallyctl(nil, append(serverArgs(f, insecure, pw), c.args...)...)
				if r.code != 0 || r.stderr != "" {
					t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
				}
				for _, w := range c.want {
					if !strings.Contains(r.stdout, w) {
						t.Errorf("stdout does not show %q:\n%s", w, r.stdout)
					}
				}
				if c.request != "" && f.lastRequest() != c.request {
					t.Errorf("last request %q, want %q", f.lastRequest(), c.request)
				}
			})
		}
	}

	if got := f.body("PUT /api/v1/properties/server.pageSize"); got != `{"value":"100"}` {
		t.Errorf("properties set sent %s", got)
	}
	if got, _ := os.ReadFile(rightsFile); f.body("POST /api/v1/rights") != string(got) {
		t.Errorf("rights load sent %q", f.body("POST /api/v1/rights"))
	}
	if got, _ := os.ReadFile(model); f.body("PUT /api/v1/model") != string(got) {
		t.Errorf("model upload sent %q", f.body("PUT /api/v1/model"))
	}
	data, _ := os.ReadFile(exportFile)
	if groups, err := core.ParseReservations(data); err != nil || len(groups) != 1 || groups[0].Name != "pune" {
		t.Errorf("export file: %v %+v", err, groups)
	}
	// The model is gone now: get says so on stderr and prints nothing.
	r := tallyctl(nil, append(serverArgs(f, false, pw), "model", "get")...)
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "no license model") {
		t.Errorf("model get without a model: %+v", r)
	}
}

func TestJSONOutput(t *testing.T) {
	f := newFakeServer(t)
	pw := writeFile(t, "pw", fakePassword)
	for _, args := range [][]string{
		{"--json", "health"},
		{"--json", "features"},
		{"features", "--json"},
		{"features", "show", "--json", "cad", "1.0"},
		{"--json", "devices"},
		{"--json", "devices", "show", "ETHERNET", "00:11:22:aa:bb:cc"},
		{"--json", "reservations", "list"},
		{"--json", "model", "get"},
		{"--json", "pools"},
		{"--json", "properties", "get"},
		{"--json", "properties", "get", "server.pageSize"},
		{"--json", "properties", "set", "server.pageSize", "7"},
		{"--json", "rights", "load", writeFile(t, "r", "{}")},
	} {
		r := tallyctl(nil, append(serverArgs(f, false, pw), args...)...)
		var v any
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil {
			t.Errorf("%v: exit %d, stdout is not JSON:\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	var page struct {
		Total int
		Items []core.FeatureSummary
	}
	r := tallyctl(nil, append(serverArgs(f, false, pw), "--json", "features")...)
	if json.Unmarshal([]byte(r.stdout), &page); page.Total != 3 || len(page.Items) != 3 || page.Items[1].LastExpiry.IsZero() {
		t.Errorf("features --json: %+v", page)
	}
	// Changes without an answer print nothing with --json.
	if r := tallyctl(nil, append(serverArgs(f, false, pw), "--json", "devices", "drop", "ETHERNET", "00:11:22:aa:bb:cc")...); r.code != 0 || r.stdout != "" {
		t.Errorf("devices drop --json: %+v", r)
	}
}

func TestServerErrorsAreOneLine(t *testing.T) {
	f := newFakeServer(t)
	pw := writeFile(t, "pw", fakePassword)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"rights", "load", writeFile(t, "stale.rights", `{"stale":true}`)},
			`rights are not newer than those loaded: "acme" is at sequence 3, this is 2 (HTTP 409, stale_rights)`},
		{[]string{"rights", "load", writeFile(t, "proxy.rights", `proxy`)}, "server answered <html> <body>Bad gateway</body> </html> (HTTP 502)"},
		{[]string{"rights", "load", filepath.Join(t.TempDir(), "missing.rights")}, "no such file"},
		{[]string{"features", "show", "cad", "9.0"}, "unknown feature cad 9.0 (HTTP 404, unknown_feature)"},
		{[]string{"devices", "drop", "SERIAL", "locked"}, "dropping devices is not allowed (server.allowDeviceDrop is false) (HTTP 403, drop_not_allowed)"},
		{[]string{"devices", "show", "SERIAL", "nobody"}, "unknown device (HTTP 404, unknown_device)"},
		{[]string{"reservations", "delete", "pune", "nope"}, `delete group "nope": unknown reservation group "nope" (HTTP 404, unknown_group)`},
		{[]string{"reservations", "import", writeFile(t, "bad.json", `[{"name":"g","reservations":[{"hostId":{"value":"x","type":"ETHERNET"}}]}]`)}, "bad.json"},
		{[]string{"properties", "set", "server.allowDeviceDrop", "false"}, "property is locked by the producer: server.allowDeviceDrop is fixed at \"true\" (HTTP 409, property_locked)"},
		{[]string{"properties", "get", "nope"}, "unknown property nope (HTTP 404, unknown_property)"},
		{[]string{"model", "upload", filepath.Join(t.TempDir(), "missing.model")}, "no such file"},
	}
	for _, c := range cases {
		tallyctl(nil, append(serverArgs(f, false, pw), c.args...)...).mustFail(t, 1, c.want)
	}
}
