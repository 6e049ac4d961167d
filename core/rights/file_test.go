package rights_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/internal/envelope/envelopetest"
	"github.com/tallyhq/tally/core/rights"
)

// serverFP and otherFP stand for the certificate fingerprints of two servers.
const (
	serverFP = "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF"
	otherFP  = "FE:DC:BA:98:76:54:32:10:FE:DC:BA:98:76:54:32:10:FE:DC:BA:98:76:54:32:10:FE:DC:BA:98:76:54:32:10"
)

var fingerprintForm = regexp.MustCompile(`^[0-9A-F]{2}(:[0-9A-F]{2}){31}$`)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := rights.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func sampleRights(now time.Time) rights.Rights {
	return rights.Rights{
		Server:   serverFP,
		Source:   "acme-2025",
		Sequence: 7,
		Issued:   now,
		Lines:    rights.DemoLines(now),
		Locks:    map[string]string{"server.allowDeviceDrop": "false"},
	}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	now := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	key := newKey(t)
	r := sampleRights(now)
	file, err := rights.Issue(key, r, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rights.NewVerifier(serverFP, newKey(t).Public().(*ecdsa.PublicKey), &key.PublicKey).Verify(file)
	if err != nil {
		t.Fatal(err)
	}
	want := &core.LoadRights{Source: r.Source, Sequence: r.Sequence, Locks: r.Locks}
	for _, l := range r.Lines {
		l.Source = r.Source
		want.Lines = append(want.Lines, l)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Verify returned\n%+v\nwant\n%+v", got, want)
	}

	// The envelope is what the package documentation says.
	var env map[string]string
	if err := json.Unmarshal(file, &env); err != nil {
		t.Fatal(err)
	}
	if env["format"] != "tally-rights/1" || env["key"] != rights.KeyFingerprint(&key.PublicKey) || len(env) != 4 {
		t.Fatalf("envelope %v", env)
	}
	body, _ := base64.StdEncoding.DecodeString(env["payload"])
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if p["server"] != serverFP || p["source"] != "acme-2025" || p["sequence"] != 7.0 || p["issued"] != "2025-03-14T15:09:26Z" {
		t.Fatalf("payload %v", p)
	}

	// The verified command is one core accepts.
	s := core.New(core.Config{})
	if _, err := s.Apply(core.Request{ID: core.RequestID{Session: 1, Seq: 1}, At: now, Command: got}); err != nil {
		t.Fatalf("core refuses verified rights: %v", err)
	}
}

func TestIssueRefusesIncompleteRights(t *testing.T) {
	key := newKey(t)
	for name, r := range map[string]rights.Rights{
		"no server":  {Source: "s", Sequence: 1},
		"no source":  {Server: serverFP, Sequence: 1},
		"sequence 0": {Server: serverFP, Source: "s"},
	} {
		if _, err := rights.Issue(key, r, nil); !errors.Is(err, rights.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	if _, err := rights.Issue(nil, rights.Rights{Server: serverFP, Source: "s", Sequence: 1}, nil); !errors.Is(err, rights.ErrInvalidKey) {
		t.Errorf("nil key: %v", err)
	}
}

// sign builds a rights file around payload bytes as Issue would, so tests
// can sign payloads that Issue refuses to make.
func sign(t *testing.T, key *ecdsa.PrivateKey, body []byte) []byte {
	return envelopetest.Seal(t, key, rights.Format, "", rights.KeyFingerprint(&key.PublicKey), body)
}

func envelope(keyFP string, body, sig []byte) []byte {
	return envelopetest.Envelope(rights.Format, keyFP, body, sig)
}

func TestVerifyRefuses(t *testing.T) {
	now := time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)
	key, other := newKey(t), newKey(t)
	good, err := rights.Issue(key, sampleRights(now), nil)
	if err != nil {
		t.Fatal(err)
	}
	env, body, sig := envelopetest.Fields(t, good)
	keyFP := env["key"]
	forOther := sampleRights(now)
	forOther.Server = otherFP
	otherServer, _ := rights.Issue(key, forOther, nil)
	byOther, _ := rights.Issue(other, sampleRights(now), nil)
	_, otherBody, otherSig := envelopetest.Fields(t, byOther)

	tamperedBody := bytes.Replace(body, []byte(`"count":10`), []byte(`"count":99`), 1)
	if bytes.Equal(tamperedBody, body) {
		t.Fatal("the tampering did not change the payload")
	}
	tamperedSig := bytes.Clone(sig)
	tamperedSig[len(tamperedSig)-1] ^= 0x01
	withField := func(extra string) []byte {
		return append(bytes.TrimSuffix(bytes.TrimSpace(bytes.Clone(good)), []byte("}")), ","+extra+"}"...)
	}
	payload := func(s string) []byte { return sign(t, key, []byte(s)) }

	cases := []struct {
		name string
		file []byte
		want error
	}{
		{"signed by an untrusted key", byOther, rights.ErrUntrustedKey},
		{"for another server", otherServer, rights.ErrWrongServer},
		{"tampered payload", envelope(keyFP, tamperedBody, sig), rights.ErrBadSignature},
		{"tampered signature", envelope(keyFP, body, tamperedSig), rights.ErrBadSignature},
		{"signature of another payload", envelope(keyFP, body, otherSig), rights.ErrBadSignature},
		{"another key's payload and signature under a trusted key's name", envelope(keyFP, otherBody, otherSig), rights.ErrBadSignature},
		{"empty signature", envelope(keyFP, body, nil), rights.ErrBadSignature},
		{"wrong format", bytes.Replace(good, []byte("tally-rights/1"), []byte("tally-rights/2"), 1), rights.ErrMalformed},
		{"no format", []byte(`{"key":"x"}`), rights.ErrMalformed},
		{"unknown envelope field", withField(`"comment":"hi"`), rights.ErrMalformed},
		{"unknown payload field", payload(`{"server":"` + serverFP + `","source":"s","sequence":1,"issued":"2025-01-01T00:00:00Z","lines":[],"extra":1}`), rights.ErrMalformed},
		{"unknown line field", payload(`{"server":"` + serverFP + `","source":"s","sequence":1,"issued":"2025-01-01T00:00:00Z","lines":[{"name":"a","version":"1","count":1,"colour":"red"}]}`), rights.ErrMalformed},
		{"bad version in a line", payload(`{"server":"` + serverFP + `","source":"s","sequence":1,"issued":"2025-01-01T00:00:00Z","lines":[{"name":"a","version":"x","count":1}]}`), rights.ErrMalformed},
		{"line of another source", payload(`{"server":"` + serverFP + `","source":"s","sequence":1,"issued":"2025-01-01T00:00:00Z","lines":[{"name":"a","version":"1","count":1,"source":"t"}]}`), rights.ErrMalformed},
		{"empty source", payload(`{"server":"` + serverFP + `","source":" ","sequence":1,"issued":"2025-01-01T00:00:00Z","lines":[]}`), rights.ErrMalformed},
		{"sequence 0", payload(`{"server":"` + serverFP + `","source":"s","sequence":0,"issued":"2025-01-01T00:00:00Z","lines":[]}`), rights.ErrMalformed},
		{"negative sequence", payload(`{"server":"` + serverFP + `","source":"s","sequence":-1,"issued":"2025-01-01T00:00:00Z","lines":[]}`), rights.ErrMalformed},
		{"payload with trailing data", payload(`{"server":"` + serverFP + `","source":"s","sequence":1,"issued":"2025-01-01T00:00:00Z","lines":[]} {}`), rights.ErrMalformed},
		{"payload not JSON", payload(`server=` + serverFP), rights.ErrMalformed},
		{"bad payload base64", bytes.Replace(good, []byte(`"payload":"`), []byte(`"payload":"!`), 1), rights.ErrMalformed},
		{"bad signature base64", bytes.Replace(good, []byte(`"signature":"`), []byte(`"signature":"*`), 1), rights.ErrMalformed},
		{"truncated", good[:len(good)/2], rights.ErrMalformed},
		{"trailing data", append(bytes.Clone(good), "{}"...), rights.ErrMalformed},
		{"empty", nil, rights.ErrMalformed},
		{"not JSON", []byte("-----BEGIN PRIVATE KEY-----"), rights.ErrMalformed},
		{"huge", append(bytes.Clone(good), bytes.Repeat([]byte(" "), rights.MaxFileBytes)...), rights.ErrMalformed},
	}
	v := rights.NewVerifier(serverFP, &key.PublicKey)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := v.Verify(c.file)
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, %v; want an error wrapping %q", got, err, c.want)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || len(msg) > 400 {
				t.Errorf("error is not one short line: %q", msg)
			}
		})
	}

	if _, err := rights.NewVerifier(serverFP).Verify(good); !errors.Is(err, rights.ErrUntrustedKey) {
		t.Errorf("a verifier trusting no key: %v", err)
	}
	if _, err := rights.NewVerifier(serverFP, nil, &key.PublicKey).Verify(good); err != nil {
		t.Errorf("a nil trusted key spoils the others: %v", err)
	}
}

