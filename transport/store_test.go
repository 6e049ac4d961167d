package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/licensingid"
	"github.com/tallyhq/tally/core/version"
	"golang.org/x/crypto/argon2"
)

// t0 is the clock every test starts from.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const testPassword = "correct horse battery staple"

// fakeStore is a core.Store around a real State behind a mutex: commands are
// applied with increasing request IDs at the store's clock, so results are
// the engine's own.
type fakeStore struct {
	mu         sync.Mutex
	state      *core.State
	now        time.Time
	seq        uint64
	notApplied bool
	fail       error // returned by Read, for faults the API does not know
	// observe, when set, is called with each request applied, as a node
	// calls Config.Observe.
	observe func(core.Request, core.Result)
}

func newFakeStore(t testing.TB) *fakeStore {
	t.Helper()
	fs := &fakeStore{state: core.New(core.Config{}), now: t0}
	fs.mustApply(t, &core.Tick{})
	fs.mustApply(t, &core.SetTokenKey{Key: bytes.Repeat([]byte{7}, core.TokenKeyLen)})
	fs.mustApply(t, &core.CreateUser{Name: "admin", Roles: []core.Role{core.RoleAdmin}, PasswordHash: cheapHash(t, testPassword)})
	fs.mustApply(t, &core.LoadRights{Source: "demo", Sequence: 1, Lines: []core.FeatureLine{
		{ID: "cad-1", Name: "cad", Version: version.MustParse("1.0"), Count: 10},
		{ID: "viewer-2", Name: "viewer", Version: version.MustParse("2.0"), Count: 25, Expiry: t0.Add(365 * 24 * time.Hour)},
	}})
	for i := 1; i <= 3; i++ {
		fs.mustApply(t, &core.Hello{Device: core.DeviceInfo{ID: testMAC(i), Type: core.DevicePhysical, Alias: fmt.Sprintf("dev%d", i)}})
	}
	fs.mustApply(t, &core.Checkout{Device: testMAC(1), Feature: "cad", Version: version.MustParse("1.0"), Count: 2})
	return fs
}

func testMAC(i int) hostid.HostID {
	return hostid.HostID{Value: fmt.Sprintf("00:11:22:33:44:%02x", i), Type: hostid.Ethernet}
}

func (fs *fakeStore) mustApply(t testing.TB, c core.Command) {
	t.Helper()
	if _, err := fs.Apply(context.Background(), c); err != nil {
		t.Fatalf("%s: %v", c.Type(), err)
	}
}

func (fs *fakeStore) Apply(ctx context.Context, c core.Command) (core.Result, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.notApplied {
		return core.Result{}, fmt.Errorf("no leader: %w", core.ErrNotApplied)
	}
	fs.seq++
	req := core.Request{ID: core.RequestID{Session: 1, Seq: fs.seq}, At: fs.now, Command: c}
	res, err := fs.state.Apply(req)
	if err == nil && fs.observe != nil {
		fs.observe(req, res)
	}
	return res, err
}

// observeWith makes the store call fn for each request it applies.
func (fs *fakeStore) observeWith(fn func(core.Request, core.Result)) {
	fs.mu.Lock()
	fs.observe = fn
	fs.mu.Unlock()
}

func (fs *fakeStore) Read(ctx context.Context, fn func(*core.State) error) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.notApplied {
		return fmt.Errorf("no leader: %w", core.ErrNotApplied)
	}
	if fs.fail != nil {
		return fs.fail
	}
	return fn(fs.state)
}

func (fs *fakeStore) setNotApplied(v bool) {
	fs.mu.Lock()
	fs.notApplied = v
	fs.mu.Unlock()
}

