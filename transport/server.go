package transport

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/licensingid"
	"github.com/tallyhq/tally/core/password"
	"github.com/tallyhq/tally/transport/discovery"
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

// Config is what a Server needs. Store, Rights and Identity are required;
// the rest have defaults.
type Config struct {
	// Store applies commands and serves reads, including the users, their
	// credentials and the token key.
	Store core.Store
	// Rights verifies uploaded rights files.
	Rights RightsVerifier
	// Capability verifies capability responses (the offline exchange);
	// nil: uploading one answers 503 not_available.
	Capability CapabilityVerifier
	// Identity is the main licensing ID, shown and exported by the
	// licensing-id routes; its fingerprint is shown by the health route.
	Identity *licensingid.ID
	// Hostname names this server in the licensing ID status; default
	// NodeID.
	Hostname string
	// Logger receives request failures and administrative changes; default
	// discards.
	Logger *slog.Logger
	// Now is the clock for tokens, the login limiters, health and request
	// durations; default time.Now.
	Now func() time.Time
	// Random is the source of token nonces and password salts; default
	// crypto/rand.Reader.
	Random io.Reader
	// Version and NodeID are shown by the health and server routes.
	Version, NodeID string
	// Build identifies the build beyond Version (a VCS revision, the Go
	// release, the platform), for the server route; "" leaves it out.
	Build string
	// HostIDs returns the hostids of the machine this node runs on, in
	// the order of preference (package hw's: ETHERNET by interface name,
	// UUID, then SERIAL), for the server route; nil shows none. The first
	// is shown as the one in use: Tally knows a server by its licensing ID
	// (devices and the back office) and its node ID (its peers), never by
	// a hostid, so the one in use is the one a license bound to the
	// machine would name, the preferred.
	HostIDs func() []hostid.HostID
	// Leader reports whether this node leads the cluster, for the health
	// route; nil means a single node that always leads.
	Leader func() bool
	// Devices, when non-nil, is mounted at GET /ws/device.
	Devices http.Handler
	// Metrics write further Prometheus text after the server's own on
	// /metrics, in order.
	Metrics []func(io.Writer)
	// RestoreIdentity keeps a licensing ID restored from a backup so that
	// the next start uses it; the running server goes on with Identity.
	// Nil means this server cannot restore one (501).
	RestoreIdentity func(id *licensingid.ID) error

	// Discovery runs scans and online checks for the discovery routes; the
	// caller runs its Serve loop. Nil: those routes answer 503
	// not_available.
	Discovery *discovery.Responder
	// DiscoveryPort is the agents' UDP port that scans go to when a target
	// names no port; default discovery.DefaultPort (30005).
	DiscoveryPort uint16
	// WakeConn is a UDP socket allowed to broadcast, for Wake-on-LAN magic
	// packets. Nil: the wake route answers 503 not_available.
	WakeConn net.PacketConn
	// WakePort is the UDP port magic packets go to; default
	// discovery.WakePort (9). Tests change it.
	WakePort uint16
	// BroadcastTargets returns the broadcast and directed-broadcast
	// addresses that scans without targets and magic packets go to;
	// default discovery.BroadcastAddrs(discovery.LocalInterfaces()).
	BroadcastTargets func() []netip.Addr
	// Cluster serves the cluster routes; nil: they answer 503
	// not_available.
	Cluster core.Cluster
	// Online tells whether a device holds a live connection to this node,
	// for the devices views; nil shows every device offline.
	Online func(hostid.HostID) bool
	// OnlineCount counts the devices online on this node, for the
	// history; nil counts them with Online over the state's devices.
	OnlineCount func() int
	// HistoryInterval is how often RunHistory samples; default one
	// minute. The history keeps 24 hours of samples, at most 1440.
	HistoryInterval time.Duration

	// UI, when non-nil, answers GET and HEAD for every path the API does
	// not own: the admin web UI (webui.Handler). Paths under /api/ stay
	// the API's, so an unknown one is still a JSON 404.
	UI http.Handler
}

// ErrConfig is wrapped by NewServer when the Config is incomplete.
var ErrConfig = errors.New("transport: invalid config")

//go:embed openapi.json
var openAPIDocument []byte

