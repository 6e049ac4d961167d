package device

import (
	"encoding/base64"
	"encoding/json"

	"github.com/tallyhq/tally/transport/deviceproto"
	"github.com/tallyhq/tally/transport/deviceproto/wirejson"
)

// Capability requests and their signed responses are most of what a
// device sends and receives, so the server reads the one here by hand,
// with package wirejson, rather than through reflection, and writes the
// other with deviceproto's AppendPayload and AppendSigned.

// marshalPayload returns the JSON of p.
func marshalPayload(p *deviceproto.Payload) ([]byte, error) {
	if b, ok := deviceproto.AppendPayload(make([]byte, 0, 256+128*len(p.Grants)), p); ok {
		return b, nil
	}
	return json.Marshal(p)
}

// encodeSigned returns the envelope of a signed body.
func encodeSigned(typ string, id uint64, s *deviceproto.Signed) []byte {
	n := 96 + base64.StdEncoding.EncodedLen(len(s.Payload)) + base64.StdEncoding.EncodedLen(len(s.Signature))
	if s.Proof != nil {
		n += 48 + 48*len(s.Proof.Path)
	}
	return deviceproto.AppendSigned(make([]byte, 0, n), typ, id, s)
}

// capabilityMessage is a capabilityRequest, renew or return read by
// readCapabilityMessage.
type capabilityMessage struct {
	env      deviceproto.Envelope
	features []deviceproto.FeatureRequest
}

// readCapabilityMessage reads a capabilityRequest, renew or return with
// its features. It reports false for anything else, and for any input it
// does not read exactly as encoding/json would (Envelope, then
// CapabilityRequest or ReturnRequest): the caller then decodes it with
// encoding/json. The envelope's Body is a slice of data.
func readCapabilityMessage(data []byte) (capabilityMessage, bool) {
	var m capabilityMessage
	r := wirejson.Reader{B: data}
	const (
		seenType = 1 << iota
		seenID
		seenBody
	)
	var seen int
	var counted bool // a feature has count or borrowSeconds
	if !r.Consume('{') {
		return m, false
	}
	for first := true; ; first = false {
		if r.Consume('}') {
			if first {
				return m, false // no type
			}
			break
		}
		if !first && !r.Consume(',') {
			return m, false
		}
		key, ok := r.RawString()
		if !ok || !r.Consume(':') {
			return m, false
		}
		var bit int
		switch string(key) {
		case "type":
			bit = seenType
			s, ok := r.RawString()
			if !ok {
				return m, false
			}
			switch string(s) {
			case deviceproto.TypeCapabilityRequest:
				m.env.Type = deviceproto.TypeCapabilityRequest
			case deviceproto.TypeRenew:
				m.env.Type = deviceproto.TypeRenew
			case deviceproto.TypeReturn:
				m.env.Type = deviceproto.TypeReturn
			default:
				return m, false
			}
		case "id":
			bit = seenID
			if m.env.ID, ok = r.Uint(); !ok {
				return m, false
			}
		case "body":
			bit = seenBody
			r.Space()
			start := r.I
			if m.features, counted, ok = readFeatures(&r); !ok {
				return m, false
			}
			m.env.Body = data[start:r.I]
		default:
			return m, false
		}
		if seen&bit != 0 {
			return m, false
		}
		seen |= bit
	}
	r.Space()
	if r.I != len(data) || seen&seenType == 0 || seen&seenBody == 0 {
		return m, false
	}
	if m.env.Type == deviceproto.TypeReturn && counted {
		return m, false // encoding/json ignores unknown fields of a return
	}
	return m, true
}

// readFeatures reads a body {"features":[...]}, or {}; counted reports
// whether a feature had count or borrowSeconds.
func readFeatures(r *wirejson.Reader) (fs []deviceproto.FeatureRequest, counted, ok bool) {
	fs = []deviceproto.FeatureRequest{}
	if !r.Consume('{') {
		return nil, false, false
	}
	if r.Consume('}') {
		return fs, false, true
	}
	key, ok := r.RawString()
	if !ok || string(key) != "features" || !r.Consume(':') || !r.Consume('[') {
		return nil, false, false
	}
	if !r.Consume(']') {
		for {
			f, c, ok := readFeature(r)
			if !ok || len(fs) == deviceproto.MaxFeatures {
				return nil, false, false
			}
			fs = append(fs, f)
			counted = counted || c
			if r.Consume(']') {
				break
			}
			if !r.Consume(',') {
				return nil, false, false
			}
		}
	}
	if !r.Consume('}') {
		return nil, false, false
	}
	return fs, counted, true
}

// readFeature reads one feature object.
func readFeature(r *wirejson.Reader) (f deviceproto.FeatureRequest, counted, ok bool) {
	if !r.Consume('{') {
		return f, false, false
	}
	var seen int
	for first := true; ; first = false {
		if r.Consume('}') {
			return f, counted, true
		}
		if !first && !r.Consume(',') {
			return f, false, false
		}
		key, ok := r.RawString()
		if !ok || !r.Consume(':') {
			return f, false, false
		}
		var bit int
		switch string(key) {
		case "name":
			bit = 1
			s, ok := r.RawString()
			if !ok {
				return f, false, false
			}
			f.Name = string(s)
		case "version":
			bit = 2
			s, ok := r.RawString()
			if !ok {
				return f, false, false
			}
			f.Version = string(s)
		case "count":
			bit = 4
			if f.Count, ok = r.Int(); !ok {
				return f, false, false
			}
			counted = true
		case "borrowSeconds":
			bit = 8
			if f.BorrowSeconds, ok = r.Int(); !ok {
				return f, false, false
			}
			counted = true
		default:
			return f, false, false
		}
		if seen&bit != 0 {
			return f, false, false
		}
		seen |= bit
	}
}
