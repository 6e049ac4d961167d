package httpconn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/plugins"
)

// backOffice is an httptest TLS server that answers each POST with the
// next of its statuses (the last one repeating) and counts the tries.
type backOffice struct {
	*httptest.Server
	tries atomic.Int32
	paths chan string
}

func newBackOffice(t *testing.T, statuses ...int) *backOffice {
	t.Helper()
	b := &backOffice{paths: make(chan string, 100)}
	b.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(b.tries.Add(1))
		body, _ := io.ReadAll(r.Body)
		b.paths <- r.Method + " " + r.URL.Path + " " + r.Header.Get("Content-Type")
		status := statuses[min(n, len(statuses))-1]
		w.WriteHeader(status)
		if status == http.StatusOK {
			w.Write(append([]byte("signed:"), body...))
		} else {
			w.Write([]byte("answer\x00 with\ncontrol characters"))
		}
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backOffice) pin() string {
	sum := sha256.Sum256(b.Certificate().Raw)
	return hex.EncodeToString(sum[:])
}

// connector returns a connector for the back office, trusting it by pin,
// with waits short enough for a test.
func (b *backOffice) connector(t *testing.T, cfg Config) *Connector {
	t.Helper()
	cfg.URL = b.URL
	if cfg.CAFile == "" && cfg.PinSHA256 == "" {
		cfg.PinSHA256 = b.pin()
	}
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRetriesOn503ThenSucceeds(t *testing.T) {
	b := newBackOffice(t, 503, 503, 200)
	resp, err := b.connector(t, Config{}).Exchange(context.Background(), []byte("request"))
	if err != nil || string(resp) != "signed:request" {
		t.Fatalf("Exchange = %q, %v", resp, err)
	}
	if n := b.tries.Load(); n != 3 {
		t.Fatalf("%d tries, want 3", n)
	}
	if p := <-b.paths; p != "POST /v1/exchange application/octet-stream" {
		t.Fatalf("request: %s", p)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	b := newBackOffice(t, 502)
	_, err := b.connector(t, Config{Attempts: 3}).Exchange(context.Background(), []byte("request"))
	if !errors.Is(err, plugins.ErrUnreachable) || !strings.Contains(err.Error(), "502") {
		t.Fatalf("Exchange: %v, want ErrUnreachable with the status", err)
	}
	if n := b.tries.Load(); n != 3 {
		t.Fatalf("%d tries, want 3", n)
	}
}

func TestClientErrorIsFinal(t *testing.T) {
	b := newBackOffice(t, 400, 200)
	err := b.connector(t, Config{}).ReportUsage(context.Background(), []byte("usage"))
	if !errors.Is(err, plugins.ErrRejected) {
		t.Fatalf("ReportUsage: %v, want ErrRejected", err)
	}
	if strings.ContainsAny(err.Error(), "\x00\n") {
		t.Errorf("error quotes control characters: %q", err)
	}
	if n := b.tries.Load(); n != 1 {
		t.Fatalf("%d tries, want 1", n)
	}
}

func TestPinMismatchIsRefused(t *testing.T) {
	b := newBackOffice(t, 200)
	c := b.connector(t, Config{PinSHA256: strings.Repeat("00", 32)})
	err := c.RegisterLicensingID(context.Background(), []byte("cert"))
	if !errors.Is(err, plugins.ErrUnreachable) || !errors.Is(err, errPinMismatch) {
		t.Fatalf("RegisterLicensingID: %v, want a pin mismatch", err)
	}
	if n := b.tries.Load(); n != 0 {
		t.Fatalf("the back office saw %d requests past a pin mismatch", n)
	}
}

func TestTrustByCAFile(t *testing.T) {
	b := newBackOffice(t, 204)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	c := b.connector(t, Config{CAFile: ca})
	if err := c.RegisterLicensingID(context.Background(), []byte("cert")); err != nil {
		t.Fatalf("RegisterLicensingID: %v", err)
	}
	if p := <-b.paths; p != "POST /v1/licensing-id application/pkix-cert" {
		t.Fatalf("request: %s", p)
	}
	// 204 to an exchange: accepted, nothing to hand back yet.
	if _, err := c.Exchange(context.Background(), []byte("request")); !errors.Is(err, plugins.ErrNoResponseYet) {
		t.Fatalf("Exchange: %v, want ErrNoResponseYet", err)
	}
	// Without the CA or pin, the test server's certificate is not trusted.
	plain, err := New(Config{URL: b.URL, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.ReportUsage(context.Background(), []byte("usage")); !errors.Is(err, plugins.ErrUnreachable) {
		t.Fatalf("untrusted back office: %v", err)
	}
}

func TestResponseSizeIsBounded(t *testing.T) {
	b := newBackOffice(t, 200)
	_, err := b.connector(t, Config{MaxResponse: 8}).Exchange(context.Background(), []byte("too long a request to echo"))
	if !errors.Is(err, plugins.ErrTooLarge) {
		t.Fatalf("Exchange: %v, want ErrTooLarge", err)
	}
}

func TestRetriesStopAtTheDeadline(t *testing.T) {
	b := newBackOffice(t, 503)
	c := b.connector(t, Config{Attempts: 1000})
	c.cfg.MinBackoff, c.cfg.MaxBackoff = 50*time.Millisecond, 50*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.Exchange(ctx, []byte("request"))
	// The last try's answer is the error, not just "deadline exceeded".
	if !errors.Is(err, plugins.ErrUnreachable) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Exchange: %v", err)
	}
	if n := b.tries.Load(); n >= 1000 {
		t.Fatalf("%d tries despite the deadline", n)
	}
}

func TestConfigIsChecked(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "http://backoffice.example"},
		{URL: "backoffice.example"},
		{URL: "https://backoffice.example", CAFile: "ca.pem", PinSHA256: strings.Repeat("00", 32)},
		{URL: "https://backoffice.example", PinSHA256: "00"},
		{URL: "https://backoffice.example", CAFile: filepath.Join(t.TempDir(), "missing.pem")},
	} {
		if _, err := New(cfg); !errors.Is(err, plugins.ErrInvalid) {
			t.Errorf("New(%+v): %v, want ErrInvalid", cfg, err)
		}
	}
}
