package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tallyhq/tally/core/licensingid"
)

// TestWebUI is an administrator's day in the web UI: log in, load rights,
// watch a device's checkout appear live, refuse a bad model at its line,
// add and delete a reservation group, make a one-time key that a device
// then uses, export the licensing ID, scan the LAN, and lose and regain
// the live connection. A READ user then finds no control that changes
// anything.
func TestWebUI(t *testing.T) {
	httpsPort := freePort(t)
	r := newUIRig(t, "--https-port", httpsPort)
	b := newBrowser(t, r.urls[r.node])

	b.login("admin", clusterPassword)
	b.waitLoaded("overview")
	b.checkErrors()

	step(t, "load rights", func() {
		b.open("offline")
		b.upload(`[data-test=rights-file]`, r.rightsFile(1, "cad 1.0 3\nviewer 2.0 5 overdraft=1\n"))
		b.click(`[data-test=rights-upload]`)
		b.open("features")
		b.waitFor("cad 1.0 in Features", func() bool { return b.hasRow("features", "cad/1.0") })
		if got := b.cell("features", "cad/1.0", "Total count"); got != "3" {
			t.Errorf("cad 1.0 total shows %q, want 3", got)
		}
	})

	step(t, "checkout appears live", func() {
		b.open("features")
		b.markPage()
		r.agent("press-1", "checkout", "cad", "1.0", "2")
		b.waitFor("cad 1.0 used 2", func() bool { return b.cell("features", "cad/1.0", "Used") == "2" })
		b.screenshot("features")

		b.open("devices")
		b.waitFor("press-1 in Devices", func() bool { return b.hasRow("devices", "STRING/press-1") })
		r.agent("press-2", "checkout", "viewer", "2.0", "1")
		b.waitFor("press-2 in Devices without a reload", func() bool { return b.hasRow("devices", "STRING/press-2") })
		if !b.stillSamePage() {
			t.Error("the page was reloaded to show the changes")
		}
		b.screenshot("devices")

		b.open("features/cad/1.0", "feature")
		b.waitFor("press-1 served", func() bool { return b.hasRow("served", "STRING/press-1") })
		b.open("devices/STRING/press-1", "device")
		b.waitText("#view", "cad")
		b.screenshot("device")
		b.open("overview")
		b.screenshot("overview")
	})

	step(t, "model error at its line", func() {
		b.open("pools")
		b.fill(`[data-test=model-text]`, "model \"lab\" {\n  partitions {\n    partition \"bench\" { \"cad\" 1.0 lots }\n  }\n}\n")
		b.click(`[data-test=model-save]`)
		b.waitText(`[data-test=model-error]`, "Line 3, column ")
		if got := b.text(`[data-test=bad-line]`); strings.TrimSpace(got) != "3" {
			t.Errorf("the gutter marks line %q, want 3", got)
		}
		b.screenshot("pools")
		b.checkErrors("status of 400")

		b.fill(`[data-test=model-text]`, "model \"lab\" {\n  partitions {\n    partition \"bench\" { \"cad\" 1.0 1 }\n  }\n  on any() { use \"bench\" }\n}\n")
		b.click(`[data-test=model-save]`)
		b.waitFor("pool bench", func() bool { return b.hasRow("pools", "bench/cad/1.0") })
		if msg := b.text(`[data-test=model-error]`); msg != "" {
			t.Errorf("a model error still shows: %s", msg)
		}
		b.acceptDialogs()
		b.click(`[data-test=model-delete]`)
		b.waitFor("no model", func() bool { return b.count(`[data-test=no-model]`) == 1 })
	})

	step(t, "reservation group", func() {
		b.open("reservations")
		b.fill(`[data-test=res-group]`, "lab")
		b.fill(`[data-test=res-device]`, "press-9")
		b.fill(`[data-test=res-idtype]`, "STRING")
		b.fill(`[data-test=res-feature]`, "cad")
		b.fill(`[data-test=res-version]`, "1.0")
		b.fill(`[data-test=res-count]`, "1")
		b.click(`[data-test=res-add-entry]`)
		b.waitFor("one pending entry", func() bool { return b.count(`[data-test=pending-entry]`) == 1 })
		if b.count(`table[data-test=table-reservations] tr[data-test=row]`) != 0 {
			t.Error("a pending entry was sent before the group was submitted")
		}
		b.click(`[data-test=res-submit]`)
		b.waitFor("group lab listed", func() bool { return b.hasRow("groups", "lab") })
		b.screenshot("reservations")
		if out := r.mustCtl(r.node, "reservations", "export"); !strings.Contains(out, "lab") {
			t.Errorf("the server has no group lab:\n%s", out)
		}
		b.acceptDialogs()
		b.click(`[data-test=delete-group][data-group="lab"]`)
		b.waitFor("group lab gone", func() bool {
			return !b.hasRow("groups", "lab") && b.count(`table[data-test=table-reservations] tr[data-test=row]`) == 0
		})
	})

	step(t, "one-time key", func() {
		b.open("keys")
		b.fill(`[data-test=key-type]`, "ONE_TIME")
		b.fill(`[data-test=key-quantity]`, "1")
		b.fill(`[data-test=key-description]`, "for press-3")
		b.click(`[data-test=key-create]`)
		b.waitFor("the new key", func() bool { return b.count(`[data-test=key-created] [data-test=key-secret]`) == 1 })
		secret := strings.TrimSpace(b.text(`[data-test=key-created] [data-test=key-secret]`))
		if secret == "" || strings.Contains(secret, "•") {
			t.Fatalf("the new key shows %q, want its secret", secret)
		}
		b.screenshot("keys")
		r.agent("press-3", "onboard", "--key", secret)
		b.waitFor("the key used by press-3", func() bool {
			return strings.Contains(b.text(`table[data-test=table-keys]`), "press-3")
		})
		// A one-time key is spent.
		ws := strings.Replace(r.urls[r.node], "https://", "wss://", 1) + "/ws/device"
		out, err := exec.Command(filepath.Join(r.bin, "tally-agent"), "--server", ws, "--insecure", "--hostid", "press-4",
			"--timeout", "20s", "onboard", "--key", secret).CombinedOutput()
		if err == nil {
			t.Errorf("a used one-time key onboarded a second device:\n%s", out)
		}
	})

	step(t, "a refused form shows the error at its field", func() {
		b.open("keys")
		b.fill(`[data-test=key-type]`, "MASS")
		b.fill(`[data-test=key-password]`, "short")
		b.click(`[data-test=key-create]`)
		b.waitFor("the password's error", func() bool { return b.text(`[data-test=error-secret]`) != "" })
		if n := b.count(`table[data-test=table-keys] tr[data-test=row]`); n != 1 {
			t.Errorf("%d keys after a refused mass key, want the one-time key alone", n)
		}
		b.checkErrors("status of 400")
	})

	step(t, "export licensing ID", func() {
		b.open("licensingid")
		b.waitText("#view", r.fingerprint)
		b.click(`[data-test=export-cert]`)
		data := b.waitDownload("licensing-id.cert")
		block, _ := pem.Decode(data)
		if block == nil {
			t.Fatalf("the export is not PEM: %q", data)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			t.Fatalf("the export holds no certificate: %v", err)
		}
		if got := licensingid.Fingerprint(block.Bytes); got != r.fingerprint {
			t.Errorf("exported certificate %s, want the main licensing ID %s", got, r.fingerprint)
		}
		b.screenshot("licensing-id")
	})

	step(t, "scan", func() {
		port := freeUDPPort(t)
		listen := exec.Command(filepath.Join(r.bin, "tally-agent"), "--hostid", "press-5", "--alias", "Press five",
			"listen", "--bind", "127.0.0.1", "--port", port, "--no-hw")
		listen.Env = append(os.Environ(), "HOME="+r.work)
		if err := listen.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { listen.Process.Kill(); listen.Wait() })
		b.open("discovery")
		b.fill(`[data-test=scan-targets]`, "127.0.0.1:"+port)
		b.click(`[data-test=scan-start]`)
		b.waitText(`table[data-test=table-discovered]`, "Press five")
		b.waitFor("the scan to finish", func() bool { return b.count(`[data-test=scan-progress][data-state=done]`) == 1 })
		b.screenshot("discovery")
	})

	step(t, "live banner", func() {
		b.open("features")
		if n := b.count(`[data-test=live-banner]:not([hidden])`); n != 0 {
			t.Fatalf("the live banner shows while connected")
		}
		r.kill(r.node)
		b.waitFor("the live banner", func() bool { return b.count(`[data-test=live-banner]:not([hidden])`) == 1 })
		if err := r.start(r.node); err != nil {
			t.Fatal(err)
		}
		b.waitFor("the live banner to go", func() bool { return b.count(`[data-test=live-banner]:not([hidden])`) == 0 })
		r.agent("press-6", "checkout", "cad", "1.0", "1")
		b.waitFor("cad 1.0 used 3 after reconnecting", func() bool { return b.cell("features", "cad/1.0", "Used") == "3" })
		b.checkErrors("ERR_CONNECTION_REFUSED", "WebSocket", "Failed to fetch", "502", "503")
	})

	step(t, "the other views", func() {
		for _, v := range []string{"properties", "audit", "users", "offline", "cluster"} {
			b.open(v)
			b.screenshot(v)
		}
		if got := b.cell("members", r.node, "Role"); got != "leader" {
			t.Errorf("the cluster view shows %s as %q, want leader", r.node, got)
		}
	})

	step(t, "tablet", func() {
		b.run("tablet screen", chromedp.EmulateViewport(768, 1024))
		defer b.run("laptop screen", chromedp.EmulateViewport(int64(browserWindow[0]), int64(browserWindow[1])))
		b.open("devices")
		if evaluate[bool](b, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
			t.Error("the Devices view is wider than a tablet's screen")
		}
		if b.count(`[data-test=nav-toggle]`) != 1 {
			t.Error("no menu button on a tablet")
		}
		b.screenshot("tablet-devices")
	})

	step(t, "READ sees no write controls", func() {
		writeViews := []string{"pools", "reservations", "properties", "keys", "users", "discovery", "offline"}
		for _, v := range writeViews {
			b.open(v)
			if b.count(`[data-write]`) == 0 {
				t.Errorf("admin sees no write control in %s: the check below could not fail", v)
			}
		}
		pw := filepath.Join(r.work, "reader.pw")
		if err := os.WriteFile(pw, []byte("reader password 1"), 0o600); err != nil {
			t.Fatal(err)
		}
		r.mustCtl(r.node, "users", "create", "reader", "--role", "READ", "--password-file", pw)
		b.click(`[data-test=logout]`)
		b.login("reader", "reader password 1")
		navs := evaluate[[]string](b, `[...document.querySelectorAll('a[data-test^="nav-"]')].map(a => a.dataset.test.slice(4))`)
		if len(navs) < 8 {
			t.Fatalf("READ sees only %v in the navigation", navs)
		}
		for _, v := range navs {
			b.open(v)
			if n := b.count(`[data-write]`); n != 0 {
				t.Errorf("READ sees %d write controls in %s", n, v)
			}
		}
		for _, v := range []string{"keys", "users"} {
			b.open(v)
			if b.count(`[data-test=access-denied]`) != 1 {
				t.Errorf("READ opened %s", v)
			}
		}
		b.screenshot("access-denied")
		// Requests in flight when the admin logged out are refused.
		b.checkErrors("403", "status of 401")
	})
	b.checkErrors()
}