func TestKeys(t *testing.T) {
	key := newKey(t)
	privPEM, err := rights.MarshalPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	back, err := rights.ParsePrivateKey(privPEM)
	if err != nil || !back.Equal(key) {
		t.Fatalf("private key round trip: %v", err)
	}
	pubPEM, err := rights.MarshalPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := rights.ParsePublicKey(pubPEM)
	if err != nil || !pub.Equal(&key.PublicKey) {
		t.Fatalf("public key round trip: %v", err)
	}
	if !bytes.HasPrefix(privPEM, []byte("-----BEGIN PRIVATE KEY-----\n")) || !bytes.HasPrefix(pubPEM, []byte("-----BEGIN PUBLIC KEY-----\n")) {
		t.Fatalf("PEM block types:\n%s%s", privPEM, pubPEM)
	}

	fp := rights.KeyFingerprint(&key.PublicKey)
	if !fingerprintForm.MatchString(fp) || fp == rights.KeyFingerprint(&newKey(t).PublicKey) {
		t.Fatalf("fingerprint %q", fp)
	}
	if rights.KeyFingerprint(nil) != "" {
		t.Error("nil key has a fingerprint")
	}

	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalPKCS8PrivateKey(p384)
	pubDer384, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	for name, c := range map[string]struct {
		data []byte
		pub  bool
	}{
		"public key as private":   {pubPEM, false},
		"private key as public":   {privPEM, true},
		"P-384 private key":       {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der384}), false},
		"P-384 public key":        {pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDer384}), true},
		"not PEM":                 {[]byte("hello"), false},
		"garbage DER":             {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), false},
		"two blocks":              {append(bytes.Clone(privPEM), privPEM...), false},
		"garbage after the block": {append(bytes.Clone(pubPEM), "junk"...), true},
	} {
		var err error
		if c.pub {
			_, err = rights.ParsePublicKey(c.data)
		} else {
			_, err = rights.ParsePrivateKey(c.data)
		}
		if !errors.Is(err, rights.ErrInvalidKey) {
			t.Errorf("%s: %v, want ErrInvalidKey", name, err)
		}
	}
	if _, err := rights.MarshalPrivateKey(p384); !errors.Is(err, rights.ErrInvalidKey) {
		t.Errorf("MarshalPrivateKey(P-384): %v", err)
	}
	if _, err := rights.Issue(p384, sampleRights(time.Now()), nil); !errors.Is(err, rights.ErrInvalidKey) {
		t.Errorf("Issue with a P-384 key: %v", err)
	}
}

