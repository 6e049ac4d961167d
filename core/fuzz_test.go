package core

import (
	"bytes"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/version"
)

// fuzzState is a state with rights, devices and a lease, for fuzzed commands
// to land on.
func fuzzState(t testing.TB) *harness {
	h := newHarness(t)
	h.apply(&CreateUser{Name: "admin", Roles: []Role{RoleAdmin}, PasswordHash: testHash})
	h.apply(&CreateKeys{KeyType: KeyMass, Keys: []NewKey{{ID: "m", Secret: "fuzz-mass-secret"}}})
	h.apply(&CreateKeys{KeyType: KeyOneTime, Keys: []NewKey{{ID: "k1", Secret: "fuzz-one-time"}, {ID: "k2", Secret: "fuzz-one-time-2"}}})
	h.rights("r", 1, fline("l", "cad", "1.0", 3), fline("m", "viewer", "2.0", 10))
	h.apply(setCA(1))
	h.apply(h.joinToken("j1", time.Hour))
	d := h.hello(1)
	h.granted(d, "cad", "1.0", 1)
	h.apply(&BeginSync{Activations: []Activation{{ActivationID: "ACT-1", Count: 2}}})
	return h
}

// FuzzDecodeRequest feeds arbitrary bytes to the command decoder. Nothing may
// panic; what decodes must encode and decode to the same request, and
// applying it must keep every invariant, or be refused and change nothing.
func FuzzDecodeRequest(f *testing.F) {
	seeds := []Request{
		{ID: RequestID{1, 1}, At: t0, Command: &Tick{}},
		{ID: RequestID{1, 2}, At: t0, Command: &Checkout{Device: mac(1), Feature: "cad", Version: version.MustParse("1.0"), Count: 2, Borrow: time.Hour}},
		{ID: RequestID{1, 3}, At: t0, Command: &Hello{Device: DeviceInfo{ID: mac(2), Alias: "a", Attributes: map[string]string{"site": "pune"}}}},
		{ID: RequestID{1, 4}, At: t0, Command: &LoadRights{Source: "s", Sequence: 2, Lines: []FeatureLine{fline("x", "sim", "1", 4)}}},
		{ID: RequestID{1, 5}, At: t0, Command: &SetModel{Text: sitesModel}},
		{ID: RequestID{1, 6}, At: t0, Command: &SetProperty{Name: "server.pageSize", Value: "50"}},
		{ID: RequestID{1, 7}, At: t0, Command: &DropDevice{Device: mac(1)}},
		{ID: RequestID{1, 8}, At: t0, Command: setCA(2)},
		{ID: RequestID{1, 9}, At: t0, Command: audited(&CreateJoinToken{ID: "j2", Verifier: verifier(2), Expires: t0.Add(time.Hour), Description: "node 2"})},
		{ID: RequestID{1, 10}, At: t0, Command: &UseJoinToken{ID: "j1", Node: "node-2"}},
		{ID: RequestID{1, 11}, At: t0, Command: audited(&DeleteJoinToken{ID: "j1"})},
		{ID: RequestID{1, 12}, At: t0, Command: &BeginSync{Activations: []Activation{{ActivationID: "ACT-2", Count: 0}}}},
		{ID: RequestID{1, 13}, At: t0, Command: audited(&CompleteSync{RequestSequence: 1, Sequence: 1, UsageAck: 1,
			Lines:       []FeatureLine{fline("bo", "cad", "1.0", 5)},
			Activations: []ActivationResult{{ActivationID: "ACT-1", Count: 2, Result: ActivationExceeds}}})},
	}
	for _, r := range seeds {
		b, err := EncodeRequest(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeRequest(data)
		if err != nil {
			return
		}
		again, err := EncodeRequest(req)
		if err != nil {
			t.Fatalf("decoded request does not encode: %v", err)
		}
		back, err := DecodeRequest(again)
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
		if third, _ := EncodeRequest(back); !bytes.Equal(again, third) {
			t.Fatalf("encoding is not stable:\n%s\n%s", again, third)
		}
		h := fuzzState(t)
		before := h.snapshot()
		req.ID = RequestID{Session: 99, Seq: 1}
		if req.At.Before(h.now) || req.At.After(h.now.Add(1000*time.Hour)) {
			req.At = h.now
		}
		if _, err := h.s.Apply(req); err != nil {
			if after := h.snapshot(); !bytes.Equal(before, after) && req.At.Equal(h.now) {
				t.Fatalf("refused (%v) but changed the state", err)
			}
			return
		}
		if err := h.s.verify(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzParseReservations feeds arbitrary bytes to the reservations importer.
func FuzzParseReservations(f *testing.F) {
	f.Add([]byte(`[{"name":"g","reservations":[{"hostId":{"value":"00:11:22:33:44:55","type":"ETHERNET"},"reservationEntries":[{"featureName":"f","featureVersion":"1.0","featureCount":3}]}]}]`))
	f.Add([]byte(`{"name":"g","reservations":[{"hostId":{"value":"SN1","type":"SERIAL"},"reservationEntries":[{"featureName":"cad","featureVersion":"2022.01","featureCount":1}]}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"name":"","reservations":[]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		groups, err := ParseReservations(data)
		if err != nil {
			return
		}
		out, err := FormatReservations(groups)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseReservations(out)
		if err != nil {
			t.Fatalf("exported groups do not import: %v\n%s", err, out)
		}
		if again, _ := FormatReservations(back); !bytes.Equal(out, again) {
			t.Fatalf("export is not stable:\n%s\n%s", out, again)
		}
	})
}