// snapshot is the whole state, to check that a refused request changed nothing.
func (fs *fakeStore) snapshot(t testing.TB) []byte {
	t.Helper()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	b, err := fs.state.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var _ core.Store = (*fakeStore)(nil)

// addUser creates a user with roles and a cheap hash of pw directly in the
// state, without an audit record.
func (fs *fakeStore) addUser(t testing.TB, name, pw string, roles ...core.Role) {
	t.Helper()
	fs.mustApply(t, &core.CreateUser{Name: name, Roles: roles, PasswordHash: cheapHash(t, pw)})
}

// cheapHash is an argon2id PHC string of pw at the smallest parameters
// password.Verify accepts, so that tests do not spend 64 MiB per login.
func cheapHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := cheapHashOf(pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func cheapHashOf(pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, 1, 8, 1, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=8,t=1,p=1$%s$%s", b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// testIdentity makes a licensing ID.
func testIdentity(t testing.TB) *licensingid.ID {
	t.Helper()
	id, err := licensingid.Generate(t0, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// testClock is a controllable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeRights verifies "rights files" of the form
// {"format":"fake-rights/1","source":..,"sequence":..,"lines":[..],"locks":{..}}:
// a stand-in for the signed format, strict like the real verifier.
type fakeRights struct{}

var errFakeMalformed = errors.New("malformed rights file")

type fakeRightsFile struct {
	Format   string             `json:"format"`
	Source   string             `json:"source"`
	Sequence uint64             `json:"sequence"`
	Lines    []core.FeatureLine `json:"lines"`
	Locks    map[string]string  `json:"locks,omitempty"`
}

func (fakeRights) Verify(data []byte) (*core.LoadRights, error) {
	var f fakeRightsFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", errFakeMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the file", errFakeMalformed)
	}
	if f.Format != "fake-rights/1" {
		return nil, fmt.Errorf("%w: format %q", errFakeMalformed, f.Format)
	}
	if f.Source == "wrong-line" {
		return nil, fmt.Errorf("line 1: %w: verifier found a bad line", core.ErrInvalidFeature)
	}
	return &core.LoadRights{Source: f.Source, Sequence: f.Sequence, Lines: f.Lines, Locks: f.Locks}, nil
}

func fakeRightsJSON(t testing.TB, source string, seq uint64, lines ...core.FeatureLine) string {
	t.Helper()
	b, err := json.Marshal(fakeRightsFile{Format: "fake-rights/1", Source: source, Sequence: seq, Lines: lines})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testEnv is a Server behind a real HTTPS listener on loopback.
type testEnv struct {
	t      *testing.T
	store  *fakeStore
	clock  *testClock
	server *Server
	id     *licensingid.ID
	url    string
	client *http.Client
	logs   *bytes.Buffer
	token  string
	extra  func(io.Writer)
	// header is added to every request do sends.
	header http.Header
}

type envOption func(*Config)

func newTestEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	e := &testEnv{t: t, store: newFakeStore(t), clock: &testClock{now: t0}, logs: &bytes.Buffer{}, id: testIdentity(t)}
	cfg := Config{
		Store: e.store, Rights: fakeRights{}, Logger: slog.New(slog.NewTextHandler(&syncWriter{w: e.logs}, nil)),
		Now: e.clock.Now, Identity: e.id, Hostname: "host-a",
		Version: "1.2.3", NodeID: "node-a",
		Leader:  func() bool { return true },
		Metrics: []func(io.Writer){func(w io.Writer) { io.WriteString(w, "tally_test_extra 1\n") }},
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.hashPassword = cheapHashOf
	e.server = srv
	dir := t.TempDir()
	cert, err := LoadOrCreateCertificate("", "", dir, nil, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(tls.NewListener(ln, TLSConfig(cert)))
	t.Cleanup(func() { hs.Close() })

	pool := x509.NewCertPool()
	pemBytes, err := os.ReadFile(filepath.Join(dir, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("generated certificate does not parse")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	e.client = &http.Client{Transport: tr}
	e.url = "https://localhost:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	// localhost may resolve to ::1 first; dial the listener's address.
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	}
	return e
}

// syncWriter makes a buffer safe for the logger's concurrent writes.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// response is what a test request got back.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d %q: %v", r.status, r.body, err)
	}
}

// do sends a request; with auth it carries the environment's token (logging
// in first if needed).
func (e *testEnv) do(method, path, contentType, body string, auth bool) response {
	e.t.Helper()
	if auth && e.token == "" {
		e.token = e.login(testPassword)
	}
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	for k, v := range e.header {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *testEnv) login(password string) string {
	e.t.Helper()
	return e.loginAs("admin", password)
}

// loginAs logs in as user and returns the token.
func (e *testEnv) loginAs(user, password string) string {
	e.t.Helper()
	b, _ := json.Marshal(map[string]string{"user": user, "password": password})
	r := e.do("POST", "/api/v1/auth/login", "application/json", string(b), false)
	if r.status != http.StatusOK {
		e.t.Fatalf("login: %d %s", r.status, r.body)
	}
	var tok loginResponse
	r.json(e.t, &tok)
	return tok.Token
}

// wantError checks an error response: its status, code and JSON form.
func wantError(t testing.TB, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (%s)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type %q", ct)
	}
	var eb errorBody
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	if eb.Code != code {
		t.Errorf("code %q, want %q (%s)", eb.Code, code, eb.Error)
	}
	if eb.Error == "" || strings.ContainsAny(eb.Error, "\r\n") {
		t.Errorf("error message %q is not one line", eb.Error)
	}
}
