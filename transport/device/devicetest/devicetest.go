// Package devicetest runs the device protocol server on loopback for tests
// of devices and tools: a Store that applies commands to a real core.State
// behind a mutex, and a TLS server with the device Handler mounted at
// deviceproto.Path.
package devicetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/version"
	"github.com/tallyhq/tally/transport/device"
	"github.com/tallyhq/tally/transport/deviceproto"
)

// Store is a core.Store without replication: commands apply in the order
// they take the lock, and each applied request is passed to Observe.
type Store struct {
	mu    sync.Mutex
	state *core.State
	seq   uint64
	now   func() time.Time
	// observe is called after each applied request, outside the lock.
	observe func(core.Request, core.Result)
}

var _ core.Store = (*Store)(nil)

// NewStore returns an empty store on the clock now, at core.Level as a
// node is once it leads.
func NewStore(now func() time.Time) *Store {
	s := &Store{state: core.New(core.Config{}), now: now}
	if _, err := s.Apply(context.Background(), &core.RaiseLevel{Level: core.Level}); err != nil {
		panic("devicetest: raise the state level: " + err.Error())
	}
	return s
}

// Observe sets the function told about every applied request.
func (s *Store) Observe(fn func(core.Request, core.Result)) {
	s.mu.Lock()
	s.observe = fn
	s.mu.Unlock()
}

// Apply applies c at the store's time.
func (s *Store) Apply(ctx context.Context, c core.Command) (core.Result, error) {
	if err := ctx.Err(); err != nil {
		return core.Result{}, err
	}
	s.mu.Lock()
	s.seq++
	req := core.Request{ID: core.RequestID{Session: 1, Seq: s.seq}, At: s.now(), Command: c}
	res, err := s.state.Apply(req)
	observe := s.observe
	s.mu.Unlock()
	if err == nil && observe != nil {
		observe(req, res)
	}
	return res, err
}

// Read runs fn on the state under the lock.
func (s *Store) Read(ctx context.Context, fn func(*core.State) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(s.state)
}

// Identity is a licensing identity made for a test.
type Identity struct {
	Key         *ecdsa.PrivateKey
	Certificate []byte
	Fingerprint string
}

// NewIdentity makes an ECDSA P-256 key and a self-signed certificate.
func NewIdentity(t testing.TB) Identity {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tally test licensing id"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return Identity{Key: key, Certificate: der, Fingerprint: deviceproto.Fingerprint(der)}
}

// Server is a device protocol server on loopback TLS.
type Server struct {
	URL      string // wss://127.0.0.1:PORT/ws/device
	HTTP     *httptest.Server
	Handler  *device.Handler
	Store    *Store
	Identity Identity
	// TLS trusts the server's certificate.
	TLS *tls.Config
	// TLSFingerprint is the fingerprint of the server's TLS certificate.
	TLSFingerprint string

	keyBatches atomic.Uint64
}

// Rights are the lines a test server starts with: "cad" 1.0 count 10,
// "viewer" 2.0 count 1000 and "big" 1.0 count 1,000,000.
func Rights() []core.FeatureLine {
	return []core.FeatureLine{
		{Name: "cad", Version: version.MustParse("1.0"), Count: 10},
		{Name: "viewer", Version: version.MustParse("2.0"), Count: 1000},
		{Name: "big", Version: version.MustParse("1.0"), Count: 1_000_000},
	}
}

// NewServer starts a server with Rights loaded. cfg may set limits;
// Store, Signer, Certificate, Fingerprint and NodeID are filled in. The
// server and handler are closed when the test ends.
func NewServer(t testing.TB, cfg device.Config) *Server {
	t.Helper()
	id := NewIdentity(t)
	st := NewStore(time.Now)
	if _, err := st.Apply(context.Background(), &core.LoadRights{Source: "test", Sequence: 1, Lines: Rights()}); err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Signer, cfg.Certificate, cfg.Fingerprint = st, id.Key, id.Certificate, id.Fingerprint
	if cfg.NodeID == "" {
		cfg.NodeID = "node1"
	}
	h, err := device.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st.Observe(h.Notify)
	mux := http.NewServeMux()
	mux.Handle(deviceproto.Path, h)
	hs := httptest.NewUnstartedServer(mux)
	hs.EnableHTTP2 = false
	hs.StartTLS()
	t.Cleanup(func() {
		h.Close()
		hs.Close()
	})
	pool := x509.NewCertPool()
	pool.AddCert(hs.Certificate())
	return &Server{
		URL:            strings.Replace(hs.URL, "https://", "wss://", 1) + deviceproto.Path,
		HTTP:           hs,
		Handler:        h,
		Store:          st,
		Identity:       id,
		TLS:            &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSFingerprint: deviceproto.Fingerprint(hs.Certificate().Raw),
	}
}

// Apply applies a command to the server's store or fails the test.
func (s *Server) Apply(t testing.TB, c core.Command) core.Result {
	t.Helper()
	res, err := s.Store.Apply(context.Background(), c)
	if err != nil {
		t.Fatalf("apply %s: %v", c.Type(), err)
	}
	return res
}

// Used returns the used count of a feature at exactly a version.
func (s *Server) Used(t testing.TB, name, ver string) int64 {
	t.Helper()
	var used int64
	err := s.Store.Read(context.Background(), func(st *core.State) error {
		d, err := st.FeatureDetails(name, version.MustParse(ver))
		used = d.Used
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return used
}

// Read runs fn on the server's state or fails the test.
func (s *Server) Read(t testing.TB, fn func(*core.State) error) {
	t.Helper()
	if err := s.Store.Read(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// CreateKeys creates n active first-authentication keys of type typ with
// random secrets and returns their IDs and secrets, in the same order.
func (s *Server) CreateKeys(t testing.TB, typ core.KeyType, n int) (ids, secrets []string) {
	t.Helper()
	batch := s.keyBatches.Add(1)
	keys := make([]core.NewKey, n)
	for i := range keys {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		keys[i] = core.NewKey{ID: fmt.Sprintf("%s-%d-%d", strings.ToLower(typ.String()), batch, i), Secret: base64.RawURLEncoding.EncodeToString(b)}
		ids, secrets = append(ids, keys[i].ID), append(secrets, keys[i].Secret)
	}
	s.Apply(t, &core.CreateKeys{KeyType: typ, Keys: keys})
	return ids, secrets
}
