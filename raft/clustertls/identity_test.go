package clustertls

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestIdentityRoundTrip(t *testing.T) {
	ca := newTestCA(t, "c1")
	id := newTestNode(t, ca, "node-1")
	dir := filepath.Join(t.TempDir(), "tls")
	if err := id.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.NodeID != "node-1" {
		t.Errorf("node ID %q", got.NodeID)
	}
	if !got.CA.Equal(ca.Cert) || !got.Cert.Leaf.Equal(id.Cert.Leaf) {
		t.Error("loaded certificates differ from the saved ones")
	}
	if !got.Cert.PrivateKey.(*ecdsa.PrivateKey).Equal(id.Cert.PrivateKey) {
		t.Error("loaded key differs from the saved one")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Errorf("directory holds %d files, want 3 (no temporary files left)", len(entries))
	}
	for _, name := range []string{CAFile, NodeFile, NodeKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	// Saving again replaces the files.
	other := newTestNode(t, ca, "node-2")
	if err := other.Save(dir); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadIdentity(dir); err != nil || got.NodeID != "node-2" {
		t.Errorf("after saving node-2: %v, %v", got, err)
	}
}

func TestLoadIdentityMissing(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadIdentity(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadIdentity of an empty directory = %v, want fs.ErrNotExist", err)
	}
	if err := newTestNode(t, newTestCA(t, "c1"), "n1").Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, NodeKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadIdentity without a key = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadIdentityRefuses(t *testing.T) {
	ca := newTestCA(t, "c1")
	otherCA := newTestCA(t, "c2")
	id := newTestNode(t, ca, "node-1")
	sibling := newTestNode(t, ca, "node-2")
	foreign := newTestNode(t, otherCA, "node-1")

	certPEM := func(der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	keyPEM := func(id *Identity) []byte {
		b, err := marshalKeyPEM(id.Cert.PrivateKey.(*ecdsa.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := map[string][]byte{
		CAFile:      certPEM(ca.CertDER),
		NodeFile:    certPEM(id.Cert.Certificate[0]),
		NodeKeyFile: keyPEM(id),
	}
	tests := []struct {
		name    string
		file    string
		content []byte
	}{
		{"key of another node", NodeKeyFile, keyPEM(sibling)},
		{"certificate from another CA", NodeFile, certPEM(foreign.Cert.Certificate[0])},
		{"another CA", CAFile, certPEM(otherCA.CertDER)},
		{"node certificate as CA", CAFile, certPEM(sibling.Cert.Certificate[0])},
		{"CA as node certificate", NodeFile, certPEM(ca.CertDER)},
		{"damaged certificate", NodeFile, bytes.Replace(good[NodeFile], []byte("MII"), []byte("MIX"), 1)},
		{"damaged key", NodeKeyFile, good[NodeKeyFile][:len(good[NodeKeyFile])/2]},
		{"empty CA", CAFile, nil},
		{"key in certificate file", NodeFile, good[NodeKeyFile]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range good {
				if name == tt.file {
					content = tt.content
				}
				if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := LoadIdentity(dir); !errors.Is(err, ErrBadIdentity) {
				t.Errorf("LoadIdentity = %v, want ErrBadIdentity", err)
			}
		})
	}
}

func TestNewIdentityRefusesMismatch(t *testing.T) {
	ca := newTestCA(t, "c1")
	id := newTestNode(t, ca, "n1")
	if _, err := NewIdentity(ca.CertDER, id.Cert.Certificate[0], mustNodeKey(t)); !errors.Is(err, ErrBadIdentity) {
		t.Errorf("NewIdentity with another key = %v, want ErrBadIdentity", err)
	}
	if _, err := NewIdentity(ca.CertDER, id.Cert.Certificate[0], nil); !errors.Is(err, ErrBadIdentity) {
		t.Errorf("NewIdentity without a key = %v, want ErrBadIdentity", err)
	}
	if err := (&Identity{}).Save(t.TempDir()); !errors.Is(err, ErrBadIdentity) {
		t.Errorf("saving an empty identity = %v, want ErrBadIdentity", err)
	}
}
