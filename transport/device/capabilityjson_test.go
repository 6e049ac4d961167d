package device

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/tallyhq/tally/transport/deviceproto"
)

// FuzzPayloadJSON holds appendPayload and appendSigned to what
// encoding/json writes for the same values, byte for byte.
func FuzzPayloadJSON(f *testing.F) {
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
		p := deviceproto.Payload{
			Device: deviceproto.HostID{Value: value, Type: typ}, RequestID: id, Event: event,
			Issued: at, Expires: at.Add(time.Duration(nsec)),
		}
		if count%3 != 0 {
			p.Grants = []deviceproto.Grant{
				{Feature: feature, Version: ver, Count: count, Overdraft: overdraft, Expiry: at, RenewAt: at.Add(time.Hour)},
				{Feature: ver, Version: feature, Count: overdraft},
			}
		}
		if reason != "" {
			p.Denials = []deviceproto.Denial{{Feature: feature, Version: ver, Count: count, Held: overdraft, Reason: reason}}
		}
		want, werr := json.Marshal(p)
		got, ok := appendPayload([]byte("prefix"), &p)
		if ok != (werr == nil) {
			t.Fatalf("appendPayload ok %v, encoding/json error %v", ok, werr)
		}
		if !ok {
			if string(got) != "prefix" {
				t.Fatalf("appendPayload refused but appended %q", got)
			}
			return
		}
		if !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("appendPayload:\n got %s\nwant %s", got[len("prefix"):], want)
		}

		s := deviceproto.Signed{Payload: want, Signature: sig}
		if size > 0 {
			s.Proof = &deviceproto.Proof{Index: index, Size: size}
			for i := range pathLen % 8 {
				s.Proof.Path = append(s.Proof.Path, bytes.Repeat([]byte{byte(i)}, 32))
			}
			if pathLen%8 == 1 {
				s.Proof.Path = append(s.Proof.Path, nil)
			}
		}
		for _, typ := range []string{deviceproto.TypeCapabilityResponse, deviceproto.TypeLeaseChanged, event} {
			wantMsg, err := encode(typ, id, s)
			if err != nil {
				t.Fatal(err)
			}
			if got := encodeSigned(typ, id, &s); !bytes.Equal(got, wantMsg) {
				t.Fatalf("encodeSigned:\n got %s\nwant %s", got, wantMsg)
			}
		}
	})
}

// FuzzCapabilityMessage holds readCapabilityMessage to encoding/json:
// whatever it reads, encoding/json reads the same way.
func FuzzCapabilityMessage(f *testing.F) {
	// More seeds are in testdata/fuzz/FuzzCapabilityMessage.
	f.Add([]byte(`{"type":"capabilityRequest","id":2,"body":{"features":[{"name":"cad","version":"1.0","count":3}]}}`))
	f.Add([]byte(`{"type":"return","id":4,"body":{"features":[{"name":"cad","version":"1.0"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, ok := readCapabilityMessage(data)
		if !ok {
			return
		}
		var env deviceproto.Envelope
		if err := json.Unmarshal(data, &env); err != nil {
			t.Fatalf("read %q, encoding/json refuses it: %v", data, err)
		}
		if env.Type != m.env.Type || env.ID != m.env.ID || !bytes.Equal(env.Body, m.env.Body) {
			t.Fatalf("read %q as %s %d %s, encoding/json as %s %d %s", data,
				m.env.Type, m.env.ID, m.env.Body, env.Type, env.ID, env.Body)
		}
		req, err := decodeRequest(env)
		if err != nil {
			t.Fatalf("read %q, encoding/json refuses its body: %v", data, err)
		}
		if !reflect.DeepEqual(req.features, m.features) {
			t.Fatalf("read %q as %+v, encoding/json as %+v", data, m.features, req.features)
		}
	})
}

// TestReadCapabilityMessageReadsClientRequests: what the Go client sends
// for a checkout, a renewal and a return takes the hand-written path.
func TestReadCapabilityMessageReadsClientRequests(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		body any
		want []deviceproto.FeatureRequest
	}{
		{deviceproto.TypeCapabilityRequest, deviceproto.CapabilityRequest{Features: []deviceproto.FeatureRequest{
			{Name: "cad", Version: "1.0", Count: 3}, {Name: "viewer", Version: "2.0", Count: 1, BorrowSeconds: 3600}}},
			[]deviceproto.FeatureRequest{{Name: "cad", Version: "1.0", Count: 3}, {Name: "viewer", Version: "2.0", Count: 1, BorrowSeconds: 3600}}},
		{deviceproto.TypeRenew, deviceproto.CapabilityRequest{Features: []deviceproto.FeatureRequest{{Name: "cad", Version: "1.0", Count: 1}}},
			[]deviceproto.FeatureRequest{{Name: "cad", Version: "1.0", Count: 1}}},
		{deviceproto.TypeReturn, deviceproto.ReturnRequest{Features: []deviceproto.FeatureRef{{Name: "cad", Version: "1.0"}}},
			[]deviceproto.FeatureRequest{{Name: "cad", Version: "1.0"}}},
	} {
		data, err := encode(tc.typ, 9, tc.body)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := readCapabilityMessage(data)
		if !ok {
			t.Fatalf("%s: not read: %s", tc.typ, data)
		}
		if m.env.Type != tc.typ || m.env.ID != 9 || !reflect.DeepEqual(m.features, tc.want) {
			t.Errorf("%s: read %s %d %+v, want %+v", tc.typ, m.env.Type, m.env.ID, m.features, tc.want)
		}
	}
}
