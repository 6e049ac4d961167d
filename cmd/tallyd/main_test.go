package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/password"
	"github.com/tallyhq/tally/transport/device/devicetest"
	"github.com/tallyhq/tally/transport/discovery"
)

func noEnv(string) string { return "" }

func TestCommandLine(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, io.Discard, noEnv); err != nil || !strings.HasPrefix(out.String(), "tallyd ") {
		t.Fatalf("version: %q %v", out.String(), err)
	}
	for _, args := range [][]string{
		{"--nope"},
		{"--dev", "extra"},
		{"--https-port", "70000"},
		{"--join", "10.0.0.1:8443"},
		{"--tls-cert", "only-the-cert.pem"},
	} {
		if err := run(context.Background(), args, &out, io.Discard, noEnv); err == nil {
			t.Errorf("tallyd %v: no error", args)
		}
	}
}

// syncBuffer is a bytes.Buffer that the daemon writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var runningAt = regexp.MustCompile(`is running at (https://\S+)`)

// TestDevServesAndStops starts a --dev node in-process on an ephemeral
// port, reads its health and demo features over HTTPS, and stops it the way
// SIGTERM does.
func TestDevServesAndStops(t *testing.T) {
	dir := t.TempDir()
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--dev", "--data-dir", dir, "--https-port", "0", "--discovery-port", "0", "--node-id", "n1"}, &out, io.Discard, noEnv)
	}()
	var url string
	for i := 0; i < 600 && url == ""; i++ {
		if m := runningAt.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("tallyd stopped: %v\n%s", err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if url == "" {
		cancel()
		t.Fatalf("tallyd did not say where it runs:\n%s", out.String())
	}
	if !strings.Contains(out.String(), filepath.Join(dir, initialPasswordFile)) {
		t.Errorf("output does not say where the admin password is:\n%s", out.String())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Get(url + "api/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	var health struct{ Status, Fingerprint string }
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if health.Status != "ok" || len(health.Fingerprint) != 95 {
		t.Errorf("health: %+v", health)
	}

	password, _ := os.ReadFile(filepath.Join(dir, initialPasswordFile))
	body := strings.NewReader(`{"user":"admin","password":"` + strings.TrimSpace(string(password)) + `"}`)
	resp, err = client.Post(url+"api/v1/auth/login", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	req, _ := http.NewRequest("GET", url+"api/v1/features", nil)
	req.Header.Set("Authorization", "Bearer "+login.Token)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var features struct{ Total int }
	json.NewDecoder(resp.Body).Decode(&features)
	resp.Body.Close()
	if features.Total == 0 {
		t.Errorf("the demo rights are not installed")
	}

	// Devices on the LAN find the node by DISCOVER; the OFFER is signed
	// with the main licensing ID and names the device endpoint.
	m := regexp.MustCompile(`Discovery on UDP (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("tallyd does not say where discovery listens:\n%s", out.String())
	}
	target, err := netip.ParseAddrPort(m[1])
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	offers, err := discovery.Discover(context.Background(), discovery.ClientConfig{Conn: conn,
		Targets: []netip.AddrPort{target}, PinnedFingerprint: health.Fingerprint, Timeout: 30 * time.Second, StopAfter: 1})
	if err != nil || len(offers) != 1 || !strings.Contains(strings.Join(offers[0].URLs(), " "), "/ws/device") {
		t.Fatalf("discover: %+v %v", offers, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("tallyd did not stop")
	}
}

// TestBootstrapAccess checks the first start's administrator and token
// key, their audit records, and that a later start changes nothing and
// writes no password file.
func TestBootstrapAccess(t *testing.T) {
	store := devicetest.NewStore(time.Now)
	env := func(k string) string {
		if k == "TALLY_ADMIN_PASSWORD" {
			return "first start password"
		}
		return ""
	}
	dir := t.TempDir()
	note, err := bootstrapAccess(context.Background(), store, dir, env, rand.Reader)
	if err != nil || note != "from TALLY_ADMIN_PASSWORD" {
		t.Fatalf("first start: %q %v", note, err)
	}
	var hash string
	var roles []core.Role
	var key []byte
	var audit []core.AuditRecord
	read := func() {
		store.Read(context.Background(), func(s *core.State) error {
			hash, roles, _, err = s.Credentials("admin")
			key, audit = s.TokenKey(), nil
			// The node raises the state level on its own, at a moment of
			// its own; that record is not bootstrapAccess's.
			for _, r := range s.Audit(0, 0) {
				if r.Action != "raiseLevel" {
					audit = append(audit, r)
				}
			}
			return nil
		})
	}
	read()
	if err != nil || len(roles) != 1 || roles[0] != core.RoleAdmin || len(key) != core.TokenKeyLen {
		t.Fatalf("admin %v %v, key %d bytes", roles, err, len(key))
	}
	if ok, err := password.Verify(hash, "first start password"); !ok || err != nil {
		t.Errorf("the admin's hash does not verify the initial password: %v", err)
	}
	if len(audit) != 2 || audit[0].Action != "setTokenKey" || audit[1].Action != "createUser" ||
		audit[1].User != "tallyd" || audit[1].Address != "local" || strings.Contains(audit[1].Detail, "password") {
		t.Errorf("audit %+v", audit)
	}

	firstKey := key
	note, err = bootstrapAccess(context.Background(), store, dir, noEnv, rand.Reader)
	if err != nil || !strings.Contains(note, "unchanged") {
		t.Fatalf("second start: %q %v", note, err)
	}
	read()
	if !bytes.Equal(key, firstKey) || len(audit) != 2 {
		t.Errorf("a second start changed the key or the log: %d records", len(audit))
	}
	if _, err := os.Stat(filepath.Join(dir, initialPasswordFile)); err == nil {
		t.Error("a start with users wrote a password file")
	}
}