// Server serves the REST API. Create it with NewServer.
type Server struct {
	cfg         Config
	log         *slog.Logger
	mux         *http.ServeMux
	routes      []route
	known       map[string]bool // registered patterns, the metrics' route labels
	addrLimiter *loginLimiter
	userLimiter *loginLimiter
	metrics     *httpMetrics
	// kdf holds a slot for each password hash being computed.
	kdf chan struct{}
	// backupKDF holds the one slot for a backup's key derivation (the
	// licensing ID's or a sealed database backup's).
	backupKDF chan struct{}
	// hashPassword hashes a password that passed the policy; tests swap in
	// a cheaper one.
	hashPassword func(string) (string, error)
	standIn      struct {
		once sync.Once
		hash string
		err  error
	}
	// disc holds the discovered devices and the running scan.
	disc *discoveryState
	// hub holds the events WebSocket connections.
	hub *eventHub
	// history holds the samples RunHistory takes.
	history *historySampler
}

// route is one registered endpoint.
type route struct {
	method, path string
	// public routes need no token.
	public bool
	// role is the right the caller needs; anyRole lets every user in.
	role    core.Role
	handler func(http.ResponseWriter, *http.Request) error
}

// anyRole marks a route that every authenticated user may call: the views
// (every role can read), the audit log, the licensing ID, and the caller's
// own logout and password.
const anyRole core.Role = 0

func (rt route) pattern() string { return rt.method + " " + rt.path }

// NewServer checks cfg, fills in defaults and registers the routes.
func NewServer(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.Join(ErrConfig, errors.New("no Store"))
	case cfg.Rights == nil:
		return nil, errors.Join(ErrConfig, errors.New("no Rights verifier"))
	case cfg.Identity == nil || cfg.Identity.Key == nil || len(cfg.Identity.Certificate) == 0:
		return nil, errors.Join(ErrConfig, errors.New("no licensing Identity"))
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
	if cfg.Hostname == "" {
		cfg.Hostname = cfg.NodeID
	}
	if cfg.DiscoveryPort == 0 {
		cfg.DiscoveryPort = discovery.DefaultPort
	}
	if cfg.WakePort == 0 {
		cfg.WakePort = discovery.WakePort
	}
	if cfg.BroadcastTargets == nil {
		cfg.BroadcastTargets = localBroadcastAddrs
	}
	s := &Server{
		cfg:         cfg,
		log:         cfg.Logger,
		mux:         http.NewServeMux(),
		known:       map[string]bool{},
		addrLimiter: newLoginLimiter(loginBurst, loginRefill),
		userLimiter: newLoginLimiter(userLoginBurst, loginRefill),
		metrics:     newHTTPMetrics(),
		kdf:         make(chan struct{}, kdfSlots),
		backupKDF:   make(chan struct{}, 1),
		disc:        newDiscoveryState(),
		hub:         newEventHub(cfg.Now, cfg.Logger),
		history:     newHistorySampler(cfg.HistoryInterval),
	}
	s.hashPassword = func(pw string) (string, error) { return password.Hash(pw, cfg.Random) }
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		h := rt.handler
		if !rt.public {
			h = s.authorize(rt)
		}
		s.mux.Handle(rt.pattern(), s.handle(h))
		s.known[rt.pattern()] = true
	}
	if cfg.Devices != nil {
		s.mux.Handle(devicePattern, cfg.Devices)
		s.known[devicePattern] = true
	}
	if cfg.UI != nil {
		// Not in the mux: a catch-all there would turn the API's 404s and
		// 405s into the UI's. serveHTTP hands the UI what the mux does not
		// take; every UI request is counted under this one label.
		s.known[uiPattern] = true
	}
	return s, nil
}

// devicePattern is where Config.Devices is mounted.
const devicePattern = "GET /ws/device"

// uiPattern is where Config.UI is mounted, and its metrics label.
const uiPattern = "GET /"

