package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/tallyhq/tally/core"
)

// RightsVerifier checks a signed rights file and returns the command that
// installs it. core/rights.Verifier satisfies it.
//
// Its errors are answered as they come: one that wraps a core sentinel is
// mapped like any other core error; every other error means the file was
// refused (malformed, untrusted key, bad signature, another server's) and is
// answered 400 with code bad_rights and the error's text.
type RightsVerifier interface {
	Verify(data []byte) (*core.LoadRights, error)
}

// Config is what a Server needs. Store, Rights and AdminPassword are
// required; the rest have defaults.
type Config struct {
	// Store applies commands and serves reads.
	Store core.Store
	// Rights verifies uploaded rights files.
	Rights RightsVerifier
	// Logger receives request failures and administrative changes; default
	// discards.
	Logger *slog.Logger
	// Now is the clock for tokens, the login limiter, health and request
	// durations; default time.Now.
	Now func() time.Time
	// Random is the source of tokens; default crypto/rand.Reader.
	Random io.Reader
	// AdminUser and AdminPassword are the administrator's credentials;
	// AdminUser defaults to "admin".
	AdminUser     string
	AdminPassword string
	// Version, NodeID and Fingerprint are shown by the health route.
	Version, NodeID, Fingerprint string
	// Leader reports whether this node leads the cluster, for the health
	// route; nil means a single node that always leads.
	Leader func() bool
	// Devices, when non-nil, is mounted at GET /ws/device.
	Devices http.Handler
	// Metrics write further Prometheus text after the server's own on
	// /metrics, in order.
	Metrics []func(io.Writer)
}

// ErrConfig is wrapped by NewServer when the Config is incomplete.
var ErrConfig = errors.New("transport: invalid config")

//go:embed openapi.json
var openAPIDocument []byte

// Server serves the REST API. Create it with NewServer.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	routes  []route
	known   map[string]bool // registered patterns, the metrics' route labels
	tokens  *tokenStore
	limiter *loginLimiter
	metrics *httpMetrics
}

// route is one registered endpoint.
type route struct {
	method, path string
	// public routes need no token.
	public  bool
	handler func(http.ResponseWriter, *http.Request) error
}

func (rt route) pattern() string { return rt.method + " " + rt.path }

// NewServer checks cfg, fills in defaults and registers the routes.
func NewServer(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.Join(ErrConfig, errors.New("no Store"))
	case cfg.Rights == nil:
		return nil, errors.Join(ErrConfig, errors.New("no Rights verifier"))
	case cfg.AdminPassword == "":
		return nil, errors.Join(ErrConfig, errors.New("no AdminPassword"))
	}
	if cfg.AdminUser == "" {
		cfg.AdminUser = "admin"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Random == nil {
		cfg.Random = rand.Reader
	}
	if cfg.Leader == nil {
		cfg.Leader = func() bool { return true }
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		mux:     http.NewServeMux(),
		known:   map[string]bool{},
		tokens:  newTokenStore(),
		limiter: newLoginLimiter(),
		metrics: newHTTPMetrics(),
	}
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		h := rt.handler
		if !rt.public {
			h = s.authenticated(h)
		}
		s.mux.Handle(rt.pattern(), s.handle(h))
		s.known[rt.pattern()] = true
	}
	if cfg.Devices != nil {
		s.mux.Handle(devicePattern, cfg.Devices)
		s.known[devicePattern] = true
	}
	return s, nil
}

// devicePattern is where Config.Devices is mounted.
const devicePattern = "GET /ws/device"

// routeTable lists every endpoint of the API, as openapi.json documents it.
func (s *Server) routeTable() []route {
	return []route{
		{method: "POST", path: "/api/v1/auth/login", public: true, handler: s.login},
		{method: "GET", path: "/api/v1/health", public: true, handler: s.health},
		{method: "GET", path: "/api/v1/openapi.json", public: true, handler: s.openAPI},
		{method: "GET", path: "/metrics", public: true, handler: s.serveMetrics},

		{method: "GET", path: "/api/v1/features", handler: s.listFeatures},
		{method: "GET", path: "/api/v1/features/{name}/{version}", handler: s.featureDetails},
		{method: "GET", path: "/api/v1/devices", handler: s.listDevices},
		{method: "GET", path: "/api/v1/devices/{type}/{value}", handler: s.deviceDetails},
		{method: "DELETE", path: "/api/v1/devices/{type}/{value}", handler: s.dropDevice},
		{method: "GET", path: "/api/v1/reservations", handler: s.listReservations},
		{method: "GET", path: "/api/v1/reservations/export", handler: s.exportReservations},
		{method: "POST", path: "/api/v1/reservations", handler: s.importReservations},
		{method: "DELETE", path: "/api/v1/reservations/{group}", handler: s.deleteReservationGroup},
		{method: "GET", path: "/api/v1/model", handler: s.getModel},
		{method: "PUT", path: "/api/v1/model", handler: s.putModel},
		{method: "DELETE", path: "/api/v1/model", handler: s.deleteModel},
		{method: "GET", path: "/api/v1/pools", handler: s.listPools},
		{method: "GET", path: "/api/v1/properties", handler: s.listProperties},
		{method: "GET", path: "/api/v1/properties/{name}", handler: s.getProperty},
		{method: "PUT", path: "/api/v1/properties/{name}", handler: s.putProperty},
		{method: "POST", path: "/api/v1/rights", handler: s.uploadRights},
	}
}

