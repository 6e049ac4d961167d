package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// The browser tests drive the web UI in Debian's Chromium, headless,
// against real tallyd processes. They need a Chromium: on a machine without
// one they are skipped, except under CI (CI set), where .ci/run installs it
// and its absence is a failure.

// chromiumPath finds the browser: $TALLY_CHROMIUM, then the usual names.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TALLY_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium found (install Debian's chromium or set TALLY_CHROMIUM)")
	}
	t.Skip("no Chromium found (install Debian's chromium or set TALLY_CHROMIUM)")
	return ""
}

// uiBrowser is one headless Chromium with one tab, logged in or not, on
// one tallyd's web UI. Every JavaScript exception and console error in the
// page fails the test: a CSP violation is reported as one.
type uiBrowser struct {
	t         *testing.T
	ctx       context.Context
	base      string // https://127.0.0.1:PORT
	downloads string

	mu   sync.Mutex
	errs []string
}

// browserWindow is a laptop screen.
var browserWindow = [2]int{1366, 768}

func newBrowser(t *testing.T, base string) *uiBrowser {
	t.Helper()
	path := chromiumPath(t)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.DisableGPU,
		chromedp.IgnoreCertErrors,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(browserWindow[0], browserWindow[1]),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &uiBrowser{t: t, ctx: ctx, base: base, downloads: t.TempDir()}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first action starts the browser, which lives as long as the
	// context of that action: it gets no timeout of its own.
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior:     browser.SetDownloadBehaviorBehaviorAllow,
			DownloadPath: b.downloads,
		})
		return err
	}))
	if err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				b.addError(fmt.Sprintf("%s %s (%s:%d)", m.Type, m.Text, m.URL, m.Line+1))
			}
		}
	}()
	return b
}

func (b *uiBrowser) addError(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, s)
}

// checkErrors fails the test for what the page reported since the last
// check; errors the test provoked on purpose are passed as allowed
// substrings.
func (b *uiBrowser) checkErrors(allowed ...string) {
	b.t.Helper()
	b.mu.Lock()
	errs := b.errs
	b.errs = nil
	b.mu.Unlock()
	// Chromium aborts requests when the host's interfaces change (another
	// program adding a network); that is the machine's doing, not the page's.
	allowed = append(allowed, "ERR_NETWORK_CHANGED")
	for _, e := range errs {
		ok := false
		for _, a := range allowed {
			if strings.Contains(e, a) {
				ok = true
			}
		}
		if !ok {
			b.t.Errorf("the page reported: %s", e)
		}
	}
}

// run performs steps with a bound on their time.
func (b *uiBrowser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\n%s", what, err, b.snapshot())
	}
}

// snapshot is what the page shows, for failure messages.
func (b *uiBrowser) snapshot() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	url, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if len(text) > 2000 {
		text = text[:2000] + "…"
	}
	return "page " + url + ":\n" + text
}

// evaluate runs a JavaScript expression in the page and returns its value.
func evaluate[T any](b *uiBrowser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v\n%s", expr, err, b.snapshot())
	}
	return v
}

// count is the number of elements that match the CSS selector.
func (b *uiBrowser) count(selector string) int {
	b.t.Helper()
	return evaluate[int](b, fmt.Sprintf(`document.querySelectorAll(%s).length`, jsString(selector)))
}

// text is the text of the first element that matches selector, "" when none.
func (b *uiBrowser) text(selector string) string {
	b.t.Helper()
	return evaluate[string](b, fmt.Sprintf(`(e => e ? e.innerText : "")(document.querySelector(%s))`, jsString(selector)))
}

// waitFor polls cond until it holds, for at most 30 seconds.
func (b *uiBrowser) waitFor(what string, cond func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out waiting for %s\n%s", what, b.snapshot())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitText waits until the element matching selector shows want.
func (b *uiBrowser) waitText(selector, want string) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("%q in %s", want, selector), func() bool { return strings.Contains(b.text(selector), want) })
}

