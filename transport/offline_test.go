package transport

import (
	"net/http"
	"testing"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/capability"
	"github.com/tallyhq/tally/core/rights"
	"github.com/tallyhq/tally/core/version"
)

// TestOfflineExchange: the request downloaded is signed with the licensing
// ID and asks for the activation; the producer's answer installs the
// lines; the same answer again, a tampered one, one for another server or
// one to an older request is refused and changes nothing.
func TestOfflineExchange(t *testing.T) {
	producer := rights.DemoProducerKey()
	e := newTestEnv(t, func(c *Config) {
		c.Capability = capability.NewVerifier(c.Identity.Fingerprint(), &producer.PublicKey)
	})
	r := e.do("POST", "/api/v1/offline/activation", "application/json", `{"activationId":"ACT-7","count":3}`, true)
	if r.status != http.StatusOK {
		t.Fatalf("activation request: %d %s", r.status, r.body)
	}
	req, err := capability.ParseRequest(r.body)
	if err != nil || req.Server != e.id.Fingerprint() || len(req.Activations) != 1 || req.Activations[0].ActivationID != "ACT-7" {
		t.Fatalf("request %+v %v", req, err)
	}
	// Downloading again gives the same pending request.
	if again := e.do("GET", "/api/v1/offline/request", "", "", true); again.status != http.StatusOK {
		t.Fatalf("download: %d", again.status)
	} else if r2, _ := capability.ParseRequest(again.body); r2.Sequence != req.Sequence {
		t.Fatalf("a second download began another request: %d, %d", r2.Sequence, req.Sequence)
	}
	answer := func(seq, reqSeq uint64, server string) []byte {
		b, err := capability.IssueResponse(producer, capability.Response{Server: server, RequestSequence: reqSeq, Sequence: seq,
			Issued: t0, Lines: []core.FeatureLine{{ID: "ACT-7", Name: "press", Version: version.MustParse("2.0"), Count: 3}},
			Activations: []core.ActivationResult{{ActivationID: "ACT-7", Count: 3, Result: core.ActivationOK}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	upload := func(b []byte) response {
		return e.do("POST", "/api/v1/offline/response", "application/octet-stream", string(b), true)
	}
	wantError(t, upload(answer(1, req.Sequence, "AA:BB")), http.StatusBadRequest, "bad_response")
	wantError(t, upload(answer(1, req.Sequence+5, e.id.Fingerprint())), http.StatusConflict, "out_of_order")
	good := answer(1, req.Sequence, e.id.Fingerprint())
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)/2] ^= 1
	wantError(t, upload(tampered), http.StatusBadRequest, "bad_response")
	if r := upload(good); r.status != http.StatusOK {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	var features []core.FeatureSummary
	e.store.Read(t.Context(), func(st *core.State) error { features = st.Features(); return nil })
	found := false
	for _, f := range features {
		found = found || (f.Name == "press" && f.Total == 3)
	}
	if !found {
		t.Fatalf("the lines are not installed: %+v", features)
	}
	wantError(t, upload(good), http.StatusConflict, "replayed")
}
