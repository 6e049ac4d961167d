package deviceproto

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// wireSamples are messages as the server writes them (encoding/json, to
// which the server's own writer is held byte for byte).
func wireSamples(t testing.TB) (signed, payloads [][]byte) {
	at := time.Date(2026, 11, 27, 15, 4, 5, 123456789, time.UTC)
	for _, p := range []Payload{
		{Device: HostID{Value: "aa:bb:cc:dd:ee:ff", Type: "ETHERNET"}, RequestID: 7, Issued: at, Expires: at.Add(time.Hour),
			Grants: []Grant{{Feature: "cad", Version: "2.0", Count: 3, Expiry: at.Add(time.Hour), RenewAt: at.Add(30 * time.Minute)}}},
		{Device: HostID{Value: "dev-1", Type: "STRING"}, RequestID: 8, Issued: at, Expires: at,
			Grants:  []Grant{{Feature: "cad", Version: "2.0", Count: 0}, {Feature: "viewer", Version: "1.0", Count: 2, Overdraft: 1, RenewAt: at}},
			Denials: []Denial{{Feature: "big", Version: "1.0", Count: 5, Held: 1, Reason: DenyInsufficient}}},
		{Device: HostID{Value: "dev-2", Type: "STRING"}, Event: EventDropped, Issued: at.In(time.FixedZone("", 3600)), Expires: at, Grants: []Grant{}},
		{Device: HostID{Value: "dév", Type: "STRING"}, Event: EventLeaseChanged, Issued: at, Expires: at},
	} {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, b)
		for _, s := range []Signed{
			{Payload: b, Signature: []byte("signature")},
			{Payload: b, Signature: []byte{1, 2, 3}, Proof: &Proof{Index: 1, Size: 3, Path: [][]byte{{4, 5}, {6}}}},
			{Payload: b, Signature: []byte{}, Proof: &Proof{Index: 0, Size: 1}},
		} {
			body, _ := json.Marshal(s)
			for _, typ := range []string{TypeCapabilityResponse, TypeLeaseChanged} {
				msg, _ := json.Marshal(Envelope{Type: typ, ID: p.RequestID, Body: body})
				signed = append(signed, msg)
			}
		}
	}
	return signed, payloads
}

// TestWireReadsWhatTheServerWrites: the hand-written readers take the
// server's messages themselves, rather than leaving them to encoding/json.
func TestWireReadsWhatTheServerWrites(t *testing.T) {
	signed, payloads := wireSamples(t)
	for _, msg := range signed {
		if _, _, ok := readSigned(msg); !ok {
			t.Errorf("readSigned left %s to encoding/json", msg)
		}
		checkWire(t, msg)
	}
	for _, p := range payloads {
		if _, ok := readPayload(p); !ok {
			t.Errorf("readPayload left %s to encoding/json", p)
		}
		checkWire(t, p)
	}
}

// checkWire holds the readers to encoding/json for data: what they read,
// encoding/json reads to the same values.
func checkWire(t *testing.T, data []byte) {
	if env, s, ok := readSigned(data); ok {
		var env2 Envelope
		if err := json.Unmarshal(data, &env2); err != nil {
			t.Fatalf("readSigned took %q, which encoding/json refuses: %v", data, err)
		}
		var s2 Signed
		if err := json.Unmarshal(env2.Body, &s2); err != nil {
			t.Fatalf("readSigned took %q, whose body encoding/json refuses: %v", data, err)
		}
		if !reflect.DeepEqual(env, env2) || !reflect.DeepEqual(s, s2) {
			t.Fatalf("%q: readSigned %+v %+v, encoding/json %+v %+v", data, env, s, env2, s2)
		}
	}
	if p, ok := readPayload(data); ok {
		var p2 Payload
		if err := json.Unmarshal(data, &p2); err != nil {
			t.Fatalf("readPayload took %q, which encoding/json refuses: %v", data, err)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("%q: readPayload %+v, encoding/json %+v", data, p, p2)
		}
	}
}

func FuzzWire(f *testing.F) {
	signed, payloads := wireSamples(f)
	for _, b := range append(signed, payloads...) {
		f.Add(b)
	}
	f.Fuzz(checkWire)
}

