package device

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tallyhq/tally/transport/deviceproto"
)

// Capability requests and their signed responses are most of what a
// device sends and receives, so their JSON is read and written here by
// hand rather than through reflection. What is written is byte for byte
// what encoding/json writes for the same values. What is read is a strict
// subset of the JSON encoding/json accepts: exact field names, each at
// most once, no escapes, integers only. Anything else is left to
// encoding/json, so that every message means the same and every bad one
// gets the same error either way. fuzz tests hold both to this.

// appendPayload appends the JSON of p. It reports false, having appended
// nothing, for a time encoding/json refuses to write; the caller then
// uses encoding/json for its error.
func appendPayload(b []byte, p *deviceproto.Payload) ([]byte, bool) {
	n0 := len(b)
	ok := true
	b = append(b, `{"device":{"value":`...)
	b = appendString(b, p.Device.Value)
	b = append(b, `,"type":`...)
	b = appendString(b, p.Device.Type)
	b = append(b, `},"requestId":`...)
	b = strconv.AppendUint(b, p.RequestID, 10)
	if p.Event != "" {
		b = append(b, `,"event":`...)
		b = appendString(b, p.Event)
	}
	b = append(b, `,"issued":`...)
	b, ok = appendTime(b, p.Issued, ok)
	b = append(b, `,"expires":`...)
	b, ok = appendTime(b, p.Expires, ok)
	b = append(b, `,"grants":`...)
	if p.Grants == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, g := range p.Grants {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"feature":`...)
			b = appendString(b, g.Feature)
			b = append(b, `,"version":`...)
			b = appendString(b, g.Version)
			b = append(b, `,"count":`...)
			b = strconv.AppendInt(b, g.Count, 10)
			if g.Overdraft != 0 {
				b = append(b, `,"overdraft":`...)
				b = strconv.AppendInt(b, g.Overdraft, 10)
			}
			if !g.Expiry.IsZero() {
				b = append(b, `,"expiry":`...)
				b, ok = appendTime(b, g.Expiry, ok)
			}
			if !g.RenewAt.IsZero() {
				b = append(b, `,"renewAt":`...)
				b, ok = appendTime(b, g.RenewAt, ok)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(p.Denials) > 0 {
		b = append(b, `,"denials":[`...)
		for i, d := range p.Denials {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"feature":`...)
			b = appendString(b, d.Feature)
			b = append(b, `,"version":`...)
			b = appendString(b, d.Version)
			b = append(b, `,"count":`...)
			b = strconv.AppendInt(b, d.Count, 10)
			b = append(b, `,"held":`...)
			b = strconv.AppendInt(b, d.Held, 10)
			b = append(b, `,"reason":`...)
			b = appendString(b, d.Reason)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	if !ok {
		return b[:n0], false
	}
	return b, true
}

// marshalPayload returns the JSON of p.
func marshalPayload(p *deviceproto.Payload) ([]byte, error) {
	if b, ok := appendPayload(make([]byte, 0, 256+128*len(p.Grants)), p); ok {
		return b, nil
	}
	return json.Marshal(p)
}

// appendTime appends t as time.Time's MarshalJSON writes it; ok turns
// false for a time that MarshalJSON refuses.
func appendTime(b []byte, t time.Time, ok bool) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		ok = false
	}
	if _, off := t.Zone(); off <= -24*60*60 || off >= 24*60*60 {
		ok = false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), ok
}

// appendSigned appends the envelope of a signed body (capabilityResponse
// or leaseChanged).
func appendSigned(b []byte, typ string, id uint64, s *deviceproto.Signed) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, typ)
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `,"body":{"payload":`...)
	b = appendBytes(b, s.Payload)
	b = append(b, `,"signature":`...)
	b = appendBytes(b, s.Signature)
	if p := s.Proof; p != nil {
		b = append(b, `,"proof":{"index":`...)
		b = strconv.AppendInt(b, int64(p.Index), 10)
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, int64(p.Size), 10)
		b = append(b, `,"path":`...)
		if p.Path == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '[')
			for i, h := range p.Path {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendBytes(b, h)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	return append(b, "}}"...)
}

// encodeSigned returns the envelope of a signed body.
func encodeSigned(typ string, id uint64, s *deviceproto.Signed) []byte {
	n := 96 + base64.StdEncoding.EncodedLen(len(s.Payload)) + base64.StdEncoding.EncodedLen(len(s.Signature))
	if s.Proof != nil {
		n += 48 + 48*len(s.Proof.Path)
	}
	return appendSigned(make([]byte, 0, n), typ, id, s)
}

