package transport

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCertificateGeneratedOnceAndReloaded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cert, err := LoadOrCreateCertificate("", "", dir, []string{"tally.example", "192.0.2.10", "0.0.0.0", ""}, t0, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Error("certificate is not its own CA")
	}
	if !leaf.NotAfter.Equal(t0.Add(certValidity)) || leaf.NotBefore.After(t0) {
		t.Errorf("validity %s .. %s", leaf.NotBefore, leaf.NotAfter)
	}
	if !slices.Equal(leaf.DNSNames, []string{"tally.example", "localhost"}) {
		t.Errorf("DNS names %v", leaf.DNSNames)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(ips, []string{"192.0.2.10", "127.0.0.1", "::1"}) {
		t.Errorf("IP addresses %v", ips)
	}
	for _, host := range []string{"tally.example", "localhost", "127.0.0.1", "::1", "192.0.2.10"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	info, err := os.Stat(filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", info.Mode().Perm())
	}
	// A client that trusts the file verifies the server.
	pemBytes, _ := os.ReadFile(filepath.Join(dir, "tls.crt"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost", CurrentTime: t0.Add(time.Hour)}); err != nil {
		t.Errorf("verify against the file: %v", err)
	}

	again, err := LoadOrCreateCertificate("", "", dir, []string{"other.example"}, t0.Add(time.Hour), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Certificate[0], cert.Certificate[0]) {
		t.Error("second start generated a new certificate")
	}
	again2, _ := os.ReadFile(filepath.Join(dir, "tls.crt"))
	if !bytes.Equal(pemBytes, again2) {
		t.Error("certificate file rewritten")
	}

	t.Run("openssl fingerprint", func(t *testing.T) {
		openssl, err := exec.LookPath("openssl")
		if err != nil {
			t.Skip("openssl is not installed")
		}
		out, err := exec.Command(openssl, "x509", "-noout", "-fingerprint", "-sha256", "-in", filepath.Join(dir, "tls.crt")).Output()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(cert.Certificate[0])
		var hexPairs []string
		for _, b := range sum {
			hexPairs = append(hexPairs, fmt.Sprintf("%02X", b))
		}
		_, got, _ := strings.Cut(strings.TrimSpace(string(out)), "=")
		if got != strings.Join(hexPairs, ":") {
			t.Errorf("openssl says %s, want %s", got, strings.Join(hexPairs, ":"))
		}
	})
}

func TestCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreateCertificate("", "", dir, nil, t0, nil); err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if _, err := LoadOrCreateCertificate(crt, key, "", nil, t0, nil); err != nil {
		t.Errorf("given files: %v", err)
	}
	other := t.TempDir()
	if _, err := LoadOrCreateCertificate("", "", other, nil, t0, nil); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ crt, key string }{
		"mismatched":   {crt, filepath.Join(other, "tls.key")},
		"missing cert": {filepath.Join(dir, "nope.crt"), key},
		"missing key":  {crt, filepath.Join(dir, "nope.key")},
		"key as cert":  {key, key},
		"only cert":    {crt, ""},
	} {
		_, err := LoadOrCreateCertificate(c.crt, c.key, dir, nil, t0, nil)
		if !errors.Is(err, ErrCertificate) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Only one of the pair in the data directory: refuse, do not overwrite.
	os.Remove(crt)
	if _, err := LoadOrCreateCertificate("", "", dir, nil, t0, nil); !errors.Is(err, ErrCertificate) {
		t.Errorf("key without certificate: %v", err)
	}
	if _, err := os.Stat(crt); err == nil {
		t.Error("certificate regenerated beside an existing key")
	}
}

func TestTLSConfig(t *testing.T) {
	cert, err := LoadOrCreateCertificate("", "", t.TempDir(), nil, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", TLSConfig(cert))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	dial := func(cfg *tls.Config) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), cfg)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	if err := dial(&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}); err != nil {
		t.Errorf("TLS 1.2: %v", err)
	}
	if err := dial(&tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Errorf("TLS 1.3: %v", err)
	}
}
