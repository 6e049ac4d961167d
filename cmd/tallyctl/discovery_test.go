package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/hostid"
)

var fakeDiscovered = []discoveredDevice{
	{Address: "10.1.2.7:30005", HostIDs: []hostid.HostID{{Value: "00:11:22:33:44:55", Type: hostid.Ethernet}, {Value: "press-1", Type: hostid.String}},
		Alias: "press line 1", Onboarded: true, Here: true, Fingerprint: fakeFingerprint, LastSeen: "2026-03-01T12:00:00Z", Online: true},
	{Address: "10.1.2.9:30005", HostIDs: []hostid.HostID{{Value: "00:11:22:33:44:66", Type: hostid.Ethernet}}, LastSeen: "2026-03-01T11:00:00Z"},
}

// addDiscoveryRoutes serves the discovery routes: a scan is done at the
// second poll; a scan whose targets include "10.9.9.9" is refused as
// already running.
func (f *fakeServer) addDiscoveryRoutes(authed func(string, func(http.ResponseWriter, *http.Request))) {
	progress := func(done bool) map[string]any {
		return map[string]any{"targets": 254, "sent": 254, "failed": 0, "answered": 2, "started": "2026-03-01T12:00:00Z",
			"elapsed": 1.5, "timeout": 6, "done": done}
	}
	authed("POST /api/v1/discovery/scan", func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(f.body("POST /api/v1/discovery/scan"), "10.9.9.9") {
			writeError(w, 409, "a scan is already running", "scan_running")
			return
		}
		f.mu.Lock()
		f.scanPolls = 0
		f.mu.Unlock()
		writeJSON(w, 202, map[string]any{"progress": progress(false)})
	})
	authed("GET /api/v1/discovery/scan", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.scanPolls++
		done := f.scanPolls >= 2
		f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"progress": progress(done), "found": 2})
	})
	authed("GET /api/v1/discovery/devices", func(w http.ResponseWriter, r *http.Request) { writePage(w, r, fakeDiscovered) })
	authed("POST /api/v1/discovery/ping", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"total": 2, "online": 1, "items": fakeDiscovered})
	})
	authed("POST /api/v1/discovery/wake", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Device hostid.HostID }
		if err := json.Unmarshal([]byte(f.body("POST /api/v1/discovery/wake")), &in); err != nil || in.Device.Type != hostid.Ethernet {
			writeError(w, 400, "not wakeable", "not_wakeable")
			return
		}
		writeJSON(w, 202, map[string]any{"device": in.Device, "targets": []string{"255.255.255.255:9", "10.1.2.255:9"}, "failed": 0})
	})
	authed("POST /api/v1/discovery/onboard", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Device hostid.HostID }
		if err := json.Unmarshal([]byte(f.body("POST /api/v1/discovery/onboard")), &in); err != nil || in.Device.Value != "00:11:22:33:44:55" {
			writeError(w, 404, "not discovered", "not_discovered")
			return
		}
		writeJSON(w, 202, map[string]any{"device": in.Device, "key": "k-0123456789abcdef", "sentTo": "10.1.2.7:30005"})
	})
}