// appendBytes appends b as encoding/json writes a []byte: standard base64
// in quotes, null for nil.
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendString appends s quoted as encoding/json writes it, HTML
// characters, U+2028 and U+2029 escaped and invalid UTF-8 replaced.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
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
	r := jsonReader{b: data}
	const (
		seenType = 1 << iota
		seenID
		seenBody
	)
	var seen int
	var counted bool // a feature has count or borrowSeconds
	if !r.consume('{') {
		return m, false
	}
	for first := true; ; first = false {
		if r.consume('}') {
			if first {
				return m, false // no type
			}
			break
		}
		if !first && !r.consume(',') {
			return m, false
		}
		key, ok := r.rawString()
		if !ok || !r.consume(':') {
			return m, false
		}
		var bit int
		switch string(key) {
		case "type":
			bit = seenType
			s, ok := r.rawString()
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
			if m.env.ID, ok = r.uint(); !ok {
				return m, false
			}
		case "body":
			bit = seenBody
			r.space()
			start := r.i
			if m.features, counted, ok = r.features(); !ok {
				return m, false
			}
			m.env.Body = data[start:r.i]
		default:
			return m, false
		}
		if seen&bit != 0 {
			return m, false
		}
		seen |= bit
	}
	r.space()
	if r.i != len(data) || seen&seenType == 0 || seen&seenBody == 0 {
		return m, false
	}
	if m.env.Type == deviceproto.TypeReturn && counted {
		return m, false // encoding/json ignores unknown fields of a return
	}
	return m, true
}

// jsonReader reads the JSON that readCapabilityMessage accepts.
type jsonReader struct {
	b []byte
	i int
}

func (r *jsonReader) space() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// consume skips space and then c, if c is next.
func (r *jsonReader) consume(c byte) bool {
	r.space()
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// rawString reads a string without escapes or control characters whose
// bytes are valid UTF-8, and returns its bytes.
func (r *jsonReader) rawString() ([]byte, bool) {
	if !r.consume('"') {
		return nil, false
	}
	start := r.i
	ascii := true
	for ; r.i < len(r.b); r.i++ {
		switch c := r.b[r.i]; {
		case c == '"':
			s := r.b[start:r.i]
			r.i++
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// digits reads an unsigned integer without fraction or exponent.
func (r *jsonReader) digits() (uint64, bool) {
	start := r.i
	var n uint64
	for ; r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9'; r.i++ {
		d := uint64(r.b[r.i] - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	switch {
	case r.i == start, r.b[start] == '0' && r.i-start > 1:
		return 0, false
	case r.i < len(r.b) && (r.b[r.i] == '.' || r.b[r.i] == 'e' || r.b[r.i] == 'E'):
		return 0, false
	}
	return n, true
}

func (r *jsonReader) uint() (uint64, bool) {
	r.space()
	return r.digits()
}

func (r *jsonReader) int() (int64, bool) {
	neg := r.consume('-')
	if !neg {
		r.space()
	}
	n, ok := r.digits()
	if !ok || n > 1<<63-1 {
		return 0, false
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

// features reads a body {"features":[...]}, or {}; counted reports
// whether a feature had count or borrowSeconds.
func (r *jsonReader) features() (fs []deviceproto.FeatureRequest, counted, ok bool) {
	fs = []deviceproto.FeatureRequest{}
	if !r.consume('{') {
		return nil, false, false
	}
	if r.consume('}') {
		return fs, false, true
	}
	key, ok := r.rawString()
	if !ok || string(key) != "features" || !r.consume(':') || !r.consume('[') {
		return nil, false, false
	}
	if !r.consume(']') {
		for {
			f, c, ok := r.feature()
			if !ok || len(fs) == deviceproto.MaxFeatures {
				return nil, false, false
			}
			fs = append(fs, f)
			counted = counted || c
			if r.consume(']') {
				break
			}
			if !r.consume(',') {
				return nil, false, false
			}
		}
	}
	if !r.consume('}') {
		return nil, false, false
	}
	return fs, counted, true
}

// feature reads one feature object.
func (r *jsonReader) feature() (f deviceproto.FeatureRequest, counted, ok bool) {
	if !r.consume('{') {
		return f, false, false
	}
	var seen int
	for first := true; ; first = false {
		if r.consume('}') {
			return f, counted, true
		}
		if !first && !r.consume(',') {
			return f, false, false
		}
		key, ok := r.rawString()
		if !ok || !r.consume(':') {
			return f, false, false
		}
		var bit int
		switch string(key) {
		case "name":
			bit = 1
			s, ok := r.rawString()
			if !ok {
				return f, false, false
			}
			f.Name = string(s)
		case "version":
			bit = 2
			s, ok := r.rawString()
			if !ok {
				return f, false, false
			}
			f.Version = string(s)
		case "count":
			bit = 4
			if f.Count, ok = r.int(); !ok {
				return f, false, false
			}
			counted = true
		case "borrowSeconds":
			bit = 8
			if f.BorrowSeconds, ok = r.int(); !ok {
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
