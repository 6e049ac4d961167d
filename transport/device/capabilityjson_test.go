package device

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tallyhq/tally/transport/deviceproto"
)

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