// routeTable lists every endpoint of the API, as openapi.json documents it,
// with the right each needs. It is the one place that decides who may do
// what: views for every user, a change for the role that owns it, and ADMIN
// (which holds every right) for properties and users.
func (s *Server) routeTable() []route {
	const (
		admin        = core.RoleAdmin
		reservations = core.RoleReservations
		offline      = core.RoleOffline
		dropDevice   = core.RoleDropDevice
		keys         = core.RoleKeys
	)
	return []route{
		{method: "POST", path: "/api/v1/auth/login", public: true, handler: s.login},
		{method: "GET", path: "/api/v1/health", public: true, handler: s.health},
		{method: "GET", path: "/api/v1/openapi.json", public: true, handler: s.openAPI},
		{method: "GET", path: "/metrics", public: true, handler: s.serveMetrics},
		// The events WebSocket takes its token in its first message, as a
		// browser cannot send the header; it checks it with checkToken.
		{method: "GET", path: "/api/v1/events", public: true, handler: s.eventsSocket},

		{method: "POST", path: "/api/v1/auth/logout", role: anyRole, handler: s.logout},
		{method: "PUT", path: "/api/v1/auth/password", role: anyRole, handler: s.changePassword},

		{method: "GET", path: "/api/v1/server", role: anyRole, handler: s.serverInfo},
		{method: "GET", path: "/api/v1/features", role: anyRole, handler: s.listFeatures},
		{method: "GET", path: "/api/v1/features/{name}/{version}", role: anyRole, handler: s.featureDetails},
		{method: "GET", path: "/api/v1/devices", role: anyRole, handler: s.listDevices},
		{method: "GET", path: "/api/v1/devices/{type}/{value}", role: anyRole, handler: s.deviceDetails},
		{method: "DELETE", path: "/api/v1/devices/{type}/{value}", role: dropDevice, handler: s.dropDevice},
		{method: "GET", path: "/api/v1/reservations", role: anyRole, handler: s.listReservations},
		{method: "GET", path: "/api/v1/reservations/export", role: anyRole, handler: s.exportReservations},
		{method: "POST", path: "/api/v1/reservations", role: reservations, handler: s.importReservations},
		{method: "DELETE", path: "/api/v1/reservations/{group}", role: reservations, handler: s.deleteReservationGroup},
		{method: "GET", path: "/api/v1/model", role: anyRole, handler: s.getModel},
		{method: "PUT", path: "/api/v1/model", role: reservations, handler: s.putModel},
		{method: "DELETE", path: "/api/v1/model", role: reservations, handler: s.deleteModel},
		{method: "GET", path: "/api/v1/pools", role: anyRole, handler: s.listPools},
		{method: "GET", path: "/api/v1/properties", role: anyRole, handler: s.listProperties},
		{method: "GET", path: "/api/v1/properties/{name}", role: anyRole, handler: s.getProperty},
		{method: "PUT", path: "/api/v1/properties/{name}", role: admin, handler: s.putProperty},
		{method: "POST", path: "/api/v1/rights", role: offline, handler: s.uploadRights},
		{method: "GET", path: "/api/v1/offline/status", role: offline, handler: s.offlineStatus},
		{method: "GET", path: "/api/v1/offline/request", role: offline, handler: s.downloadCapabilityRequest},
		{method: "POST", path: "/api/v1/offline/activation", role: offline, handler: s.requestActivation},
		{method: "POST", path: "/api/v1/offline/response", role: offline, handler: s.uploadCapabilityResponse},

		{method: "GET", path: "/api/v1/users", role: admin, handler: s.listUsers},
		{method: "POST", path: "/api/v1/users", role: admin, handler: s.createUser},
		{method: "GET", path: "/api/v1/users/{name}", role: admin, handler: s.getUser},
		{method: "PUT", path: "/api/v1/users/{name}", role: admin, handler: s.updateUser},
		{method: "DELETE", path: "/api/v1/users/{name}", role: admin, handler: s.deleteUser},
		{method: "GET", path: "/api/v1/audit", role: anyRole, handler: s.readAudit},
		{method: "GET", path: "/api/v1/history", role: anyRole, handler: s.readHistory},

		{method: "GET", path: "/api/v1/licensing-id", role: anyRole, handler: s.licensingID},
		{method: "GET", path: "/api/v1/licensing-id/cert", role: anyRole, handler: s.licensingIDCert},
		{method: "POST", path: "/api/v1/licensing-id/backup", role: admin, handler: s.backupLicensingID},
		{method: "POST", path: "/api/v1/licensing-id/restore", role: admin, handler: s.restoreLicensingID},
		{method: "GET", path: "/api/v1/backup", role: admin, handler: s.createBackup},
		{method: "POST", path: "/api/v1/backup", role: admin, handler: s.createSealedBackup},
		{method: "POST", path: "/api/v1/backup/restore", role: admin, handler: s.restoreBackup},

		// First-authentication keys, secrets included, are for KEYS alone
		// (and ADMIN, which holds it): other roles cannot even list them.
		{method: "GET", path: "/api/v1/keys", role: keys, handler: s.listKeys},
		{method: "POST", path: "/api/v1/keys", role: keys, handler: s.createKeys},
		{method: "PUT", path: "/api/v1/keys/{id}", role: keys, handler: s.updateKey},
		{method: "DELETE", path: "/api/v1/keys/{id}", role: keys, handler: s.deleteKey},
		{method: "GET", path: "/api/v1/client-key", role: admin, handler: s.getClientKey},
		{method: "POST", path: "/api/v1/client-key", role: admin, handler: s.uploadClientKey},

		// Discovery sends packets on the LAN: scans, online checks and
		// magic packets are for ADMIN; what was found is a view.
		{method: "POST", path: "/api/v1/discovery/scan", role: admin, handler: s.startScan},
		{method: "GET", path: "/api/v1/discovery/scan", role: anyRole, handler: s.scanStatus},
		{method: "GET", path: "/api/v1/discovery/devices", role: anyRole, handler: s.listDiscovered},
		{method: "POST", path: "/api/v1/discovery/ping", role: admin, handler: s.pingDiscovered},
		{method: "POST", path: "/api/v1/discovery/wake", role: admin, handler: s.wake},
		// The cluster: its view is for everyone, changes for ADMIN; a
		// joining node has no account and proves a join token instead.
		{method: "GET", path: "/api/v1/cluster", role: anyRole, handler: s.clusterStatus},
		{method: "DELETE", path: "/api/v1/cluster/members/{id}", role: admin, handler: s.removeMember},
		{method: "GET", path: "/api/v1/cluster/tokens", role: admin, handler: s.listJoinTokens},
		{method: "POST", path: "/api/v1/cluster/tokens", role: admin, handler: s.createJoinToken},
		{method: "DELETE", path: "/api/v1/cluster/tokens/{id}", role: admin, handler: s.deleteJoinToken},
		{method: "POST", path: "/api/v1/cluster/join", public: true, handler: s.join},

		// An invitation makes a one-time key and sends it on the LAN.
		{method: "POST", path: "/api/v1/discovery/onboard", role: admin, handler: s.inviteDevice},
	}
}

