package deviceproto

import (
	"strconv"

	"github.com/tallyhq/tally/transport/deviceproto/wirejson"
)

// The frequent messages, written and read by hand with package wirejson
// rather than through reflection (a device's CPU is often small): the
// capability requests a device sends (appendRequest), the signed responses
// and pushes the server writes (AppendPayload, AppendSigned) and the device
// reads (readSigned, readPayload). What the writers write is byte for byte
// what encoding/json writes; what the readers read is a strict subset of
// what encoding/json reads, to the same values, and for anything else they
// report false and the client decodes with encoding/json. FuzzWire,
// FuzzRequest and FuzzResponse hold them to this.

// appendRequest appends the envelope of a capabilityRequest or renew
// (body CapabilityRequest) or return (body ReturnRequest) to b. It reports
// false, having appended nothing, for any other body.
func appendRequest(b []byte, typ string, id uint64, body any) ([]byte, bool) {
	n0 := len(b)
	b = append(b, `{"type":`...)
	b = wirejson.AppendString(b, typ)
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `,"body":{"features":`...)
	switch body := body.(type) {
	case CapabilityRequest:
		b = appendList(b, body.Features, func(b []byte, f FeatureRequest) []byte {
			b = appendRef(b, f.Name, f.Version)
			b = append(b, `,"count":`...)
			b = strconv.AppendInt(b, f.Count, 10)
			if f.BorrowSeconds != 0 {
				b = append(b, `,"borrowSeconds":`...)
				b = strconv.AppendInt(b, f.BorrowSeconds, 10)
			}
			return append(b, '}')
		})
	case ReturnRequest:
		b = appendList(b, body.Features, func(b []byte, f FeatureRef) []byte {
			return append(appendRef(b, f.Name, f.Version), '}')
		})
	default:
		return b[:n0], false
	}
	return append(b, "}}"...), true
}

// AppendPayload appends the JSON of p. It reports false, having appended
// nothing, for a time encoding/json refuses to write; the caller then
// uses encoding/json for its error.
func AppendPayload(b []byte, p *Payload) ([]byte, bool) {
	n0 := len(b)
	ok := true
	b = append(b, `{"device":{"value":`...)
	b = wirejson.AppendString(b, p.Device.Value)
	b = append(b, `,"type":`...)
	b = wirejson.AppendString(b, p.Device.Type)
	b = append(b, `},"requestId":`...)
	b = strconv.AppendUint(b, p.RequestID, 10)
	if p.Event != "" {
		b = append(b, `,"event":`...)
		b = wirejson.AppendString(b, p.Event)
	}
	b = append(b, `,"issued":`...)
	b, ok = wirejson.AppendTime(b, p.Issued, ok)
	b = append(b, `,"expires":`...)
	b, ok = wirejson.AppendTime(b, p.Expires, ok)
	b = append(b, `,"grants":`...)
	b = appendList(b, p.Grants, func(b []byte, g Grant) []byte {
		b = append(b, `{"feature":`...)
		b = wirejson.AppendString(b, g.Feature)
		b = append(b, `,"version":`...)
		b = wirejson.AppendString(b, g.Version)
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, g.Count, 10)
		if g.Overdraft != 0 {
			b = append(b, `,"overdraft":`...)
			b = strconv.AppendInt(b, g.Overdraft, 10)
		}
		if !g.Expiry.IsZero() {
			b = append(b, `,"expiry":`...)
			b, ok = wirejson.AppendTime(b, g.Expiry, ok)
		}
		if !g.RenewAt.IsZero() {
			b = append(b, `,"renewAt":`...)
			b, ok = wirejson.AppendTime(b, g.RenewAt, ok)
		}
		return append(b, '}')
	})
	if len(p.Denials) > 0 {
		b = append(b, `,"denials":`...)
		b = appendList(b, p.Denials, func(b []byte, d Denial) []byte {
			b = append(b, `{"feature":`...)
			b = wirejson.AppendString(b, d.Feature)
			b = append(b, `,"version":`...)
			b = wirejson.AppendString(b, d.Version)
			b = append(b, `,"count":`...)
			b = strconv.AppendInt(b, d.Count, 10)
			b = append(b, `,"held":`...)
			b = strconv.AppendInt(b, d.Held, 10)
			b = append(b, `,"reason":`...)
			b = wirejson.AppendString(b, d.Reason)
			return append(b, '}')
		})
	}
	b = append(b, '}')
	if !ok {
		return b[:n0], false
	}
	return b, true
}

