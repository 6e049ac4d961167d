package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/capability"
	"github.com/tallyhq/tally/core/licensingid"
	"github.com/tallyhq/tally/core/rights"
	"github.com/tallyhq/tally/core/version"
)

type office struct {
	books    *store
	producer *ecdsa.PrivateKey
	server   *licensingid.ID
	a        *answerer
}

func newOffice(t *testing.T) *office {
	t.Helper()
	producer, err := rights.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := licensingid.Generate(t0, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	o := &office{books: openTestStore(t), producer: producer, server: id}
	o.a = &answerer{books: o.books, key: producer, now: func() time.Time { return t0 }}
	if err := o.books.addEntitlement(entitlement{ActivationID: "ACT-1", Feature: "cad", Version: "1.0", Count: 10, Expiry: "2030-12-31"}); err != nil {
		t.Fatal(err)
	}
	return o
}

// request signs a capability request of the server.
func (o *office) request(t *testing.T, seq uint64, windows []core.UsageWindow, acts ...core.Activation) []byte {
	t.Helper()
	b, err := capability.SignRequest(o.server.Key, o.server.Certificate, capability.Request{Sequence: seq, Issued: t0, Usage: windows, Activations: acts}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (o *office) verify(t *testing.T, resp []byte) capability.Response {
	t.Helper()
	r, err := capability.NewVerifier(o.server.Fingerprint(), &o.producer.PublicKey).VerifyResponse(resp)
	if err != nil {
		t.Fatalf("the server would refuse the answer: %v", err)
	}
	return r
}

// TestAnswer: a registered server's request is answered with its lines,
// activation results and the usage recorded; an unregistered or tampered
// request is refused and changes nothing.
func TestAnswer(t *testing.T) {
	o := newOffice(t)
	window := core.UsageWindow{ID: 1, From: t0, To: t0.Add(time.Hour), Features: []core.UsageRow{{Name: "cad", Version: version.MustParse("1.0"), Checkouts: 3, PeakUsed: 2}}}
	req := o.request(t, 1, []core.UsageWindow{window}, core.Activation{ActivationID: "ACT-1", Count: 4}, core.Activation{ActivationID: "ACT-9", Count: 1})
	if _, err := o.a.answer(req); !errors.Is(err, errUnknownServer) {
		t.Fatalf("unregistered: %v", err)
	}
	if _, err := registerCert(o.books, o.server.CertificatePEM(), t0); err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(req)
	i := bytes.Index(tampered, []byte(`"payload":"`)) + len(`"payload":"`) + 20
	tampered[i] ^= 0x01 // another base64 letter: the payload no longer matches its signature
	if _, err := o.a.answer(tampered); err == nil {
		t.Fatal("a tampered request was answered")
	}
	resp, err := o.a.answer(req)
	if err != nil {
		t.Fatal(err)
	}
	r := o.verify(t, resp)
	if r.RequestSequence != 1 || r.Sequence != 1 || r.UsageAck != 1 || len(r.Lines) != 1 || r.Lines[0].Count != 4 || r.Lines[0].Name != "cad" ||
		!r.Lines[0].Expiry.Equal(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)) ||
		len(r.Activations) != 2 || r.Activations[0].Result != core.ActivationOK || r.Activations[1].Result != core.ActivationUnknown {
		t.Fatalf("response %+v", r)
	}
	// The same request again (its answer was lost): usage is not counted
	// twice, the answer has the next sequence.
	r = o.verify(t, must(o.a.answer(req)))
	if r.Sequence != 2 || r.Lines[0].Count != 4 {
		t.Fatalf("again: %+v", r)
	}
	if u, _ := o.books.usage(); len(u) != 1 {
		t.Fatalf("usage recorded %d times", len(u))
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestHTTPS: the http connector's protocol.
func TestHTTPS(t *testing.T) {
	o := newOffice(t)
	srv := httptest.NewTLSServer(o.a.handler(slog.New(slog.DiscardHandler)))
	defer srv.Close()
	c := srv.Client()
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	post := func(path string, body []byte) (int, []byte) {
		resp, err := c.Post(srv.URL+path, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	req := o.request(t, 1, nil, core.Activation{ActivationID: "ACT-1", Count: 2})
	if code, _ := post("/v1/exchange", req); code != http.StatusForbidden {
		t.Fatalf("unregistered: %d", code)
	}
	if code, b := post("/v1/licensing-id", []byte("not a certificate")); code != http.StatusBadRequest {
		t.Fatalf("garbage certificate: %d %s", code, b)
	}
	if code, b := post("/v1/licensing-id", o.server.Certificate); code != http.StatusNoContent {
		t.Fatalf("register: %d %s", code, b)
	}
	code, b := post("/v1/exchange", req)
	if code != http.StatusOK {
		t.Fatalf("exchange: %d %s", code, b)
	}
	if r := o.verify(t, b); r.Lines[0].Count != 2 {
		t.Fatalf("lines %+v", r.Lines)
	}
}

// TestOfflineCommands: the producer answers a request file with a response
// file from the command line.
func TestOfflineCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "books")
	o := newOffice(t)
	keyFile := filepath.Join(dir, "producer.key")
	kb, _ := rights.MarshalPrivateKey(o.producer)
	os.WriteFile(keyFile, kb, 0o600)
	certFile := filepath.Join(dir, "server.cert")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: o.server.Certificate}), 0o644)
	in, out := filepath.Join(dir, "request.bin"), filepath.Join(dir, "response.bin")
	os.WriteFile(in, o.request(t, 1, nil, core.Activation{ActivationID: "ACT-2", Count: 5}), 0o644)
	runOK := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run(append([]string{"--data", data}, args...), &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
		}
		return stdout.String()
	}
	runOK("entitlement", "add", "--id", "ACT-2", "--feature", "viewer", "--version", "2.0", "--count", "5")
	runOK("register", certFile)
	runOK("answer", "--key", keyFile, "--in", in, "--out", out)
	r := o.verify(t, must(os.ReadFile(out)))
	if len(r.Lines) != 1 || r.Lines[0].Name != "viewer" || r.Lines[0].Count != 5 {
		t.Fatalf("response %+v", r)
	}
	if got := runOK("entitlements"); !strings.Contains(got, "ACT-2") || !strings.Contains(got, "viewer") {
		t.Fatalf("entitlements:\n%s", got)
	}
	var stderr bytes.Buffer
	if code := run([]string{"--data", data, "entitlement", "add", "--id", "ACT-2", "--feature", "x", "--version", "1", "--count", "1"}, io.Discard, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "already exists") {
		t.Fatalf("duplicate activation ID: exit %d, %s", code, stderr.String())
	}
	// A product: each unit brings two press and one viewer.
	runOK("product", "add", "--name", "studio", "--line", "press:2.0:2", "--line", "viewer:1.0")
	runOK("entitlement", "add", "--id", "ACT-3", "--product", "studio", "--count", "4")
	os.WriteFile(in, o.request(t, 2, nil, core.Activation{ActivationID: "ACT-3", Count: 3}), 0o644)
	runOK("answer", "--key", keyFile, "--in", in, "--out", out)
	r = o.verify(t, must(os.ReadFile(out)))
	counts := map[string]int64{}
	for _, l := range r.Lines {
		counts[l.Name] += l.Count
	}
	// The server also holds the 5 viewer of ACT-2.
	if counts["press"] != 6 || counts["viewer"] != 3+5 {
		t.Fatalf("product lines %+v", r.Lines)
	}
	if got := runOK("products"); !strings.Contains(got, "studio: press 2.0 x2, viewer 1.0 x1") {
		t.Fatalf("products:\n%s", got)
	}
	if code := run([]string{"--data", data, "entitlement", "add", "--id", "ACT-4", "--product", "none", "--count", "1"}, io.Discard, io.Discard); code != 1 {
		t.Fatalf("an entitlement of a missing product: exit %d", code)
	}
	if code := run([]string{"--data", data, "frobnicate"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}
