package capability_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/capability"
	"github.com/tallyhq/tally/core/internal/envelope/envelopetest"
	"github.com/tallyhq/tally/core/licensingid"
	"github.com/tallyhq/tally/core/rights"
	"github.com/tallyhq/tally/core/version"
)

// serverFP and otherFP stand for the certificate fingerprints of two
// servers, as in package rights' tests.
const (
	serverFP = "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF"
	otherFP  = "FE:DC:BA:98:76:54:32:10:FE:DC:BA:98:76:54:32:10:FE:DC:BA:98:76:54:32:10:FE:DC:BA:98:76:54:32:10"
)

var now = time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)

func newID(t testing.TB) *licensingid.ID {
	t.Helper()
	id, err := licensingid.Generate(now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newProducerKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := rights.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func sampleRequest() capability.Request {
	return capability.Request{
		Sequence: 4,
		Issued:   now,
		Usage: []core.UsageWindow{
			{ID: 7, From: now.Add(-2 * time.Hour), To: now.Add(-time.Hour), Features: []core.UsageRow{
				{Name: "cad", Version: version.MustParse("1.0"), Checkouts: 12, PeakUsed: 5},
				{Name: "viewer", Version: version.MustParse("2.0"), Checkouts: 1, PeakUsed: 1},
			}},
			{ID: 8, From: now.Add(-time.Hour), To: now, Features: []core.UsageRow{
				{Name: "cad", Version: version.MustParse("1.0"), Checkouts: 3, PeakUsed: 2},
			}},
		},
		Activations: []core.Activation{{ActivationID: "ACT-1", Count: 5}, {ActivationID: "ACT-2", Count: 0}},
	}
}

func sampleResponse() capability.Response {
	return capability.Response{
		Server: serverFP, RequestSequence: 4, Sequence: 9, Issued: now,
		Lines: []core.FeatureLine{
			{ID: "cad-1", Name: "cad", Version: version.MustParse("1.0"), Count: 10},
			{ID: "viewer-1", Name: "viewer", Version: version.MustParse("2.0"), Count: 3, Overdraft: 2},
		},
		Locks:    map[string]string{"server.allowDeviceDrop": "false"},
		UsageAck: 8,
		Activations: []core.ActivationResult{
			{ActivationID: "ACT-1", Count: 5, Result: core.ActivationOK},
			{ActivationID: "ACT-2", Count: 0, Result: core.ActivationUnknown},
		},
	}
}

// The envelope helpers build and take apart envelopes as the package
// documentation describes them, so tests can sign payloads the package
// refuses to make, and in other contexts.
var (
	seal     = envelopetest.Seal
	envelope = envelopetest.Envelope
	open     = envelopetest.Fields
)

// checkRefusal fails unless err wraps want and is one short line.
func checkRefusal(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want one wrapping %q", err, want)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || len(msg) > 500 {
		t.Errorf("error is not one short line: %q", msg)
	}
}

func TestRequestRoundTrip(t *testing.T) {
	id := newID(t)
	r := sampleRequest()
	data, err := capability.SignRequest(id.Key, id.Certificate, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := capability.ParseRequest(data)
	if err != nil {
		t.Fatal(err)
	}
	want := r
	want.Server, want.Certificate = id.Fingerprint(), id.Certificate
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseRequest returned\n%+v\nwant\n%+v", got, want)
	}

	// The envelope and payload are what the package documentation says.
	env, body, _ := open(t, data)
	if env["format"] != capability.RequestFormat || env["key"] != id.Fingerprint() || len(env) != 4 {
		t.Fatalf("envelope %v", env)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"server", "certificate", "sequence", "issued", "usage", "activations"} {
		if _, ok := p[k]; !ok {
			t.Errorf("payload has no %q: %v", k, p)
		}
	}

	// A request without usage or activations says so with empty lists.
	empty, err := capability.SignRequest(id.Key, id.Certificate, capability.Request{Sequence: 1, Issued: now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, body, _ := open(t, empty); !bytes.Contains(body, []byte(`"usage":[],"activations":[]`)) {
		t.Errorf("empty request payload %s", body)
	}
}

func TestSignRequestRefuses(t *testing.T) {
	id, other := newID(t), newID(t)
	if _, err := capability.SignRequest(other.Key, id.Certificate, sampleRequest(), nil); !errors.Is(err, capability.ErrInvalidKey) {
		t.Errorf("another key than the certificate's: %v", err)
	}
	if _, err := capability.SignRequest(nil, id.Certificate, sampleRequest(), nil); !errors.Is(err, capability.ErrInvalidKey) {
		t.Errorf("no key: %v", err)
	}
	if _, err := capability.SignRequest(id.Key, []byte("not DER"), sampleRequest(), nil); !errors.Is(err, capability.ErrInvalidKey) {
		t.Errorf("bad certificate: %v", err)
	}
	forOther := sampleRequest()
	forOther.Server = otherFP
	if _, err := capability.SignRequest(id.Key, id.Certificate, forOther, nil); !errors.Is(err, capability.ErrWrongServer) {
		t.Errorf("a request naming another server: %v", err)
	}
	for name, mutate := range map[string]func(*capability.Request){
		"sequence 0":           func(r *capability.Request) { r.Sequence = 0 },
		"windows out of order": func(r *capability.Request) { r.Usage[0].ID, r.Usage[1].ID = 9, 8 },
		"bad activation":       func(r *capability.Request) { r.Activations[0].Count = -1 },
	} {
		r := sampleRequest()
		mutate(&r)
		if _, err := capability.SignRequest(id.Key, id.Certificate, r, nil); !errors.Is(err, capability.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// p384Certificate is a self-signed certificate of a P-384 key.
func p384Certificate(t *testing.T) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: now, NotAfter: now.AddDate(1, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func TestParseRequestRefuses(t *testing.T) {
	id, other := newID(t), newID(t)
	good, err := capability.SignRequest(id.Key, id.Certificate, sampleRequest(), nil)
	if err != nil {
		t.Fatal(err)
	}
	env, body, sig := open(t, good)
	fp := env["key"]
	tamperedBody := bytes.Replace(body, []byte(`"checkouts":12`), []byte(`"checkouts":1`), 1)
	if bytes.Equal(tamperedBody, body) {
		t.Fatal("the tampering did not change the payload")
	}
	tamperedSig := bytes.Clone(sig)
	tamperedSig[len(tamperedSig)-1] ^= 0x01

	// payload signs a payload built from the sample with the given key and
	// certificate, naming server.
	payload := func(key *ecdsa.PrivateKey, cert []byte, server string, edit func(map[string]any)) []byte {
		var p map[string]any
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		p["certificate"], p["server"] = cert, server
		if edit != nil {
			edit(p)
		}
		b, _ := json.Marshal(p)
		return seal(t, key, capability.RequestFormat, capability.RequestFormat, server, b)
	}
	p384Key, p384Cert := p384Certificate(t)
	p384FP := licensingid.Fingerprint(p384Cert)

	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"tampered payload", envelope(capability.RequestFormat, fp, tamperedBody, sig), capability.ErrBadSignature},
		{"tampered signature", envelope(capability.RequestFormat, fp, body, tamperedSig), capability.ErrBadSignature},
		{"signed by another key than the certificate's", payload(other.Key, id.Certificate, fp, nil), capability.ErrBadSignature},
		{"signed without the context", seal(t, id.Key, capability.RequestFormat, "", fp, body), capability.ErrBadSignature},
		{"signed in the OFFER context", seal(t, id.Key, capability.RequestFormat, "tally-offer/1", fp, body), capability.ErrBadSignature},
		{"server is not the certificate's fingerprint", payload(id.Key, id.Certificate, other.Fingerprint(), nil), capability.ErrWrongServer},
		{"key field is not the certificate's fingerprint", envelope(capability.RequestFormat, other.Fingerprint(), body, sig), capability.ErrWrongServer},
		{"P-384 certificate", payload(p384Key, p384Cert, p384FP, nil), capability.ErrMalformed},
		{"certificate not DER", payload(id.Key, []byte("junk"), fp, nil), capability.ErrMalformed},
		{"sequence 0", payload(id.Key, id.Certificate, fp, func(p map[string]any) { p["sequence"] = 0 }), capability.ErrMalformed},
		{"window twice", payload(id.Key, id.Certificate, fp, func(p map[string]any) {
			u := p["usage"].([]any)
			p["usage"] = append(u, u[1])
		}), capability.ErrMalformed},
		{"activation ID empty", payload(id.Key, id.Certificate, fp, func(p map[string]any) {
			p["activations"] = []any{map[string]any{"activationId": "", "count": 1}}
		}), capability.ErrMalformed},
		{"unknown payload field", payload(id.Key, id.Certificate, fp, func(p map[string]any) { p["extra"] = 1 }), capability.ErrMalformed},
		{"a response's format", bytes.Replace(good, []byte(capability.RequestFormat), []byte(capability.ResponseFormat), 1), capability.ErrMalformed},
		{"no format", []byte(`{"key":"x"}`), capability.ErrMalformed},
		{"unknown envelope field", append(bytes.TrimSuffix(bytes.TrimSpace(bytes.Clone(good)), []byte("}")), `,"x":1}`...), capability.ErrMalformed},
		{"trailing data", append(bytes.Clone(good), "{}"...), capability.ErrMalformed},
		{"truncated", good[:len(good)/2], capability.ErrMalformed},
		{"empty", nil, capability.ErrMalformed},
		{"huge", append(bytes.Clone(good), bytes.Repeat([]byte(" "), capability.MaxBytes)...), capability.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := capability.ParseRequest(c.data)
			checkRefusal(t, err, c.want)
		})
	}
}

func TestResponseRoundTrip(t *testing.T) {
	key := newProducerKey(t)
	r := sampleResponse()
	data, err := capability.IssueResponse(key, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := capability.NewVerifier(serverFP, &newProducerKey(t).PublicKey, &key.PublicKey).VerifyResponse(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("VerifyResponse returned\n%+v\nwant\n%+v", got, r)
	}
	env, _, _ := open(t, data)
	if env["format"] != capability.ResponseFormat || env["key"] != rights.KeyFingerprint(&key.PublicKey) || len(env) != 4 {
		t.Fatalf("envelope %v", env)
	}

	cmd := got.CompleteSync("")
	want := &core.CompleteSync{RequestSequence: 4, Sequence: 9, Lines: r.Lines, Locks: r.Locks, UsageAck: 8, Activations: r.Activations}
	if !reflect.DeepEqual(cmd, want) {
		t.Fatalf("CompleteSync\n%+v\nwant\n%+v", cmd, want)
	}
}

func TestIssueResponseRefuses(t *testing.T) {
	key := newProducerKey(t)
	for name, mutate := range map[string]func(*capability.Response){
		"no server":          func(r *capability.Response) { r.Server = " " },
		"sequence 0":         func(r *capability.Response) { r.Sequence = 0 },
		"request sequence 0": func(r *capability.Response) { r.RequestSequence = 0 },
		"line with a source": func(r *capability.Response) { r.Lines[0].Source = "elsewhere" },
		"bad result":         func(r *capability.Response) { r.Activations[0].Result = "maybe" },
	} {
		r := sampleResponse()
		mutate(&r)
		if _, err := capability.IssueResponse(key, r, nil); !errors.Is(err, capability.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	if _, err := capability.IssueResponse(nil, sampleResponse(), nil); !errors.Is(err, capability.ErrInvalidKey) {
		t.Errorf("no key: %v", err)
	}
	p384, _ := p384Certificate(t)
	if _, err := capability.IssueResponse(p384, sampleResponse(), nil); !errors.Is(err, capability.ErrInvalidKey) {
		t.Errorf("P-384 key: %v", err)
	}
}

func TestVerifyResponseRefuses(t *testing.T) {
	key, other := newProducerKey(t), newProducerKey(t)
	keyFP := rights.KeyFingerprint(&key.PublicKey)
	good, err := capability.IssueResponse(key, sampleResponse(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, body, sig := open(t, good)
	forOther := sampleResponse()
	forOther.Server = otherFP
	otherServer, _ := capability.IssueResponse(key, forOther, nil)
	byOther, _ := capability.IssueResponse(other, sampleResponse(), nil)
	tamperedBody := bytes.Replace(body, []byte(`"count":10`), []byte(`"count":99`), 1)
	if bytes.Equal(tamperedBody, body) {
		t.Fatal("the tampering did not change the payload")
	}
	tamperedSig := bytes.Clone(sig)
	tamperedSig[len(tamperedSig)-1] ^= 0x01
	// A rights file for this server, signed by the trusted key.
	rightsFile, err := rights.Issue(key, rights.Rights{Server: serverFP, Source: "s", Sequence: 9, Lines: sampleResponse().Lines}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload := func(s string) []byte {
		return seal(t, key, capability.ResponseFormat, capability.ResponseFormat, keyFP, []byte(s))
	}
	const head = `{"server":"` + serverFP + `","requestSequence":4,"sequence":9,"issued":"2026-01-01T00:00:00Z",`

	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"signed by an untrusted key", byOther, capability.ErrUntrustedKey},
		{"for another server", otherServer, capability.ErrWrongServer},
		{"tampered payload", envelope(capability.ResponseFormat, keyFP, tamperedBody, sig), capability.ErrBadSignature},
		{"tampered signature", envelope(capability.ResponseFormat, keyFP, body, tamperedSig), capability.ErrBadSignature},
		{"empty signature", envelope(capability.ResponseFormat, keyFP, body, nil), capability.ErrBadSignature},
		// The same payload, signed by the trusted key as a rights file
		// (no context), as a discovery OFFER and as a request: none of
		// those signatures passes for a response.
		{"rights-file signature", seal(t, key, capability.ResponseFormat, "", keyFP, body), capability.ErrBadSignature},
		{"OFFER-style signature", seal(t, key, capability.ResponseFormat, "tally-offer/1", keyFP, body), capability.ErrBadSignature},
		{"request-context signature", seal(t, key, capability.ResponseFormat, capability.RequestFormat, keyFP, body), capability.ErrBadSignature},
		{"a rights file", rightsFile, capability.ErrMalformed},
		{"a rights file relabelled", bytes.Replace(rightsFile, []byte(rights.Format), []byte(capability.ResponseFormat), 1), capability.ErrBadSignature},
		{"line with a source", payload(head + `"lines":[{"name":"a","version":"1","count":1,"source":"t"}],"usageAck":0,"activations":[]}`), capability.ErrMalformed},
		{"sequence 0", payload(`{"server":"` + serverFP + `","requestSequence":4,"sequence":0,"issued":"2026-01-01T00:00:00Z","lines":[],"usageAck":0,"activations":[]}`), capability.ErrMalformed},
		{"bad activation result", payload(head + `"lines":[],"usageAck":0,"activations":[{"activationId":"A","count":1,"result":"maybe"}]}`), capability.ErrMalformed},
		{"unknown payload field", payload(head + `"lines":[],"usageAck":0,"activations":[],"extra":1}`), capability.ErrMalformed},
		{"unknown line field", payload(head + `"lines":[{"name":"a","version":"1","count":1,"colour":"red"}],"usageAck":0,"activations":[]}`), capability.ErrMalformed},
		{"payload with trailing data", payload(head + `"lines":[],"usageAck":0,"activations":[]} {}`), capability.ErrMalformed},
		{"payload not JSON", payload("server=" + serverFP), capability.ErrMalformed},
		{"a request's format", bytes.Replace(good, []byte(capability.ResponseFormat), []byte(capability.RequestFormat), 1), capability.ErrMalformed},
		{"bad payload base64", bytes.Replace(good, []byte(`"payload":"`), []byte(`"payload":"!`), 1), capability.ErrMalformed},
		{"trailing data", append(bytes.Clone(good), "{}"...), capability.ErrMalformed},
		{"empty", nil, capability.ErrMalformed},
		{"huge", append(bytes.Clone(good), bytes.Repeat([]byte(" "), capability.MaxBytes)...), capability.ErrMalformed},
	}
	v := capability.NewVerifier(serverFP, &key.PublicKey)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.VerifyResponse(c.data)
			checkRefusal(t, err, c.want)
		})
	}
	if _, err := capability.NewVerifier(serverFP).VerifyResponse(good); !errors.Is(err, capability.ErrUntrustedKey) {
		t.Errorf("a verifier trusting no key: %v", err)
	}
	// And the other way round: a response is no rights file.
	if _, err := rights.NewVerifier(serverFP, &key.PublicKey).Verify(good); !errors.Is(err, rights.ErrMalformed) {
		t.Errorf("rights.Verify of a response: %v", err)
	}
}

// TestExchange runs one exchange end to end: core makes the request, the
// server signs it, the back office reads it and answers, the server
// verifies the answer and core applies it.
func TestExchange(t *testing.T) {
	id, producer := newID(t), newProducerKey(t)
	s := core.New(core.Config{})
	seq := uint64(0)
	apply := func(c core.Command) {
		t.Helper()
		seq++
		if _, err := s.Apply(core.Request{ID: core.RequestID{Session: 1, Seq: seq}, At: now, Command: c}); err != nil {
			t.Fatalf("%s: %v", c.Type(), err)
		}
	}
	apply(&core.BeginSync{Activations: []core.Activation{{ActivationID: "ACT-1", Count: 5}}})
	pending, ok := s.PendingSync()
	if !ok {
		t.Fatal("no pending request")
	}
	data, err := capability.SignRequest(id.Key, id.Certificate, capability.NewRequest(id.Certificate, pending), nil)
	if err != nil {
		t.Fatal(err)
	}

	req, err := capability.ParseRequest(data)
	if err != nil {
		t.Fatal(err)
	}
	answer := capability.Response{
		Server: req.Server, RequestSequence: req.Sequence, Sequence: 1, Issued: now,
		Lines:       []core.FeatureLine{{Name: "cad", Version: version.MustParse("1.0"), Count: 5}},
		Activations: []core.ActivationResult{{ActivationID: "ACT-1", Count: 5, Result: core.ActivationOK}},
	}
	reply, err := capability.IssueResponse(producer, answer, nil)
	if err != nil {
		t.Fatal(err)
	}

	got, err := capability.NewVerifier(id.Fingerprint(), &producer.PublicKey).VerifyResponse(reply)
	if err != nil {
		t.Fatal(err)
	}
	apply(got.CompleteSync(""))
	if f := s.Features(); len(f) != 1 || f[0].Name != "cad" || f[0].Total != 5 {
		t.Fatalf("features after the exchange: %+v", f)
	}
	if st := s.SyncStatus(); st.PendingRequest != 0 || st.LastResponse != 1 || len(st.LastActivations) != 1 {
		t.Fatalf("sync status %+v", st)
	}
	// The same response again is a replay.
	seq++
	if _, err := s.Apply(core.Request{ID: core.RequestID{Session: 1, Seq: seq}, At: now, Command: got.CompleteSync("")}); !errors.Is(err, core.ErrSyncReplay) {
		t.Fatalf("replayed response: %v", err)
	}
}
