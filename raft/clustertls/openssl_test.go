package clustertls

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// These tests hold the certificates to a second implementation. They are
// skipped where openssl is not installed.

func openssl(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func needOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not on PATH")
	}
}

func TestOpenSSLVerifiesNodeCertificate(t *testing.T) {
	needOpenSSL(t)
	ca := newTestCA(t, "c1")
	dir := t.TempDir()
	if err := newTestNode(t, ca, "node-1").Save(dir); err != nil {
		t.Fatal(err)
	}
	for _, purpose := range []string{"", "sslserver", "sslclient"} {
		args := []string{"verify", "-attime", strconv.FormatInt(testNow.Unix(), 10), "-CAfile", CAFile}
		if purpose != "" {
			args = append(args, "-purpose", purpose)
		}
		if out := openssl(t, dir, append(args, NodeFile)...); strings.TrimSpace(out) != NodeFile+": OK" {
			t.Errorf("openssl verify (purpose %q): %s", purpose, out)
		}
	}
	text := openssl(t, dir, "x509", "-noout", "-text", "-in", NodeFile)
	for _, want := range []string{
		"DNS:node-1.node.tally",
		"TLS Web Server Authentication",
		"TLS Web Client Authentication",
		"Digital Signature",
		"prime256v1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl x509 -text of %s lacks %q:\n%s", NodeFile, want, text)
		}
	}
	names := openssl(t, dir, "x509", "-noout", "-subject", "-issuer", "-nameopt", "RFC2253", "-in", NodeFile)
	if want := "subject=CN=node-1\nissuer=CN=Tally cluster CA c1\n"; names != want {
		t.Errorf("openssl names %q, want %q", names, want)
	}
	caText := openssl(t, dir, "x509", "-noout", "-text", "-in", CAFile)
	for _, want := range []string{"CA:TRUE, pathlen:0", "Certificate Sign, CRL Sign"} {
		if !strings.Contains(caText, want) {
			t.Errorf("openssl x509 -text of %s lacks %q:\n%s", CAFile, want, caText)
		}
	}
	openssl(t, dir, "pkey", "-noout", "-in", NodeKeyFile)
}

// TestSignOpenSSLRequest signs a request openssl made and loads the result
// with openssl's key.
func TestSignOpenSSLRequest(t *testing.T) {
	needOpenSSL(t)
	ca := newTestCA(t, "c1")
	dir := t.TempDir()
	openssl(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
		"-nodes", "-keyout", "key.pem", "-subj", "/CN=node-9", "-outform", "DER", "-out", "csr.der")
	csr, err := os.ReadFile(filepath.Join(dir, "csr.der"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	certDER, err := ca.SignNode(csr, "node-9", testNow, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	id, err := NewIdentity(ca.CertDER, certDER, key)
	if err != nil {
		t.Fatal(err)
	}
	if id.NodeID != "node-9" {
		t.Errorf("node ID %q, want node-9", id.NodeID)
	}
}
