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

// TestOfflineStatus follows the exchange through the status route: nothing
// pending at first, usage counted in the open window; a request closes the
// window and carries it with its activation; the response acknowledges
// the usage and reports the activation; the connector is the property's.
func TestOfflineStatus(t *testing.T) {
	producer := rights.DemoProducerKey()
	e := newTestEnv(t, func(c *Config) {
		c.Capability = capability.NewVerifier(c.Identity.Fingerprint(), &producer.PublicKey)
	})
	status := func() offlineStatus {
		t.Helper()
		r := e.do("GET", "/api/v1/offline/status", "", "", true)
		if r.status != http.StatusOK {
			t.Fatalf("status: %d %s", r.status, r.body)
		}
		var st offlineStatus
		r.json(t, &st)
		return st
	}
	// The store's checkout was counted in the open window.
	st := status()
	if st.Connector != "" || st.NextRequest != 1 || st.PendingRequest != 0 || st.LastResponse != 0 ||
		st.UnacknowledgedWindows != 0 || st.PendingWindows != 0 || len(st.Current.Features) != 1 {
		t.Fatalf("at first: %+v", st)
	}

	if r := e.do("POST", "/api/v1/offline/activation", "application/json", `{"activationId":"ACT-7","count":3}`, true); r.status != http.StatusOK {
		t.Fatalf("activation request: %d %s", r.status, r.body)
	}
	st = status()
	if st.PendingRequest != 1 || !st.PendingSince.Equal(t0) || st.NextRequest != 2 || st.UnacknowledgedWindows != 1 ||
		st.PendingWindows != 1 || len(st.PendingActivations) != 1 || st.PendingActivations[0] != (core.Activation{ActivationID: "ACT-7", Count: 3}) ||
		len(st.Current.Features) != 0 {
		t.Fatalf("pending: %+v", st)
	}

	resp, err := capability.IssueResponse(producer, capability.Response{Server: e.id.Fingerprint(), RequestSequence: 1, Sequence: 1,
		Issued: t0, UsageAck: 1, Activations: []core.ActivationResult{{ActivationID: "ACT-7", Count: 3, Result: core.ActivationOK}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.do("POST", "/api/v1/offline/response", "application/octet-stream", string(resp), true); r.status != http.StatusOK {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/api/v1/properties/backoffice.connector", "application/json", `{"value":"shop"}`, true); r.status != http.StatusOK {
		t.Fatalf("connector: %d %s", r.status, r.body)
	}
	st = status()
	if st.Connector != "shop" || st.PendingRequest != 0 || st.PendingWindows != 0 || st.PendingActivations != nil ||
		st.LastResponse != 1 || !st.LastResponseAt.Equal(t0) || st.UsageAck != 1 || st.UnacknowledgedWindows != 0 ||
		len(st.LastActivations) != 1 || st.LastActivations[0].Result != core.ActivationOK {
		t.Fatalf("answered: %+v", st)
	}

	// OFFLINE's like the other offline routes: a READ user may not.
	e.store.addUser(t, "reader", "reader password", core.RoleRead)
	wantError(t, e.doAs(e.loginAs("reader", "reader password"), "GET", "/api/v1/offline/status", "", ""), http.StatusForbidden, "access_denied")
}