// open goes to a view by its route and waits until it has rendered; the
// view is the route's first part unless named.
func (b *uiBrowser) open(route string, view ...string) {
	b.t.Helper()
	id, _, _ := strings.Cut(route, "/")
	if len(view) > 0 {
		id = view[0]
	}
	b.run("open #/"+route, chromedp.Navigate(b.base+"/#/"+route))
	b.waitLoaded(id)
}

// waitLoaded waits until view id has completed a render with the live
// connection ready: no refresh is pending, so what the test acts on stays.
func (b *uiBrowser) waitLoaded(id string) {
	b.t.Helper()
	b.run("wait for view "+id, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`body[data-live="1"] #view[data-view=%q][data-loaded="1"]`, id))))
}

// login signs in on the login page. A login the page could not send (the
// server unreachable for a moment) is tried again.
func (b *uiBrowser) login(user, password string) {
	b.t.Helper()
	b.run("open the login page", chromedp.Navigate(b.base+"/"))
	for attempt := 1; ; attempt++ {
		b.fill(`[data-test=login-user]`, user)
		b.fill(`[data-test=login-password]`, password)
		b.click(`[data-test=login-submit]`)
		var failed string
		b.waitFor("the login of "+user, func() bool {
			if b.count(`[data-test=login-user]`) == 0 {
				return true
			}
			// Only an error the page shows; a message from before the
			// submit is hidden by it.
			failed = evaluate[string](b, `(e => e && !e.hidden ? e.innerText : "")(document.querySelector('[data-test=login-error]'))`)
			return failed != ""
		})
		if b.count(`[data-test=login-user]`) == 0 {
			return
		}
		if attempt == 3 || !strings.Contains(failed, "Cannot reach") {
			b.t.Fatalf("log in as %s: %s", user, failed)
		}
	}
}

// click clicks the first element matching selector. It clicks from
// within the page, retrying until the element is there, since a live
// refresh may replace the element between finding and clicking it.
func (b *uiBrowser) click(selector string) {
	b.t.Helper()
	b.waitFor("a click on "+selector, func() bool {
		return evaluate[bool](b, fmt.Sprintf(`(e => e && !e.disabled ? (e.click(), true) : false)(document.querySelector(%s))`, jsString(selector)))
	})
}

// fill replaces the value of an input, select or textarea and tells the
// page, as typing would.
func (b *uiBrowser) fill(selector, value string) {
	b.t.Helper()
	b.waitFor("filling "+selector, func() bool {
		return evaluate[bool](b, fmt.Sprintf(`(e => {
			if (!e) return false;
			e.value = %s;
			e.dispatchEvent(new Event("input", {bubbles: true}));
			e.dispatchEvent(new Event("change", {bubbles: true}));
			return true;
		})(document.querySelector(%s))`, jsString(value), jsString(selector)))
	})
}

// upload sets the file of a file input.
func (b *uiBrowser) upload(selector, path string) {
	b.t.Helper()
	b.run("upload "+path, chromedp.SetUploadFiles(chromedp.CSS(selector), []string{path}))
}

// acceptDialogs answers every confirm() and alert() with OK.
func (b *uiBrowser) acceptDialogs() {
	b.t.Helper()
	evaluate[bool](b, `window.confirm = () => true; window.alert = () => {}; true`)
}

