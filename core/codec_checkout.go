package core

import (
	"strconv"
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// A fast path for the entry every device request makes: a request holding
// one Checkout. It writes exactly the bytes encoding/json writes, and reads
// only that canonical form (fields in order, plain strings, plain integers);
// anything else, and any string that would need escaping, goes through
// encoding/json as every other command does. Checkouts are most of the
// log, and every node decodes every entry.

// appendCheckoutRequest appends the encoding of a request holding c, or
// reports false when one of its strings needs escaping.
func appendCheckoutRequest(b []byte, r Request, c *Checkout) ([]byte, bool) {
	typ, err := c.Device.Type.MarshalText()
	if err != nil || c.Version.IsZero() {
		return b, false
	}
	if !plainString(c.Device.Value) || !plainString(c.Feature) || !plainString(c.Version.String()) || !plainString(string(typ)) {
		return b, false
	}
	b = append(b, `{"session":`...)
	b = strconv.AppendUint(b, uint64(r.ID.Session), 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, r.ID.Seq, 10)
	b = append(b, `,"at":`...)
	b = strconv.AppendInt(b, r.At.UnixNano(), 10)
	b = append(b, `,"type":"checkout","command":{"device":{"value":"`...)
	b = append(b, c.Device.Value...)
	b = append(b, `","type":"`...)
	b = append(b, typ...)
	b = append(b, `"},"feature":"`...)
	b = append(b, c.Feature...)
	b = append(b, `","version":"`...)
	b = append(b, c.Version.String()...)
	b = append(b, `","count":`...)
	b = strconv.AppendInt(b, c.Count, 10)
	if c.Borrow != 0 {
		b = append(b, `,"borrow":`...)
		b = strconv.AppendInt(b, int64(c.Borrow), 10)
	}
	if c.Conn != 0 {
		b = append(b, `,"conn":`...)
		b = strconv.AppendUint(b, c.Conn, 10)
	}
	return append(b, "}}"...), true
}

// plainString reports whether s is written by encoding/json as itself:
// printable ASCII other than the quote, the backslash and <, > and &,
// which encoding/json escapes.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// canonicalReader reads JSON in the canonical form the appenders here
// write: exact literals, plain strings, plain integers. A failure sticks
// (ok turns false) and the caller checks once at the end.
type canonicalReader struct {
	data []byte
	ok   bool
}

func (p *canonicalReader) lit(s string) {
	if p.ok && len(p.data) >= len(s) && string(p.data[:len(s)]) == s {
		p.data = p.data[len(s):]
		return
	}
	p.ok = false
}

// peek reports whether the input goes on with s.
func (p *canonicalReader) peek(s string) bool {
	return p.ok && len(p.data) >= len(s) && string(p.data[:len(s)]) == s
}

// str reads a plain string up to its closing quote, which it consumes.
func (p *canonicalReader) str() string {
	if !p.ok {
		return ""
	}
	for i := 0; i < len(p.data); i++ {
		switch c := p.data[i]; {
		case c == '"':
			s := string(p.data[:i])
			p.data = p.data[i+1:]
			return s
		case c < 0x20 || c >= 0x7f, c == '\\':
			p.ok = false
			return ""
		}
	}
	p.ok = false
	return ""
}

// uint reads a JSON integer without sign and without a leading zero that
// fits in 64 bits.
func (p *canonicalReader) uint() uint64 {
	if !p.ok {
		return 0
	}
	n := 0
	for n < len(p.data) && p.data[n] >= '0' && p.data[n] <= '9' {
		n++
	}
	if n == 0 || n > 20 || (n > 1 && p.data[0] == '0') {
		p.ok = false
		return 0
	}
	v, err := strconv.ParseUint(string(p.data[:n]), 10, 64)
	if err != nil {
		p.ok = false
		return 0
	}
	p.data = p.data[n:]
	return v
}

func (p *canonicalReader) int() int64 {
	neg := p.peek("-")
	if neg {
		p.data = p.data[1:]
	}
	v := p.uint()
	if !p.ok || v > 1<<63-1 || (neg && v == 0) {
		p.ok = false
		return 0
	}
	if neg {
		return -int64(v)
	}
	return int64(v)
}

// decodeCheckoutRequest reads a request holding a Checkout in canonical
// form. ok false means the input is not in that form (not that it is
// bad): DecodeRequest then reads it as any other.
func decodeCheckoutRequest(data []byte) (r Request, err error, ok bool) {
	p := canonicalReader{data: data, ok: true}
	var c Checkout
	p.lit(`{"session":`)
	session := p.uint()
	p.lit(`,"seq":`)
	seq := p.uint()
	p.lit(`,"at":`)
	at := p.int()
	p.lit(`,"type":"checkout","command":{"device":{"value":"`)
	value := p.str()
	p.lit(`,"type":"`)
	typ := p.str()
	p.lit(`},"feature":"`)
	c.Feature = p.str()
	p.lit(`,"version":"`)
	ver := p.str()
	p.lit(`,"count":`)
	c.Count = p.int()
	if p.peek(`,"borrow":`) {
		p.lit(`,"borrow":`)
		c.Borrow = time.Duration(p.int())
	}
	if p.peek(`,"conn":`) {
		p.lit(`,"conn":`)
		c.Conn = p.uint()
	}
	p.lit("}}")
	if !p.ok || len(p.data) != 0 {
		return Request{}, nil, false
	}
	t, terr := hostid.ParseType(typ)
	v, verr := version.Parse(ver)
	if terr != nil || verr != nil {
		// The slow path says which, as it always has.
		return Request{}, nil, false
	}
	c.Device = hostid.HostID{Value: value, Type: t}
	c.Version = v
	if err := c.validate(); err != nil {
		return Request{}, err, true
	}
	r = Request{ID: RequestID{Session: SessionID(session), Seq: seq}, At: time.Unix(0, at).UTC(), Command: &c}
	if r.ID.Session == 0 || r.ID.Seq == 0 {
		return Request{}, errZeroRequestID(), true
	}
	return r, nil, true
}