// FuzzRequest holds appendRequest to encoding/json, byte for byte.
func FuzzRequest(f *testing.F) {
	f.Add("capabilityRequest", uint64(1), "cad", "2.0", int64(1), int64(0), false, 1)
	f.Add("return", uint64(1<<63), "<\u2028\xff>", "\"\\", int64(-5), int64(3600), true, 3)
	f.Add("renew", uint64(0), "", "", int64(0), int64(0), false, 0)
	f.Fuzz(func(t *testing.T, typ string, id uint64, name, version string, count, borrow int64, ret bool, n int) {
		n = min(max(n, -1), 4)
		var body any
		if ret {
			req := ReturnRequest{}
			for range n {
				req.Features = append(req.Features, FeatureRef{Name: name, Version: version})
			}
			if n == 0 {
				req.Features = []FeatureRef{}
			}
			body = req
		} else {
			req := CapabilityRequest{}
			for range n {
				req.Features = append(req.Features, FeatureRequest{Name: name, Version: version, Count: count, BorrowSeconds: borrow})
			}
			if n == 0 {
				req.Features = []FeatureRequest{}
			}
			body = req
		}
		got, ok := appendRequest([]byte("x"), typ, id, body)
		if !ok {
			t.Fatalf("appendRequest refused %+v", body)
		}
		raw, _ := json.Marshal(body)
		want, err := json.Marshal(Envelope{Type: typ, ID: id, Body: raw})
		if err != nil {
			t.Fatal(err)
		}
		if string(got[1:]) != string(want) {
			t.Fatalf("appendRequest\n%s\nencoding/json\n%s", got[1:], want)
		}
	})
}

// FuzzResponse holds AppendPayload and AppendSigned to what
// encoding/json writes for the same values, byte for byte.
func FuzzResponse(f *testing.F) {
	f.Add("00:11:22:33:44:55", "ETHERNET", uint64(7), "", int64(1740823200), int64(0), 0,
		"cad", "1.0", int64(3), int64(0), "insufficient_count", []byte("sig"), 3, 5, 3)
	f.Add("pune <7> & \u2028", "STRING", uint64(0), "leaseChanged", int64(-62135596800), int64(999999999), -330,
		"caf\xe9\"\\\n\t\x01", "2.0.1", int64(-1), int64(2), "", []byte(nil), 0, 2, 1)
	f.Add("x", "UUID", uint64(1<<64-1), "dropped", int64(253402300800), int64(5), 24*60,
		"v", "", int64(1<<63-1), int64(-1<<63), "denied", []byte{}, -1, 0, 0)
	f.Fuzz(func(t *testing.T, value, typ string, id uint64, event string, sec, nsec int64, offMinutes int,
		feature, ver string, count, overdraft int64, reason string, sig []byte, index, size, pathLen int) {
		zone := time.FixedZone("", (offMinutes%(48*60))*60)
		at := time.Unix(sec, nsec).In(zone)
		p := Payload{
			Device: HostID{Value: value, Type: typ}, RequestID: id, Event: event,
			Issued: at, Expires: at.Add(time.Duration(nsec)),
		}
		if count%3 != 0 {
			p.Grants = []Grant{
				{Feature: feature, Version: ver, Count: count, Overdraft: overdraft, Expiry: at, RenewAt: at.Add(time.Hour)},
				{Feature: ver, Version: feature, Count: overdraft},
			}
		}
		if reason != "" {
			p.Denials = []Denial{{Feature: feature, Version: ver, Count: count, Held: overdraft, Reason: reason}}
		}
		want, werr := json.Marshal(p)
		got, ok := AppendPayload([]byte("prefix"), &p)
		if ok != (werr == nil) {
			t.Fatalf("AppendPayload ok %v, encoding/json error %v", ok, werr)
		}
		if !ok {
			if string(got) != "prefix" {
				t.Fatalf("AppendPayload refused but appended %q", got)
			}
			return
		}
		if !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("AppendPayload:\n got %s\nwant %s", got[len("prefix"):], want)
		}

		s := Signed{Payload: want, Signature: sig}
		if size > 0 {
			s.Proof = &Proof{Index: index, Size: size}
			for i := range pathLen % 8 {
				s.Proof.Path = append(s.Proof.Path, bytes.Repeat([]byte{byte(i)}, 32))
			}
			if pathLen%8 == 1 {
				s.Proof.Path = append(s.Proof.Path, nil)
			}
		}
		for _, typ := range []string{TypeCapabilityResponse, TypeLeaseChanged, event} {
			body, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			wantMsg, err := json.Marshal(Envelope{Type: typ, ID: id, Body: body})
			if err != nil {
				t.Fatal(err)
			}
			if got := AppendSigned(nil, typ, id, &s); !bytes.Equal(got, wantMsg) {
				t.Fatalf("AppendSigned:\n got %s\nwant %s", got, wantMsg)
			}
		}
	})
}