// Handler returns the HTTP handler of the API, /metrics and /ws/device.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// WriteMetrics writes the server's own metrics in the Prometheus text
// format: tally_http_requests_total{route,code},
// tally_http_request_duration_seconds{route}, login failures and the number
// of live tokens.
func (s *Server) WriteMetrics(w io.Writer) {
	s.metrics.write(w, s.tokens.live(s.cfg.Now()))
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Now()
	rec := &recorder{ResponseWriter: w}
	setSecurityHeaders(rec.Header())
	if h, pattern := s.mux.Handler(r); pattern == "" {
		s.unmatched(rec, r, h)
	} else {
		s.mux.ServeHTTP(rec, r)
	}
	route := r.Pattern
	if !s.known[route] {
		route = "unmatched"
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	s.metrics.observe(route, status, s.cfg.Now().Sub(start), rec.hijacked)
}

// setSecurityHeaders sets the headers every response carries: nothing is
// sniffed, cached, framed or sent as a referrer.
func setSecurityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("Strict-Transport-Security", "max-age=31536000")
}

// unmatched answers a request no route takes: the mux's 404 or 405 (with
// its Allow header), as a JSON error.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request, h http.Handler) {
	c := &captureWriter{header: http.Header{}}
	h.ServeHTTP(c, r)
	switch c.status {
	case http.StatusMethodNotAllowed:
		if allow := c.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		s.fail(w, r, &apiError{http.StatusMethodNotAllowed, "method_not_allowed", r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + c.header.Get("Allow")})
	default:
		s.fail(w, r, &apiError{http.StatusNotFound, "not_found", "no such resource: " + r.URL.Path})
	}
}

// captureWriter records what the mux would answer, without writing it.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}
func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}

// handle turns a handler that returns an error into an http.Handler that
// answers the error.
func (s *Server) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

// fail answers err as a JSON error. Server faults are logged with their
// detail; the client sees only a generic message.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	ae := errorFor(err)
	switch {
	case ae.status >= 500 && ae.code == "internal":
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
	case ae.status >= 500:
		s.log.Warn("request not applied", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if ae.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tally"`)
	}
	writeJSON(w, ae.status, errorBody{Error: ae.msg, Code: ae.code})
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: "internal server error", Code: "internal"})
	}
	b = append(b, '\n')
	writeRaw(w, status, "application/json; charset=utf-8", b)
}

func writeRaw(w http.ResponseWriter, status int, contentType string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// authenticated lets a request through with a valid bearer token, or
// without any Authorization header from a loopback address while the
// property security.enabled is false.
func (s *Server) authenticated(h func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		token, present := bearerToken(r)
		if present {
			if token == "" || !s.tokens.valid(token, s.cfg.Now()) {
				return &apiError{http.StatusUnauthorized, "unauthorized", "the bearer token is invalid or has expired; log in again"}
			}
			return h(w, r)
		}
		if isLoopback(r.RemoteAddr) {
			enabled, err := s.securityEnabled(r.Context())
			if err != nil {
				return err
			}
			if !enabled {
				return h(w, r)
			}
		}
		return &apiError{http.StatusUnauthorized, "unauthorized", "no bearer token; log in at POST /api/v1/auth/login"}
	}
}

func (s *Server) securityEnabled(ctx context.Context) (bool, error) {
	var v string
	err := s.cfg.Store.Read(ctx, func(st *core.State) error {
		p, err := st.Property("security.enabled")
		v = p.Value
		return err
	})
	return v != "false", err
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	var buf bytes.Buffer
	s.WriteMetrics(&buf)
	for _, m := range s.cfg.Metrics {
		m(&buf)
	}
	writeRaw(w, http.StatusOK, "text/plain; version=0.0.4; charset=utf-8", buf.Bytes())
	return nil
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	writeRaw(w, http.StatusOK, "application/json; charset=utf-8", openAPIDocument)
	return nil
}
