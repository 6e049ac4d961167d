package capability_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/capability"
	"github.com/tallyhq/tally/core/licensingid"
	"github.com/tallyhq/tally/core/rights"
)

// oneLineSentinel fails unless err wraps one of the package's sentinels
// and is one line.
func oneLineSentinel(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, capability.ErrMalformed) && !errors.Is(err, capability.ErrUntrustedKey) &&
		!errors.Is(err, capability.ErrBadSignature) && !errors.Is(err, capability.ErrWrongServer) {
		t.Fatalf("error wraps no sentinel: %v", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is more than one line: %q", err)
	}
}

// FuzzParseRequest checks that ParseRequest never panics, that every
// refusal is one line wrapping a sentinel, and that what it accepts is
// bound to its certificate and has content core would make. Requests
// carry their certificate, so the seeds in testdata/fuzz/FuzzParseRequest
// are signed requests whose mutations reach every check.
func FuzzParseRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := capability.ParseRequest(data)
		if err != nil {
			oneLineSentinel(t, err)
			return
		}
		if r.Server != licensingid.Fingerprint(r.Certificate) || r.Sequence == 0 {
			t.Fatalf("accepted a request for %s with a certificate of %s, sequence %d", r.Server, licensingid.Fingerprint(r.Certificate), r.Sequence)
		}
		if err := core.ValidateUsage(r.Usage); err != nil {
			t.Fatalf("accepted usage core refuses: %v", err)
		}
		if err := core.ValidateActivations(r.Activations); err != nil {
			t.Fatalf("accepted activations core refuses: %v", err)
		}
	})
}

// FuzzVerifyResponse checks that VerifyResponse never panics, that every
// refusal is one line wrapping a sentinel, and that what it accepts is for
// this server and makes a command core validates. The seeds in
// testdata/fuzz/FuzzVerifyResponse include responses the demo producer key
// signed for serverFP, so mutations reach the payload checks.
func FuzzVerifyResponse(f *testing.F) {
	v := capability.NewVerifier(serverFP, &rights.DemoProducerKey().PublicKey)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := v.VerifyResponse(data)
		if err != nil {
			oneLineSentinel(t, err)
			return
		}
		if r.Server != serverFP || r.Sequence == 0 || r.RequestSequence == 0 {
			t.Fatalf("accepted a response for %s, sequence %d to request %d", r.Server, r.Sequence, r.RequestSequence)
		}
		for i, l := range r.Lines {
			if l.Source != "" {
				t.Fatalf("line %d names source %q", i+1, l.Source)
			}
		}
		if _, err := core.EncodeRequest(core.Request{ID: core.RequestID{Session: 1, Seq: 1}, Command: r.CompleteSync("")}); err != nil {
			t.Fatalf("accepted response does not encode as a command: %v", err)
		}
	})
}
