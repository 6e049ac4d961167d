package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/licensingid"
	"github.com/tallyhq/tally/core/version"
)

const (
	fakePassword    = "s3cret pass"
	fakeToken       = "token-123"
	fakeFingerprint = "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF"
)

// fakeServer serves the documented REST API from fixed data, records what
// it was sent, and answers errors as {"error","code"}.
type fakeServer struct {
	*httptest.Server
	caFile string

	id *licensingid.ID

	mu          sync.Mutex
	keys        []firstAuthKey
	clientKey   []byte
	logins      int
	requests    []string // "METHOD path?query"
	bodies      map[string]string
	model       string
	auditBroken bool
	scanPolls   int // GET /api/v1/discovery/scan answers since the scan started
}

var (
	cadDevice = hostid.HostID{Value: "00:11:22:aa:bb:cc", Type: hostid.Ethernet}
	expiry    = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
)

func fakeFeatures() []core.FeatureSummary {
	return []core.FeatureSummary{
		{Name: "cad", Version: version.MustParse("1.0"), Total: 10, Used: 4, Available: 6, Counted: true},
		{Name: "solver", Version: version.MustParse("2022.01"), Total: 4, Available: 4, FirstExpiry: expiry, LastExpiry: expiry, Overdraft: 2, Metered: true, Counted: true},
		{Name: "reader", Version: version.MustParse("2.0"), Used: 3},
	}
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	id, err := licensingid.Generate(time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{id: id, bodies: map[string]string{}, model: `model "m" { on any() { accept } }`}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"status": "ok", "version": "1.2.3", "node": "n1", "fingerprint": fakeFingerprint, "leader": true, "time": "2025-03-14T10:00:00Z"})
	})
	mux.HandleFunc("POST /api/v1/auth/login", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ User, Password string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || r.Header.Get("Content-Type") != "application/json" {
			writeError(w, 400, "bad login request", "bad_request")
			return
		}
		f.mu.Lock()
		f.logins++
		f.mu.Unlock()
		if in.User != "admin" || in.Password != fakePassword {
			writeError(w, 401, "wrong user or password", "unauthorized")
			return
		}
		writeJSON(w, 200, map[string]any{"token": fakeToken, "expires": "2025-03-14T11:00:00Z", "user": "admin", "roles": []string{"ADMIN"}})
	})
	authed := func(pattern string, h func(w http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+fakeToken {
				writeError(w, 401, "no or bad token", "unauthorized")
				return
			}
			body, _ := io.ReadAll(r.Body)
			f.mu.Lock()
			key := r.Method + " " + r.URL.EscapedPath()
			if r.URL.RawQuery != "" {
				key += "?" + r.URL.RawQuery
			}
			f.requests = append(f.requests, key)
			f.bodies[r.Method+" "+r.URL.EscapedPath()] = string(body)
			f.mu.Unlock()
			h(w, r)
		})
	}
	authed("GET /api/v1/features", func(w http.ResponseWriter, r *http.Request) {
		items := fakeFeatures()
		if name := r.URL.Query().Get("name"); name != "" {
			var keep []core.FeatureSummary
			for _, it := range items {
				if it.Name == name {
					keep = append(keep, it)
				}
			}
			items = keep
		}
		writePage(w, r, items)
	})
	authed("GET /api/v1/features/{name}/{version}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "cad" || r.PathValue("version") != "1.0" {
			writeError(w, 404, "unknown feature "+r.PathValue("name")+" "+r.PathValue("version"), "unknown_feature")
			return
		}
		writeJSON(w, 200, core.FeatureDetail{
			FeatureSummary: fakeFeatures()[0], Reserved: 1, VendorStrings: []string{"edition=pro"},
			Lines:  []core.FeatureLine{{ID: "demo-cad", Name: "cad", Version: version.MustParse("1.0"), Count: 10, Source: "demo", VendorString: "edition=pro"}},
			Served: []core.ServedDevice{{Device: cadDevice, Type: core.DevicePhysical, Alias: "press-line-1", Count: 4, Expiry: expiry}},
		})
	})
	devices := []core.DeviceSummary{
		{ID: cadDevice, Type: core.DevicePhysical, Alias: "press-line-1", LastSeen: expiry.Add(-time.Hour), Expiry: expiry, Pool: "default"},
		{ID: hostid.HostID{Value: "a/b c", Type: hostid.String}, Type: core.DeviceVirtual, Pool: "default"},
	}
	authed("GET /api/v1/devices", func(w http.ResponseWriter, r *http.Request) { writePage(w, r, devices) })
	authed("GET /api/v1/devices/{type}/{value}", func(w http.ResponseWriter, r *http.Request) {
		for _, d := range devices {
			if d.ID.Type.String() == r.PathValue("type") && d.ID.Value == r.PathValue("value") {
				writeJSON(w, 200, core.DeviceDetail{DeviceSummary: d,
					Info:   core.DeviceInfo{ID: d.ID, HostIDs: []hostid.HostID{d.ID}, Type: d.Type, Hostname: "press1", Attributes: map[string]string{"site": "pune"}},
					Leases: []core.Lease{{Device: d.ID, Feature: "cad", Version: version.MustParse("1.0"), Count: 4, Granted: expiry.Add(-time.Hour), Expiry: expiry}}})
				return
			}
		}
		writeError(w, 404, "unknown device", "unknown_device")
	})
	authed("DELETE /api/v1/devices/{type}/{value}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("value") == "locked" {
			writeError(w, 403, "dropping devices is not allowed (server.allowDeviceDrop is false)", "drop_not_allowed")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	groups := []core.ReservationGroup{{Name: "pune", Reservations: []core.Reservation{{HostID: cadDevice,
		Entries: []core.ReservationEntry{{Feature: "cad", Version: version.MustParse("1.0"), Count: 2}}}}}}
	authed("GET /api/v1/reservations", func(w http.ResponseWriter, r *http.Request) {
		writePage(w, r, []core.ReservationRow{
			{Group: "pune", HostID: cadDevice, Feature: "cad", Version: version.MustParse("1.0"), Count: 2, Satisfiable: true},
			{Group: "pune", HostID: cadDevice, Feature: "solver", Version: version.MustParse("9"), Count: 1},
		})
	})
	authed("GET /api/v1/reservations/export", func(w http.ResponseWriter, r *http.Request) {
		data, _ := core.FormatReservations(groups)
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
	})
	authed("POST /api/v1/reservations", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/json" {
			writeError(w, 415, "want application/json", "unsupported_media_type")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	authed("DELETE /api/v1/reservations/{group}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("group") == "nope" {
			writeError(w, 404, `unknown reservation group "nope"`, "unknown_group")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	authed("GET /api/v1/model", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, 200, map[string]string{"text": f.model})
	})
	authed("PUT /api/v1/model", func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
			writeError(w, 415, "want text/plain", "unsupported_media_type")
			return
		}
		text := f.body("PUT /api/v1/model")
		f.mu.Lock()
		f.model = text
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	authed("DELETE /api/v1/model", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.model = ""
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	authed("GET /api/v1/pools", func(w http.ResponseWriter, r *http.Request) {
		pools := []core.PoolSummary{
			{ID: 0, Name: "default", Features: []core.PoolFeatureUse{{Pool: "default", Feature: "cad", Version: version.MustParse("1.0"), Allocated: 8, Used: 4, Status: "ok"}}},
			{ID: 1, Name: "pune", Features: []core.PoolFeatureUse{{Pool: "pune", Feature: "cad", Version: version.MustParse("1.0"), Allocated: 2, Status: "short", Expiry: expiry}}},
			{ID: 2, Name: "empty"},
		}
		writeJSON(w, 200, map[string]any{"total": len(pools), "items": pools})
	})
	props := []core.Property{
		{PropertyDef: core.PropertyDef{Name: "server.pageSize", Group: "server", Description: "rows per page", Kind: core.KindInt, Default: "50", Min: 1, Max: 1000}, Value: "50"},
		{PropertyDef: core.PropertyDef{Name: "server.allowDeviceDrop", Group: "server", Kind: core.KindBool, Default: "false"}, Value: "true", Locked: true},
	}
	authed("GET /api/v1/properties", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"total": len(props), "items": props})
	})
	authed("GET /api/v1/properties/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, p := range props {
			if p.Name == r.PathValue("name") {
				writeJSON(w, 200, p)
				return
			}
		}
		writeError(w, 404, "unknown property "+r.PathValue("name"), "unknown_property")
	})
	authed("PUT /api/v1/properties/{name}", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Value string }
		json.Unmarshal([]byte(f.body("PUT "+r.URL.EscapedPath())), &in)
		for _, p := range props {
			if p.Name == r.PathValue("name") {
				if p.Locked {
					writeError(w, 409, "property is locked by the producer: "+p.Name+" is fixed at \"true\"", "property_locked")
					return
				}
				p.Value = in.Value
				writeJSON(w, 200, p)
				return
			}
		}
		writeError(w, 404, "unknown property", "unknown_property")
	})
	authed("POST /api/v1/rights", func(w http.ResponseWriter, r *http.Request) {
		body := f.body("POST /api/v1/rights")
		switch {
		case strings.Contains(body, "stale"):
			writeError(w, 409, "rights are not newer than those loaded: \"acme\" is at sequence 3, this is 2", "stale_rights")
		case strings.Contains(body, "proxy"):
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>\n<body>Bad gateway</body>\n</html>")
		default:
			writeJSON(w, 200, map[string]any{"source": "acme", "sequence": 3, "lines": 5})
		}
	})

	users := map[string]map[string]any{
		"admin":  {"name": "admin", "roles": []string{"ADMIN"}, "created": "2025-03-14T09:00:00Z", "passwordChanged": "2025-03-14T09:00:00Z"},
		"reader": {"name": "reader", "roles": []string{"READ"}, "created": "2025-03-14T09:30:00Z", "passwordChanged": "2025-03-14T09:30:00Z"},
	}
	authed("GET /api/v1/users", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"total": 2, "items": []any{users["admin"], users["reader"]}})
	})
	authed("POST /api/v1/users", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name     string   `json:"name"`
			Roles    []string `json:"roles"`
			Password string   `json:"password"`
		}
		json.Unmarshal([]byte(f.body("POST /api/v1/users")), &in)
		if _, ok := users[in.Name]; ok {
			writeError(w, 409, `user already exists: "`+in.Name+`"`, "user_exists")
			return
		}
		writeJSON(w, 201, map[string]any{"name": in.Name, "roles": in.Roles, "created": "2025-03-14T10:00:00Z", "passwordChanged": "2025-03-14T10:00:00Z"})
	})
	authed("PUT /api/v1/users/{name}", func(w http.ResponseWriter, r *http.Request) {
		u, ok := users[r.PathValue("name")]
		if !ok {
			writeError(w, 404, `unknown user "`+r.PathValue("name")+`"`, "unknown_user")
			return
		}
		var in struct {
			Roles []string `json:"roles"`
		}
		json.Unmarshal([]byte(f.body("PUT "+r.URL.EscapedPath())), &in)
		out := map[string]any{"name": u["name"], "roles": u["roles"], "created": u["created"], "passwordChanged": u["passwordChanged"]}
		if in.Roles != nil {
			out["roles"] = in.Roles
		}
		writeJSON(w, 200, out)
	})
	authed("DELETE /api/v1/users/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") == "admin" {
			writeError(w, 409, `the last user with the ADMIN role cannot be removed or lose it: "admin" is the last user with ADMIN`, "last_admin")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	authed("PUT /api/v1/auth/password", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Current, New string }
		json.Unmarshal([]byte(f.body("PUT /api/v1/auth/password")), &in)
		if in.Current != fakePassword {
			writeError(w, 403, "the current password is wrong", "bad_credentials")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	authed("GET /api/v1/audit", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		broken := f.auditBroken
		f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"total": 3, "verified": !broken, "items": []core.AuditRecord{
			{Seq: 2, At: expiry, User: "tallyd", Address: "local", Action: "createUser", Detail: "created user admin with roles ADMIN", Prev: "aa", Hash: "bb"},
			{Seq: 3, At: expiry.Add(time.Minute), User: "admin", Address: "192.0.2.7", Action: "setProperty", Detail: `set server.pageSize to "7"`, Prev: "bb", Hash: "cc"},
		}})
	})
	authed("GET /api/v1/licensing-id", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"display": f.id.Display(), "id": f.id.String(), "fingerprint": f.id.Fingerprint(),
			"servers": []map[string]string{{"host": "box-1", "serverStatus": "Running", "idStatus": "Main licensing ID", "display": f.id.Display(), "fingerprint": f.id.Fingerprint()}}})
	})
	authed("GET /api/v1/licensing-id/cert", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Disposition", `attachment; filename="licensing-id.cert"`)
		w.Write(f.id.CertificatePEM())
	})

	f.addKeyRoutes(authed)
	f.addDiscoveryRoutes(authed)
	f.addClusterRoutes(authed)

	f.Server = httptest.NewUnstartedServer(mux)
	f.Config.ErrorLog = log.New(io.Discard, "", 0) // the TLS tests make handshakes fail on purpose
	f.StartTLS()
	t.Cleanup(f.Close)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw})
	if err := os.WriteFile(f.caFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeServer) body(key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[key]
}

func (f *fakeServer) loginCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins
}

func (f *fakeServer) lastRequest() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		return ""
	}
	return f.requests[len(f.requests)-1]
}

// writePage serves items as a paged list, as the API does.
func writePage[T any](w http.ResponseWriter, r *http.Request, items []T) {
	pg, size := 1, 50
	if v, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil {
		pg = v
	}
	if v, err := strconv.Atoi(r.URL.Query().Get("pageSize")); err == nil {
		size = v
	}
	total := len(items)
	start := min((pg-1)*size, total)
	end := min(start+size, total)
	writeJSON(w, 200, map[string]any{"total": total, "page": pg, "pageSize": size, "items": items[start:end]})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg, code string) {
	writeJSON(w, status, map[string]string{"error": msg, "code": code})
}

// otherCA writes a self-signed certificate that did not sign the fake
// server's certificate.
func otherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