func TestDiscoveryCommands(t *testing.T) {
	scanPollInterval = time.Millisecond
	f := newFakeServer(t)
	pw := writeFile(t, "pw", fakePassword)
	args := func(a ...string) []string { return append(serverArgs(f, false, pw), a...) }

	t.Run("scan", func(t *testing.T) {
		r := tallyctl(nil, args("scan", "--target", "10.1.2.0/24", "--target", "127.0.0.1:4000", "--timeout", "2500ms")...)
		if r.code != 0 {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		var body struct {
			Targets        []string
			TimeoutSeconds float64
		}
		json.Unmarshal([]byte(f.body("POST /api/v1/discovery/scan")), &body)
		if len(body.Targets) != 2 || body.Targets[1] != "127.0.0.1:4000" || body.TimeoutSeconds != 2.5 {
			t.Errorf("scan request %s", f.body("POST /api/v1/discovery/scan"))
		}
		for _, w := range []string{"ADDRESS", "HOSTIDS", "ALIAS", "ONBOARDED", "LAST-SEEN", "ONLINE",
			"10.1.2.7:30005", "00:11:22:33:44:55 (ETHERNET), press-1 (STRING)", "press line 1", "here", "2 discovered devices"} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("stdout does not show %q:\n%s", w, r.stdout)
			}
		}
		if !strings.Contains(r.stderr, "scan: 254 of 254 sent, 0 failed, 2 answered") {
			t.Errorf("no progress on stderr: %q", r.stderr)
		}
		if f.lastRequest() != "GET /api/v1/discovery/devices?pageSize=1000" {
			t.Errorf("last request %s", f.lastRequest())
		}
	})
	t.Run("scan without targets, JSON", func(t *testing.T) {
		r := tallyctl(nil, args("scan", "--json")...)
		if r.code != 0 {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		if got := f.body("POST /api/v1/discovery/scan"); got != "{}" {
			t.Errorf("scan request %s", got)
		}
		var p page[discoveredDevice]
		if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || p.Total != 2 {
			t.Errorf("JSON %q: %v", r.stdout, err)
		}
	})
	t.Run("scan running", func(t *testing.T) {
		r := tallyctl(nil, args("scan", "--target", "10.9.9.9")...)
		if r.code != exitError || !strings.Contains(r.stderr, "a scan is already running") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("discovered", func(t *testing.T) {
		r := tallyctl(nil, args("discovered", "--page-size", "5")...)
		if r.code != 0 || !strings.Contains(r.stdout, "10.1.2.9:30005") || !strings.Contains(r.stdout, "2 of 2 discovered devices (page 1)") {
			t.Errorf("exit %d, stdout %s, stderr %q", r.code, r.stdout, r.stderr)
		}
		if f.lastRequest() != "GET /api/v1/discovery/devices?pageSize=5" {
			t.Errorf("last request %s", f.lastRequest())
		}
	})
	t.Run("ping", func(t *testing.T) {
		r := tallyctl(nil, args("ping")...)
		if r.code != 0 || !strings.Contains(r.stdout, "1 of 2 discovered devices online") || f.lastRequest() != "POST /api/v1/discovery/ping" {
			t.Errorf("exit %d, stdout %s, stderr %q", r.code, r.stdout, r.stderr)
		}
		r = tallyctl(nil, args("ping", "--json")...)
		if r.code != 0 || !strings.Contains(r.stdout, `"online": 1`) {
			t.Errorf("JSON: exit %d, stdout %s", r.code, r.stdout)
		}
	})
	for name, a := range map[string][]string{"MAC": {"wake", "00-11-22-33-44-55"}, "TYPE VALUE": {"wake", "ethernet", "00:11:22:33:44:55"}} {
		t.Run("wake "+name, func(t *testing.T) {
			r := tallyctl(nil, args(a...)...)
			if r.code != 0 || !strings.Contains(r.stdout, "sent the magic packet for 00:11:22:33:44:55 to 255.255.255.255:9, 10.1.2.255:9") {
				t.Errorf("exit %d, stdout %s, stderr %q", r.code, r.stdout, r.stderr)
			}
			if got := f.body("POST /api/v1/discovery/wake"); got != `{"device":{"value":"00:11:22:33:44:55","type":"ETHERNET"}}` {
				t.Errorf("wake request %s", got)
			}
		})
	}
	t.Run("onboard", func(t *testing.T) {
		r := tallyctl(nil, args("onboard", "00-11-22-33-44-55")...)
		if r.code != 0 || !strings.Contains(r.stdout, "invited ETHERNET 00:11:22:33:44:55 at 10.1.2.7:30005 with one-time key k-0123456789abcdef") {
			t.Errorf("exit %d, stdout %s, stderr %q", r.code, r.stdout, r.stderr)
		}
		if got := f.body("POST /api/v1/discovery/onboard"); got != `{"device":{"value":"00:11:22:33:44:55","type":"ETHERNET"}}` {
			t.Errorf("onboard request %s", got)
		}
		r = tallyctl(nil, args("onboard", "STRING", "press-9")...)
		if r.code == 0 || !strings.Contains(r.stderr, "not discovered") {
			t.Errorf("an undiscovered device: exit %d, stderr %q", r.code, r.stderr)
		}
	})
	for name, a := range map[string][]string{
		"onboard none":  {"onboard"},
		"onboard bad":   {"onboard", "00:11"},
		"not ETHERNET":  {"wake", "STRING", "press-1"},
		"bad MAC":       {"wake", "00:11"},
		"no device":     {"wake"},
		"extra args":    {"ping", "x"},
		"scan args":     {"scan", "10.1.2.0/24"},
		"bad timeout":   {"scan", "--timeout", "6"},
		"discovered x":  {"discovered", "x"},
		"wake too many": {"wake", "ETHERNET", "00:11:22:33:44:55", "x"},
	} {
		t.Run("usage "+name, func(t *testing.T) {
			count := func() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.requests) }
			before := count()
			if r := tallyctl(nil, args(a...)...); r.code != exitUsage {
				t.Errorf("exit %d, stderr %q", r.code, r.stderr)
			}
			if count() != before {
				t.Error("a usage error reached the server")
			}
		})
	}
}
