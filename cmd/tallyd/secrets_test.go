package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/licensingid"
)

func TestAdminPassword(t *testing.T) {
	noEnv := func(string) string { return "" }
	dir := t.TempDir()
	p1, src, err := adminPassword(dir, noEnv, rand.Reader)
	if err != nil || len(p1) < 20 || src != filepath.Join(dir, initialPasswordFile) {
		t.Fatalf("generated %q from %q: %v", p1, src, err)
	}
	if fi, _ := os.Stat(src); fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file mode %v, want 0600", fi.Mode().Perm())
	}
	// A restart keeps the same password, even with the variable set later.
	env := func(k string) string { return map[string]string{"TALLY_ADMIN_PASSWORD": "from-env"}[k] }
	if p2, _, _ := adminPassword(dir, env, rand.Reader); p2 != p1 {
		t.Fatalf("restart gave %q, want %q", p2, p1)
	}
	// With the variable set before the first start, nothing is written.
	dir2 := t.TempDir()
	if p, src, _ := adminPassword(dir2, env, rand.Reader); p != "from-env" || src != "TALLY_ADMIN_PASSWORD" {
		t.Fatalf("env: %q from %q", p, src)
	}
	if _, err := os.Stat(filepath.Join(dir2, initialPasswordFile)); err == nil {
		t.Fatal("a password from the environment was written to disk")
	}
	pwFile := filepath.Join(dir2, "pw")
	os.WriteFile(pwFile, []byte("  from-file\n"), 0o600)
	fileEnv := func(k string) string { return map[string]string{"TALLY_ADMIN_PASSWORD_FILE": pwFile}[k] }
	if p, _, err := adminPassword(dir2, fileEnv, rand.Reader); p != "from-file" || err != nil {
		t.Fatalf("file: %q %v", p, err)
	}
	if _, _, err := adminPassword(t.TempDir(), noEnv, bytes.NewReader(nil)); err == nil {
		t.Fatal("no randomness, yet a password")
	}
}

func TestIdentityIsKept(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	id1, err := loadIdentity(dir, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := loadIdentity(dir, now, rand.Reader)
	if err != nil || !id1.Key.Equal(id2.Key) || id1.Fingerprint() != id2.Fingerprint() {
		t.Fatalf("second start: %v", err)
	}
	fp := id1.Fingerprint()
	if len(fp) != 95 || strings.ToUpper(fp) != fp || strings.Count(fp, ":") != 31 {
		t.Fatalf("fingerprint %q", fp)
	}
	if openssl, err := exec.LookPath("openssl"); err == nil {
		out, err := exec.Command(openssl, "x509", "-noout", "-fingerprint", "-sha256", "-in", filepath.Join(dir, identityCertFile)).Output()
		if err != nil {
			t.Fatalf("openssl: %v", err)
		}
		if got := strings.TrimSpace(string(out)); !strings.HasSuffix(got, "="+fp) {
			t.Fatalf("openssl prints %q, we say %q", got, fp)
		}
	}
	os.WriteFile(filepath.Join(dir, identityKeyFile), []byte("garbage"), 0o600)
	if _, err := loadIdentity(dir, now, rand.Reader); err == nil {
		t.Fatal("a damaged key was accepted")
	}
	other := t.TempDir()
	if _, err := loadIdentity(other, now, rand.Reader); err != nil {
		t.Fatal(err)
	}
	// A certificate that belongs to another key is refused.
	cert, _ := os.ReadFile(filepath.Join(other, identityCertFile))
	dir3 := t.TempDir()
	if _, err := loadIdentity(dir3, now, rand.Reader); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir3, identityCertFile), cert, 0o600)
	if _, err := loadIdentity(dir3, now, rand.Reader); err == nil || !errors.Is(err, licensingid.ErrMismatch) {
		t.Fatalf("mismatched certificate: %v", err)
	}
}

func TestNodeIDIsKept(t *testing.T) {
	dir := t.TempDir()
	if id, err := nodeID(dir, "n1"); err != nil || id != "n1" {
		t.Fatalf("first start: %q %v", id, err)
	}
	if id, err := nodeID(dir, ""); err != nil || id != "n1" {
		t.Fatalf("restart without --node-id: %q %v", id, err)
	}
	if _, err := nodeID(dir, "n2"); err == nil || !strings.Contains(err.Error(), `belongs to node "n1"`) {
		t.Fatalf("restart as another node: %v", err)
	}
	if id, err := nodeID(t.TempDir(), ""); err != nil || id == "" {
		t.Fatalf("default: %q %v", id, err)
	}
}