// AppendSigned appends the envelope of a signed body (capabilityResponse
// or leaseChanged).
func AppendSigned(b []byte, typ string, id uint64, s *Signed) []byte {
	b = append(b, `{"type":`...)
	b = wirejson.AppendString(b, typ)
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `,"body":{"payload":`...)
	b = wirejson.AppendBytes(b, s.Payload)
	b = append(b, `,"signature":`...)
	b = wirejson.AppendBytes(b, s.Signature)
	if p := s.Proof; p != nil {
		b = append(b, `,"proof":{"index":`...)
		b = strconv.AppendInt(b, int64(p.Index), 10)
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, int64(p.Size), 10)
		b = append(b, `,"path":`...)
		b = appendList(b, p.Path, wirejson.AppendBytes)
		b = append(b, '}')
	}
	return append(b, "}}"...)
}

// appendList appends items as a JSON array, each with each; null for nil.
func appendList[T any](b []byte, items []T, each func([]byte, T) []byte) []byte {
	if items == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = each(b, it)
	}
	return append(b, ']')
}

// appendRef appends the start of a feature object: {"name":…,"version":…
func appendRef(b []byte, name, version string) []byte {
	b = append(b, `{"name":`...)
	b = wirejson.AppendString(b, name)
	b = append(b, `,"version":`...)
	return wirejson.AppendString(b, version)
}

// readSigned reads a message whose body is Signed (capabilityResponse,
// leaseChanged) in the form the server writes: type, id, then body with
// payload, signature and an optional proof. The envelope's Body is a
// slice of data.
func readSigned(data []byte) (env Envelope, s Signed, ok bool) {
	r := wirejson.Reader{B: data}
	if !r.Consume('{') || !r.Literal(`"type"`) || !r.Consume(':') {
		return env, s, false
	}
	typ, ok := r.RawString()
	if !ok {
		return env, s, false
	}
	switch string(typ) {
	case TypeCapabilityResponse:
		env.Type = TypeCapabilityResponse
	case TypeLeaseChanged:
		env.Type = TypeLeaseChanged
	default:
		return env, s, false
	}
	if !r.Consume(',') || !r.Literal(`"id"`) || !r.Consume(':') {
		return env, s, false
	}
	if env.ID, ok = r.Uint(); !ok {
		return env, s, false
	}
	if !r.Consume(',') || !r.Literal(`"body"`) || !r.Consume(':') {
		return env, s, false
	}
	r.Space()
	start := r.I
	if !r.Consume('{') || !r.Literal(`"payload"`) || !r.Consume(':') {
		return env, s, false
	}
	if s.Payload, ok = r.Bytes(); !ok {
		return env, s, false
	}
	if !r.Consume(',') || !r.Literal(`"signature"`) || !r.Consume(':') {
		return env, s, false
	}
	if s.Signature, ok = r.Bytes(); !ok {
		return env, s, false
	}
	if r.Consume(',') {
		if !r.Literal(`"proof"`) || !r.Consume(':') {
			return env, s, false
		}
		if s.Proof, ok = readProof(&r); !ok {
			return env, s, false
		}
	}
	if !r.Consume('}') {
		return env, s, false
	}
	env.Body = data[start:r.I]
	if !r.Consume('}') || !r.End() {
		return env, s, false
	}
	return env, s, true
}

// readProof reads {"index":N,"size":N,"path":[...]|null}.
func readProof(r *wirejson.Reader) (*Proof, bool) {
	var p Proof
	if !r.Consume('{') || !r.Literal(`"index"`) || !r.Consume(':') {
		return nil, false
	}
	index, ok := r.Int()
	if !ok || !r.Consume(',') || !r.Literal(`"size"`) || !r.Consume(':') {
		return nil, false
	}
	size, ok := r.Int()
	if !ok || !r.Consume(',') || !r.Literal(`"path"`) || !r.Consume(':') {
		return nil, false
	}
	p.Index, p.Size = int(index), int(size)
	if int64(p.Index) != index || int64(p.Size) != size {
		return nil, false
	}
	if p.Path, ok = readList(r, (*wirejson.Reader).Bytes); !ok {
		return nil, false
	}
	if !r.Consume('}') {
		return nil, false
	}
	return &p, true
}

