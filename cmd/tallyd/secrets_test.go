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

func TestRestoreIdentity(t *testing.T) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	old, err := loadIdentity(dir, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	oldKey, _ := os.ReadFile(filepath.Join(dir, identityKeyFile))
	oldCert, _ := os.ReadFile(filepath.Join(dir, identityCertFile))
	restored, err := licensingid.Generate(now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := &identityRestorer{dataDir: dir}
	if err := r.restore(restored); err != nil {
		t.Fatal(err)
	}
	got, err := loadIdentity(dir, now, rand.Reader)
	if err != nil || got.Fingerprint() != restored.Fingerprint() || !got.Key.Equal(restored.Key) {
		t.Fatalf("after restore: %v", err)
	}
	prevKey, _ := os.ReadFile(filepath.Join(dir, identityKeyFile+previousSuffix))
	prevCert, _ := os.ReadFile(filepath.Join(dir, identityCertFile+previousSuffix))
	if !bytes.Equal(prevKey, oldKey) || !bytes.Equal(prevCert, oldCert) {
		t.Error("the replaced pair is not kept as .previous")
	}
	for _, name := range []string{identityKeyFile, identityCertFile, identityKeyFile + previousSuffix} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", name, fi, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), restoringSuffix) || strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	if old.Fingerprint() == got.Fingerprint() {
		t.Fatal("two generated IDs are the same")
	}
}

// TestRestoreInterrupted checks the starts after a crash in the middle of
// a restore: before the key is renamed nothing happened; after it the
// certificate follows.
func TestRestoreInterrupted(t *testing.T) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	restored, err := licensingid.Generate(now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := restored.KeyPEM()
	for _, c := range []struct {
		name        string
		keyRenamed  bool
		wantRestore bool
	}{
		{"before the key's rename", false, false},
		{"after the key's rename", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			current, err := loadIdentity(dir, now, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			keyPath, certPath := filepath.Join(dir, identityKeyFile), filepath.Join(dir, identityCertFile)
			os.WriteFile(certPath+restoringSuffix, restored.CertificatePEM(), 0o600)
			if c.keyRenamed {
				os.WriteFile(keyPath, keyPEM, 0o600)
			} else {
				os.WriteFile(keyPath+restoringSuffix, keyPEM, 0o600)
			}
			got, err := loadIdentity(dir, now, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			want := current
			if c.wantRestore {
				want = restored
			}
			if got.Fingerprint() != want.Fingerprint() {
				t.Errorf("started with %s, want %s", got.Fingerprint(), want.Fingerprint())
			}
			for _, p := range []string{keyPath + restoringSuffix, certPath + restoringSuffix} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s is left behind", p)
				}
			}
		})
	}
}
