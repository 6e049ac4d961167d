package webui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func serve(t *testing.T, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	// A header set before the UI answers, as the API's defaults are.
	rec.Header().Set("Content-Security-Policy", "default-src 'none'")
	Handler().ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func wantSafetyHeaders(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	for k, v := range map[string]string{
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-cache",
	} {
		if got := rec.Header().Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

func TestServesIndex(t *testing.T) {
	want, err := os.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/index.html"} {
		rec := serve(t, "GET", path)
		if rec.Code != http.StatusOK || rec.Body.String() != string(want) {
			t.Fatalf("GET %s: %d, %d bytes", path, rec.Code, rec.Body.Len())
		}
		if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
		wantSafetyHeaders(t, rec)
	}
	head := serve(t, "HEAD", "/")
	if cl := head.Header().Get("Content-Length"); head.Code != http.StatusOK || head.Body.Len() != 0 || cl != strconv.Itoa(len(want)) {
		t.Errorf("HEAD /: %d, %d bytes, Content-Length %q", head.Code, head.Body.Len(), cl)
	}
	// An unchanged file is revalidated, not sent again.
	etag := serve(t, "GET", "/").Header().Get("ETag")
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("If-None-Match", etag)
	Handler().ServeHTTP(rec, req)
	if etag == "" || rec.Code != http.StatusNotModified {
		t.Errorf("If-None-Match %q: %d", etag, rec.Code)
	}
}

func TestContentTypes(t *testing.T) {
	h := Handler().(*handler)
	for name := range h.files {
		if strings.HasSuffix(name, ".js") {
			rec := serve(t, "GET", name)
			if ct := rec.Header().Get("Content-Type"); rec.Code != http.StatusOK || ct != "text/javascript; charset=utf-8" {
				t.Errorf("GET %s: %d %q", name, rec.Code, ct)
			}
			wantSafetyHeaders(t, rec)
		}
	}
	for ext, want := range map[string]string{
		".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8",
		".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
	} {
		if got := contentTypes[ext]; got != want {
			t.Errorf("%s: %q, want %q", ext, got, want)
		}
	}
}

func TestNotFound(t *testing.T) {
	for _, path := range []string{"/nothing.js", "/static/index.html", "/../webui.go", "/index.html/", "/%2e%2e/webui.go"} {
		rec := serve(t, "GET", path)
		if rec.Code != http.StatusNotFound || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
			t.Errorf("GET %s: %d %q", path, rec.Code, rec.Header().Get("Content-Type"))
		}
		wantSafetyHeaders(t, rec)
	}
}

func TestNoDirectoryListing(t *testing.T) {
	dirs := []string{"/views", "/views/"}
	fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && name != "static" {
			p := strings.TrimPrefix(name, "static")
			dirs = append(dirs, p, p+"/")
		}
		return err
	})
	for _, path := range dirs {
		rec := serve(t, "GET", path)
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d %q", path, rec.Code, rec.Body.String())
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	for _, method := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		rec := serve(t, method, "/")
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /: %d, Allow %q", method, rec.Code, rec.Header().Get("Allow"))
		}
		wantSafetyHeaders(t, rec)
	}
}

// TestNoUnsafeCode reads every file under static/ and fails on what the
// content security policy forbids or what would let typed text become
// markup or code: HTML parsing from strings, eval, inline handlers, inline
// scripts and styles, and references to other hosts.
func TestNoUnsafeCode(t *testing.T) {
	everywhere := map[string]*regexp.Regexp{
		"innerHTML":          regexp.MustCompile(`innerHTML`),
		"outerHTML":          regexp.MustCompile(`outerHTML`),
		"insertAdjacentHTML": regexp.MustCompile(`insertAdjacentHTML`),
		"document.write":     regexp.MustCompile(`document\.write`),
		"eval(":              regexp.MustCompile(`\beval\s*\(`),
		"new Function":       regexp.MustCompile(`\bnew\s+Function\b`),
		"an external URL":    regexp.MustCompile(`(?i)\bhttps?://[^\s"'<>()` + "`" + `]+`),
	}
	inHTML := map[string]*regexp.Regexp{
		"an inline event handler": regexp.MustCompile(`(?i)\son[a-z]+\s*=`),
		"a style attribute":       regexp.MustCompile(`(?i)\sstyle\s*=`),
		"a <style> element":       regexp.MustCompile(`(?i)<style[\s>]`),
	}
	scriptTag := regexp.MustCompile(`(?i)<script\b[^>]*>`)
	hasSrc := regexp.MustCompile(`(?i)\ssrc\s*=`)
	// XML namespace names are identifiers, not resources: the SVG chart
	// needs them for createElementNS.
	namespace := regexp.MustCompile(`^http://www\.w3\.org/(2000/svg|1999/xlink|1999/xhtml|XML/1998/namespace)$`)

	files := 0
	err := filepath.WalkDir("static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		text := string(b)
		report := func(what string, at []int) {
			line := 1 + strings.Count(text[:at[0]], "\n")
			t.Errorf("%s:%d: %s (%q)", path, line, what, text[at[0]:at[1]])
		}
		for what, re := range everywhere {
			for _, at := range re.FindAllStringIndex(text, -1) {
				if what == "an external URL" && namespace.MatchString(text[at[0]:at[1]]) {
					continue
				}
				report(what, at)
			}
		}
		if strings.EqualFold(filepath.Ext(path), ".html") {
			for what, re := range inHTML {
				for _, at := range re.FindAllStringIndex(text, -1) {
					report(what, at)
				}
			}
			for _, at := range scriptTag.FindAllStringIndex(text, -1) {
				if !hasSrc.MatchString(text[at[0]:at[1]]) {
					report("an inline <script> (no src)", at)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no files under static/")
	}
}

// TestImportsNothingOfTally holds the dependency rule: the UI package is
// files and a handler, and depends on no other part of Tally.
func TestImportsNothingOfTally(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goCmd, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/tallyhq/tally/") && pkg != "github.com/tallyhq/tally/webui" && !strings.HasPrefix(pkg, "github.com/tallyhq/tally/core") {
			t.Errorf("webui depends on %s", pkg)
		}
	}
}