// readPayload reads a payload in the form the server writes.
func readPayload(data []byte) (p Payload, ok bool) {
	r := wirejson.Reader{B: data}
	if !r.Consume('{') || !r.Literal(`"device"`) || !r.Consume(':') ||
		!r.Consume('{') || !r.Literal(`"value"`) || !r.Consume(':') {
		return p, false
	}
	if p.Device.Value, ok = r.String(); !ok {
		return p, false
	}
	if !r.Consume(',') || !r.Literal(`"type"`) || !r.Consume(':') {
		return p, false
	}
	if p.Device.Type, ok = r.String(); !ok {
		return p, false
	}
	if !r.Consume('}') || !r.Consume(',') || !r.Literal(`"requestId"`) || !r.Consume(':') {
		return p, false
	}
	if p.RequestID, ok = r.Uint(); !ok || !r.Consume(',') {
		return p, false
	}
	if r.Literal(`"event"`) {
		if !r.Consume(':') {
			return p, false
		}
		if p.Event, ok = r.String(); !ok || !r.Consume(',') {
			return p, false
		}
	}
	if !r.Literal(`"issued"`) || !r.Consume(':') {
		return p, false
	}
	if p.Issued, ok = r.Time(); !ok {
		return p, false
	}
	if !r.Consume(',') || !r.Literal(`"expires"`) || !r.Consume(':') {
		return p, false
	}
	if p.Expires, ok = r.Time(); !ok {
		return p, false
	}
	if !r.Consume(',') || !r.Literal(`"grants"`) || !r.Consume(':') {
		return p, false
	}
	if p.Grants, ok = readList(&r, readGrant); !ok {
		return p, false
	}
	if r.Consume(',') {
		if !r.Literal(`"denials"`) || !r.Consume(':') {
			return p, false
		}
		if p.Denials, ok = readList(&r, readDenial); !ok {
			return p, false
		}
	}
	if !r.Consume('}') || !r.End() {
		return p, false
	}
	return p, true
}

// readList reads a JSON array with each: nil for null, an empty slice for
// [].
func readList[T any](r *wirejson.Reader, each func(*wirejson.Reader) (T, bool)) ([]T, bool) {
	if r.Literal("null") {
		return nil, true
	}
	if !r.Consume('[') {
		return nil, false
	}
	items := []T{}
	if r.Consume(']') {
		return items, true
	}
	for {
		it, ok := each(r)
		if !ok {
			return nil, false
		}
		items = append(items, it)
		if r.Consume(']') {
			return items, true
		}
		if !r.Consume(',') {
			return nil, false
		}
	}
}

// readGrant reads a grant with its optional fields in the order the
// server writes them.
func readGrant(r *wirejson.Reader) (g Grant, ok bool) {
	if !r.Consume('{') || !r.Literal(`"feature"`) || !r.Consume(':') {
		return g, false
	}
	if g.Feature, ok = r.String(); !ok || !r.Consume(',') || !r.Literal(`"version"`) || !r.Consume(':') {
		return g, false
	}
	if g.Version, ok = r.String(); !ok || !r.Consume(',') || !r.Literal(`"count"`) || !r.Consume(':') {
		return g, false
	}
	if g.Count, ok = r.Int(); !ok {
		return g, false
	}
	optional := []struct {
		key  string
		read func() bool
	}{
		{`"overdraft"`, func() bool { g.Overdraft, ok = r.Int(); return ok }},
		{`"expiry"`, func() bool { g.Expiry, ok = r.Time(); return ok }},
		{`"renewAt"`, func() bool { g.RenewAt, ok = r.Time(); return ok }},
	}
	next := 0
	for r.Consume(',') {
		for next < len(optional) && !r.Literal(optional[next].key) {
			next++
		}
		if next == len(optional) || !r.Consume(':') || !optional[next].read() {
			return g, false
		}
		next++
	}
	return g, r.Consume('}')
}

// readDenial reads a denial.
func readDenial(r *wirejson.Reader) (d Denial, ok bool) {
	if !r.Consume('{') || !r.Literal(`"feature"`) || !r.Consume(':') {
		return d, false
	}
	if d.Feature, ok = r.String(); !ok || !r.Consume(',') || !r.Literal(`"version"`) || !r.Consume(':') {
		return d, false
	}
	if d.Version, ok = r.String(); !ok || !r.Consume(',') || !r.Literal(`"count"`) || !r.Consume(':') {
		return d, false
	}
	if d.Count, ok = r.Int(); !ok || !r.Consume(',') || !r.Literal(`"held"`) || !r.Consume(':') {
		return d, false
	}
	if d.Held, ok = r.Int(); !ok || !r.Consume(',') || !r.Literal(`"reason"`) || !r.Consume(':') {
		return d, false
	}
	if d.Reason, ok = r.String(); !ok {
		return d, false
	}
	return d, r.Consume('}')
}
