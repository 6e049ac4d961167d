// Package webui is the administrators' web UI: the HTML, CSS and
// JavaScript modules in static/, embedded in the binary and served by
// Handler. tallyd mounts it at / beside the REST API (transport.Config.UI);
// the UI talks only to that API and its events WebSocket.
//
// Every answer carries a strict content security policy (scripts, styles,
// images, fonts and connections from the appliance itself only, no inline
// script or style, no framing), nosniff, no referrer and Cache-Control
// no-cache with an ETag, so that a browser revalidates after an upgrade
// without downloading unchanged files again. Only GET and HEAD are
// answered; a directory is never listed. The package imports nothing of
// Tally's.
package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is the policy every answer of Handler carries.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; manifest-src 'self'; " +
	"form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// contentTypes maps the extensions the UI uses to their media types;
// anything else is served as application/octet-stream.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json; charset=utf-8",
	".webmanifest": "application/manifest+json; charset=utf-8",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".ico":         "image/x-icon",
	".woff2":       "font/woff2",
	".txt":         "text/plain; charset=utf-8",
}

// file is one embedded file, ready to serve.
type file struct {
	content     []byte
	contentType string
	etag        string
}

// handler serves the files read once from the embedded tree.
type handler struct {
	files map[string]file // by URL path: "/index.html", "/views/features.js"
}

// Handler returns the handler of the UI: / is static/index.html, every
// other path the file of that name under static/, and anything else 404.
func Handler() http.Handler {
	h := &handler{files: map[string]file{}}
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic("webui: " + err.Error()) // the embed directive guarantees static/
	}
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct, ok := contentTypes[strings.ToLower(path.Ext(name))]
		if !ok {
			ct = "application/octet-stream"
		}
		h.files["/"+name] = file{content: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		panic("webui: reading the embedded files: " + err.Error())
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cache-Control", "no-cache")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := r.URL.Path
	if name == "" || name == "/" {
		name = "/index.html"
	}
	f, ok := h.files[name]
	if !ok {
		// Directories are not in the table, so they are never listed.
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("ETag", f.etag)
	// ServeContent answers HEAD, ranges and If-None-Match; the zero time
	// leaves Last-Modified out (embedded files have none).
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.content))
}