// step runs one part of a long browser test; a failure stops the test,
// since each step builds on the ones before.
func step(t *testing.T, name string, fn func()) {
	t.Helper()
	t.Logf("step: %s", name)
	fn()
}

// freeUDPPort is a UDP port on loopback that nothing listens on.
func freeUDPPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return fmt.Sprint(c.LocalAddr().(*net.UDPAddr).Port)
}

// TestWebUIAtScale opens the lists of a server with 1,000 features and
// 10,000 devices: each page holds one page of rows (the server pages), the
// totals count every record, and paging and the exact-name search work.
// How fast the server answers such pages is measured by transport's
// BenchmarkListDevices10k and BenchmarkListFeatures1k.
func TestWebUIAtScale(t *testing.T) {
	const features, devices, batch = 1000, 10000, 2000
	r := newUIRig(t)
	var lines strings.Builder
	for i := range features {
		fmt.Fprintf(&lines, "f%04d 1.0 %d\n", i, devices)
	}
	r.mustCtl(r.node, "rights", "load", r.rightsFile(1, lines.String()))
	ws := strings.Replace(r.urls[r.node], "https://", "wss://", 1) + "/ws/device"
	for i := range devices / batch {
		cmd := exec.Command(filepath.Join(r.bin, "tally-agent"), "--server", ws, "--insecure", "--hostid", fmt.Sprintf("batch%d", i),
			"load", "--devices", fmt.Sprint(batch), "--duration", "1s", "--feature", "f0001", "--version", "1.0")
		cmd.Env = append(os.Environ(), "HOME="+r.work)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tally-agent load: %v\n%s", err, out)
		}
	}

	b := newBrowser(t, r.urls[r.node])
	b.login("admin", clusterPassword)
	pageSize := evaluate[int](b, `JSON.parse(localStorage.getItem("tally.settings") || "{}").pageSize || 25`)

	b.open("devices")
	b.waitText(`[data-test=total]`, fmt.Sprint(devices))
	first := b.rowKeys("devices")
	if len(first) != pageSize {
		t.Fatalf("the Devices view shows %d rows, want one page of %d", len(first), pageSize)
	}
	b.waitFor("page 2 of the devices", func() bool {
		// A refresh may redraw the pager under the click: click until the
		// table says page 2.
		if strings.TrimSpace(b.text(`[data-test=page-number]`)) == "1" {
			evaluate[bool](b, `(e => e && !e.disabled ? (e.click(), true) : false)(document.querySelector('[data-test=page-next]'))`)
			return false
		}
		keys := b.rowKeys("devices")
		return len(keys) == pageSize && keys[0] != first[0]
	})
	b.screenshot("devices-10k")

	b.open("features")
	b.waitText(`[data-test=total]`, fmt.Sprint(features))
	if n := len(b.rowKeys("features")); n != pageSize {
		t.Fatalf("the Features view shows %d rows, want one page of %d", n, pageSize)
	}
	b.fill(`[data-test=feature-search]`, "f0500")
	b.click(`form:has([data-test=feature-search]) button[type=submit]`)
	b.waitFor("the search to find f0500 alone", func() bool {
		keys := b.rowKeys("features")
		return len(keys) == 1 && keys[0] == "f0500/1.0"
	})
	b.checkErrors()
}