// screenshot saves the page as docs/screenshots/NAME.png when
// TALLY_SCREENSHOTS names the directory to write them to (make
// screenshots does).
func (b *uiBrowser) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv("TALLY_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// waitDownload waits for a file named name in the download directory and
// returns its content.
func (b *uiBrowser) waitDownload(name string) []byte {
	b.t.Helper()
	path := filepath.Join(b.downloads, name)
	var data []byte
	b.waitFor("the download of "+name, func() bool {
		var err error
		data, err = os.ReadFile(path)
		return err == nil && len(data) > 0
	})
	return data
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// cell is the text of the column titled column in the row with data-key
// key of table name; "" when there is no such row.
func (b *uiBrowser) cell(table, key, column string) string {
	b.t.Helper()
	return evaluate[string](b, fmt.Sprintf(`(() => {
		const t = document.querySelector('table[data-test="table-' + %s + '"]');
		if (!t) return "";
		const heads = [...t.querySelectorAll("thead th")].map(th => th.innerText.trim().toLowerCase());
		const i = heads.indexOf(%s.toLowerCase());
		const row = [...t.querySelectorAll('tr[data-test="row"]')].find(r => r.dataset.key === %s);
		if (i < 0 || !row) return "";
		const td = row.querySelectorAll("td")[i];
		return td ? td.innerText.trim() : "";
	})()`, jsString(table), jsString(column), jsString(key)))
}

// rowKeys are the data-key values of the rows of table name.
func (b *uiBrowser) rowKeys(table string) []string {
	b.t.Helper()
	return evaluate[[]string](b, fmt.Sprintf(`[...document.querySelectorAll('table[data-test="table-' + %s + '"] tr[data-test="row"]')].map(r => r.dataset.key)`, jsString(table)))
}

// hasRow tells whether table name shows a row with data-key key.
func (b *uiBrowser) hasRow(table, key string) bool {
	b.t.Helper()
	return slices.Contains(b.rowKeys(table), key)
}

// markPage leaves a mark in the page's JavaScript state; stillSamePage
// tells whether the page was not reloaded since.
func (b *uiBrowser) markPage() {
	b.t.Helper()
	evaluate[bool](b, `window.tallyTestMark = "kept"; true`)
}

func (b *uiBrowser) stillSamePage() bool {
	b.t.Helper()
	return evaluate[string](b, `window.tallyTestMark || ""`) == "kept"
}

// uiRig is one tallyd that trusts a test producer, and the browser on its
// web UI.
type uiRig struct {
	*clusterRig
	node, producerKey, fingerprint string
}

func newUIRig(t *testing.T, extra ...string) *uiRig {
	r := &uiRig{clusterRig: newClusterRig(t), node: "ui"}
	prefix := filepath.Join(r.work, "producer")
	if out, err := exec.Command(filepath.Join(r.bin, "tallyctl"), "producer", "keygen", "--out", prefix).CombinedOutput(); err != nil {
		t.Fatalf("producer keygen: %v\n%s", err, out)
	}
	r.producerKey = prefix + ".key"
	if err := r.start(r.node, append([]string{"--producer-key", prefix + ".pub"}, extra...)...); err != nil {
		t.Fatal(err)
	}
	var health struct {
		Fingerprint string `json:"fingerprint"`
	}
	if err := json.Unmarshal([]byte(r.mustCtl(r.node, "--json", "health")), &health); err != nil || health.Fingerprint == "" {
		t.Fatalf("read the fingerprint: %v", err)
	}
	r.fingerprint = health.Fingerprint
	return r
}

// rightsFile signs lines (the producer kit's format) for the node.
func (r *uiRig) rightsFile(sequence int, lines string) string {
	r.t.Helper()
	in := filepath.Join(r.work, fmt.Sprintf("lines-%d.txt", sequence))
	out := filepath.Join(r.work, fmt.Sprintf("rights-%d.tally", sequence))
	if err := os.WriteFile(in, []byte(lines), 0o600); err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(r.bin, "tallyctl"), "producer", "issue", "--key", r.producerKey, "--server", r.fingerprint,
		"--source", "shop", "--sequence", fmt.Sprint(sequence), "--lines", in, "--out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("producer issue: %v\n%s", err, b)
	}
	return out
}

// agent runs tally-agent against the node as device (a STRING hostid).
func (r *uiRig) agent(device string, args ...string) string {
	r.t.Helper()
	ws := strings.Replace(r.urls[r.node], "https://", "wss://", 1) + "/ws/device"
	cmd := exec.Command(filepath.Join(r.bin, "tally-agent"), append([]string{"--server", ws, "--insecure", "--hostid", device,
		"--timeout", "20s"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+r.work)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("tally-agent %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
