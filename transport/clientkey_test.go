package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tallyhq/tally/core/licensingid"
)

// rsaKeys caches the test RSA keys by size; a 4096-bit one takes a while.
var rsaKeys sync.Map

func rsaKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	if k, ok := rsaKeys.Load(bits); ok {
		return k.(*rsa.PrivateKey)
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	actual, _ := rsaKeys.LoadOrStore(bits, k)
	return actual.(*rsa.PrivateKey)
}

// rsaSPKI is the DER SubjectPublicKeyInfo of an RSA key of bits.
func rsaSPKI(t testing.TB, bits int) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&rsaKey(t, bits).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestClientKey(t *testing.T) {
	e := newTestEnv(t)
	var got clientKeyResponse
	r := e.do("GET", "/api/v1/client-key", "", "", true)
	r.json(t, &got)
	if r.status != http.StatusOK || got.Present || strings.Contains(string(r.body), "fingerprint") {
		t.Fatalf("no client key yet: %d %s", r.status, r.body)
	}

	spki := rsaSPKI(t, 2048)
	want := clientKeyResponse{Present: true, Bits: 2048, Fingerprint: licensingid.Fingerprint(spki)}
	for name, der := range map[string][]byte{
		"SubjectPublicKeyInfo": spki,
		"PKCS#1":               x509.MarshalPKCS1PublicKey(&rsaKey(t, 2048).PublicKey),
	} {
		r := e.do("POST", "/api/v1/client-key", "application/octet-stream", string(der), true)
		got = clientKeyResponse{}
		r.json(t, &got)
		if r.status != http.StatusOK || got != want {
			t.Fatalf("%s: %d %s, want %+v", name, r.status, r.body, want)
		}
		r = e.do("GET", "/api/v1/client-key", "", "", true)
		got = clientKeyResponse{}
		r.json(t, &got)
		if got != want {
			t.Fatalf("%s: GET %s, want %+v", name, r.body, want)
		}
	}
	last, _ := auditTail(e)
	if last.Action != "setClientKey" || last.User != "admin" {
		t.Errorf("audit: %+v", last)
	}

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	for _, c := range []struct {
		name, body, want string
	}{
		{"RSA-1024", string(rsaSPKI(t, 1024)), "1024-bit RSA key"},
		{"RSA-1024 PKCS#1", string(x509.MarshalPKCS1PublicKey(&rsaKey(t, 1024).PublicKey)), "1024-bit"},
		{"RSA-4096", string(rsaSPKI(t, 4096)), "4096-bit RSA key"},
		{"ECDSA", string(ecDER), "ECDSA public key"},
		{"garbage", "not a key at all", "not the DER of an RSA public key"},
		{"truncated", string(spki[:len(spki)-10]), "not the DER"},
		{"trailing data", string(spki) + "x", "not the DER"},
		{"empty", "", "the body is empty"},
		{"oversized", strings.Repeat("x", 4097), "larger than 4096 bytes"},
		{"PEM", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})), "this is PEM"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.store.snapshot(t)
			r := e.do("POST", "/api/v1/client-key", "application/octet-stream", c.body, true)
			wantError(t, r, http.StatusBadRequest, "invalid_client_key")
			if !strings.Contains(string(r.body), c.want) {
				t.Errorf("message %s does not say %q", r.body, c.want)
			}
			if string(before) != string(e.store.snapshot(t)) {
				t.Error("a refused client key changed the state")
			}
		})
	}
	e.wantRefused(t, "POST", "/api/v1/client-key", "application/json", string(spki), 415, "unsupported_media_type")
}