// Handler returns the HTTP handler of the API, /metrics, /ws/device and
// the UI.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Close ends what the server runs beyond requests: the events connections
// (told shutting_down) and a running discovery scan. Call it after the HTTP
// server's Shutdown, which does not wait for WebSockets; requests after it
// still work, but the events WebSocket refuses new connections.
func (s *Server) Close() {
	s.stopScans()
	s.hub.close()
}

// WriteMetrics writes the server's own metrics in the Prometheus text
// format: tally_http_requests_total{route,code},
// tally_http_request_duration_seconds{route}, login failures, refused
// requests, the tokens issued and tally_events_connections.
func (s *Server) WriteMetrics(w io.Writer) {
	s.metrics.write(w)
	s.hub.writeMetrics(w)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Now()
	rec := &recorder{ResponseWriter: w}
	setSecurityHeaders(rec.Header())
	route := ""
	if h, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(rec, r)
		route = r.Pattern
	} else if !s.unmatched(rec, r, h) {
		route = uiPattern
	}
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
// its Allow header), as a JSON error, or the UI's answer for a path outside
// /api/ that no route has (it reports whether the API answered).
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request, h http.Handler) (api bool) {
	c := &captureWriter{header: http.Header{}}
	h.ServeHTTP(c, r)
	switch {
	case c.status == http.StatusMethodNotAllowed:
		if allow := c.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		s.fail(w, r, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", msg: r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + c.header.Get("Allow")})
	case s.cfg.UI != nil && !isAPIPath(r.URL.Path):
		s.cfg.UI.ServeHTTP(w, r)
		return false
	default:
		s.fail(w, r, &apiError{status: http.StatusNotFound, code: "not_found", msg: "no such resource: " + r.URL.Path})
	}
	return true
}

// isAPIPath tells the paths the API owns whether or not a route takes
// them: an unknown one is a JSON 404, never the UI.
func isAPIPath(p string) bool {
	return p == "/api" || strings.HasPrefix(p, "/api/")
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
	writeJSON(w, ae.status, errorBody{Error: ae.msg, Code: ae.code, Line: ae.line, Column: ae.column})
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