// demoKeyFingerprint is the demo key's fingerprint as
// `openssl pkey -pubout -outform DER | sha256sum` computes it.
const demoKeyFingerprint = "EF:CA:7A:92:D2:60:4C:85:AD:BB:3F:E8:27:D3:8B:99:29:F4:1D:5A:50:3C:CF:32:6E:EE:18:18:83:85:81:F0"

func TestDemo(t *testing.T) {
	a, b := rights.DemoProducerKey(), rights.DemoProducerKey()
	if !a.Equal(b) {
		t.Fatal("DemoProducerKey differs between calls")
	}
	if fp := rights.KeyFingerprint(&a.PublicKey); fp != demoKeyFingerprint {
		t.Fatalf("demo key fingerprint %s, want %s", fp, demoKeyFingerprint)
	}
	now := time.Date(2025, 6, 1, 13, 30, 0, 0, time.FixedZone("CEST", 2*3600))
	lines := rights.DemoLines(now)
	if !reflect.DeepEqual(lines, rights.DemoLines(now.Add(time.Hour))) {
		t.Error("DemoLines changes within a day")
	}
	names := map[string]bool{}
	for _, l := range lines {
		names[l.Name] = true
		if !l.Expiry.IsZero() && (l.Expiry.Before(now.AddDate(1, 0, 0)) || l.Expiry.After(now.AddDate(1, 0, 2))) {
			t.Errorf("%s expires %s, want about a year after %s", l.Name, l.Expiry, now)
		}
	}
	for _, want := range []string{"cad", "viewer", "solver"} {
		if !names[want] {
			t.Errorf("demo rights lack %q", want)
		}
	}
	file, err := rights.Issue(a, rights.Rights{Server: serverFP, Source: rights.DemoSource, Sequence: 1, Issued: now, Lines: lines}, nil)
	if err != nil {
		t.Fatal(err)
	}
	load, err := rights.NewVerifier(serverFP, &b.PublicKey).Verify(file)
	if err != nil {
		t.Fatal(err)
	}
	s := core.New(core.Config{})
	if _, err := s.Apply(core.Request{ID: core.RequestID{Session: 1, Seq: 1}, At: now, Command: load}); err != nil {
		t.Fatalf("core refuses the demo rights: %v", err)
	}
	if got := len(s.Features()); got != len(lines) {
		t.Errorf("%d features after loading %d demo lines", got, len(lines))
	}
}
