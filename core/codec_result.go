package core

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/tallyhq/tally/core/hostid"
)

// Results cross between nodes when a follower forwards a command: mostly
// a checkout's grant or denial. EncodeResult writes exactly the bytes
// encoding/json writes, and DecodeResult reads them as encoding/json does;
// both take a path without reflection for the usual shape.

// EncodeResult encodes a result as encoding/json does.
func EncodeResult(r Result) ([]byte, error) {
	if b, ok := appendResult(make([]byte, 0, 256), r); ok {
		return b, nil
	}
	return json.Marshal(r)
}

// DecodeResult decodes a result as encoding/json.Unmarshal does.
func DecodeResult(data []byte) (Result, error) {
	if r, ok := readResult(data); ok {
		return r, nil
	}
	var r Result
	err := json.Unmarshal(data, &r)
	return r, err
}

// appendResult appends a result holding at most a grant, a denial and a
// connection number, or reports false for any other.
func appendResult(b []byte, r Result) ([]byte, bool) {
	if r.Duplicate || len(r.Changed) > 0 || r.Onboarded != (hostid.HostID{}) {
		return b, false
	}
	b = append(b, '{')
	sep := false
	field := func(name string) {
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
	}
	if g := r.Grant; g != (Grant{}) {
		typ, err := g.Device.Type.MarshalText()
		if err != nil || !plainString(g.Device.Value) || !plainString(g.Feature) || !plainString(g.Version) {
			return b, false
		}
		field("grant")
		b = append(b, `{"device":{"value":"`...)
		b = append(b, g.Device.Value...)
		b = append(b, `","type":"`...)
		b = append(b, typ...)
		b = append(b, `"},"feature":"`...)
		b = append(b, g.Feature...)
		b = append(b, `","version":"`...)
		b = append(b, g.Version...)
		b = append(b, `","count":`...)
		b = strconv.AppendInt(b, g.Count, 10)
		if g.Overdraft != 0 {
			b = append(b, `,"overdraft":`...)
			b = strconv.AppendInt(b, g.Overdraft, 10)
		}
		for _, t := range []struct {
			name string
			at   time.Time
		}{{"expiry", g.Expiry}, {"renewAt", g.RenewAt}} {
			if t.at.IsZero() {
				continue
			}
			b = append(b, `,"`...)
			b = append(b, t.name...)
			b = append(b, `":"`...)
			var err error
			if b, err = t.at.AppendText(b); err != nil {
				return b, false
			}
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	if r.Denied != NotDenied {
		text := r.Denied.String()
		if int(r.Denied) >= len(denialText) || !plainString(text) {
			return b, false
		}
		field("denied")
		b = append(b, '"')
		b = append(b, text...)
		b = append(b, '"')
	}
	if r.Conn != 0 {
		field("conn")
		b = strconv.AppendUint(b, r.Conn, 10)
	}
	return append(b, '}'), true
}

// readResult reads what appendResult writes; ok false leaves the input to
// encoding/json.
func readResult(data []byte) (r Result, ok bool) {
	p := canonicalReader{data: data, ok: true}
	p.lit("{")
	sep := false
	next := func(name string) bool {
		prefix := `"` + name + `":`
		if sep {
			prefix = "," + prefix
		}
		if !p.peek(prefix) {
			return false
		}
		p.lit(prefix)
		sep = true
		return true
	}
	if next("grant") {
		g := &r.Grant
		p.lit(`{"device":{"value":"`)
		g.Device.Value = p.str()
		p.lit(`,"type":"`)
		typ := p.str()
		p.lit(`},"feature":"`)
		g.Feature = p.str()
		p.lit(`,"version":"`)
		g.Version = p.str()
		p.lit(`,"count":`)
		g.Count = p.int()
		if p.peek(`,"overdraft":`) {
			p.lit(`,"overdraft":`)
			g.Overdraft = p.int()
		}
		for _, t := range []struct {
			name string
			at   *time.Time
		}{{"expiry", &g.Expiry}, {"renewAt", &g.RenewAt}} {
			prefix := `,"` + t.name + `":"`
			if !p.peek(prefix) {
				continue
			}
			p.lit(prefix)
			text := p.str()
			if !p.ok || t.at.UnmarshalText([]byte(text)) != nil {
				return Result{}, false
			}
		}
		p.lit("}")
		if !p.ok || g.Device.Type.UnmarshalText([]byte(typ)) != nil {
			return Result{}, false
		}
	}
	if next("denied") {
		p.lit(`"`)
		text := p.str()
		if !p.ok || r.Denied.UnmarshalText([]byte(text)) != nil {
			return Result{}, false
		}
	}
	if next("conn") {
		r.Conn = p.uint()
	}
	p.lit("}")
	if !p.ok || len(p.data) != 0 {
		return Result{}, false
	}
	return r, true
}
