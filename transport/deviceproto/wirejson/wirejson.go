// Package wirejson reads and writes the JSON of the device protocol's
// frequent messages by hand: capability requests, which the server reads
// and the device writes, and signed responses, which the server writes
// and the device reads. What it writes is byte for byte what encoding/json
// writes for the same values. What it reads is a strict subset of the JSON
// encoding/json accepts (exact field names, each at most once, strings
// without escapes, integers only); a reader that meets anything else
// reports false and its caller decodes the message with encoding/json, so
// that every message means the same and every bad one gets the same error
// either way. The fuzz tests of its callers hold both to this.
package wirejson

import (
	"encoding/base64"
	"time"
	"unicode/utf8"
)

// AppendTime appends t as time.Time's MarshalJSON writes it; ok turns
// false for a time that MarshalJSON refuses.
func AppendTime(b []byte, t time.Time, ok bool) ([]byte, bool) {
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

// AppendBytes appends b as encoding/json writes a []byte: standard base64
// in quotes, null for nil.
func AppendBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// AppendString appends s quoted as encoding/json writes it, HTML
// characters, U+2028 and U+2029 escaped and invalid UTF-8 replaced.
func AppendString(dst []byte, s string) []byte {
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

// Reader reads JSON from B at I. Every method skips the space before what
// it reads.
type Reader struct {
	B []byte
	I int
}

// Space skips white space.
func (r *Reader) Space() {
	for r.I < len(r.B) {
		switch r.B[r.I] {
		case ' ', '\t', '\n', '\r':
			r.I++
		default:
			return
		}
	}
}

// Consume skips space and then c, if c is next.
func (r *Reader) Consume(c byte) bool {
	r.Space()
	if r.I < len(r.B) && r.B[r.I] == c {
		r.I++
		return true
	}
	return false
}

// Literal skips space and then s, if s is next.
func (r *Reader) Literal(s string) bool {
	r.Space()
	if len(r.B)-r.I >= len(s) && string(r.B[r.I:r.I+len(s)]) == s {
		r.I += len(s)
		return true
	}
	return false
}

// End skips space and reports whether nothing follows.
func (r *Reader) End() bool {
	r.Space()
	return r.I == len(r.B)
}

// RawString reads a string without escapes or control characters whose
// bytes are valid UTF-8, and returns its bytes.
func (r *Reader) RawString() ([]byte, bool) {
	if !r.Consume('"') {
		return nil, false
	}
	start := r.I
	ascii := true
	for ; r.I < len(r.B); r.I++ {
		switch c := r.B[r.I]; {
		case c == '"':
			s := r.B[start:r.I]
			r.I++
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

// String reads what RawString reads, as a string.
func (r *Reader) String() (string, bool) {
	s, ok := r.RawString()
	return string(s), ok
}

// Bytes reads a []byte as encoding/json does: a base64 string (standard
// encoding, padded) or null for nil.
func (r *Reader) Bytes() ([]byte, bool) {
	if r.Literal("null") {
		return nil, true
	}
	s, ok := r.RawString()
	if !ok {
		return nil, false
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(b, s)
	if err != nil {
		return nil, false
	}
	return b[:n], true
}

// Time reads a time as time.Time's UnmarshalJSON does.
func (r *Reader) Time() (time.Time, bool) {
	r.Space()
	start := r.I
	if _, ok := r.RawString(); !ok {
		return time.Time{}, false
	}
	var t time.Time
	if err := t.UnmarshalJSON(r.B[start:r.I]); err != nil {
		return time.Time{}, false
	}
	return t, true
}

// digits reads an unsigned integer without fraction or exponent.
func (r *Reader) digits() (uint64, bool) {
	start := r.I
	var n uint64
	for ; r.I < len(r.B) && r.B[r.I] >= '0' && r.B[r.I] <= '9'; r.I++ {
		d := uint64(r.B[r.I] - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	switch {
	case r.I == start, r.B[start] == '0' && r.I-start > 1:
		return 0, false
	case r.I < len(r.B) && (r.B[r.I] == '.' || r.B[r.I] == 'e' || r.B[r.I] == 'E'):
		return 0, false
	}
	return n, true
}

// Uint reads an unsigned integer.
func (r *Reader) Uint() (uint64, bool) {
	r.Space()
	return r.digits()
}

// Int reads a signed integer that fits in 64 bits.
func (r *Reader) Int() (int64, bool) {
	neg := r.Consume('-')
	if !neg {
		r.Space()
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

// Key reads an object key and the colon after it.
func (r *Reader) Key() ([]byte, bool) {
	k, ok := r.RawString()
	return k, ok && r.Consume(':')
}
