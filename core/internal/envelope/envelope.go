// Package envelope is the signed JSON envelope that rights files (package
// rights) and capability requests and responses (package capability) share:
//
//	{"format":"<format>","key":"<signer's fingerprint>",
//	 "payload":"<standard base64 of the payload JSON>",
//	 "signature":"<standard base64 of an ASN.1 ECDSA P-256 signature>"}
//
// The signature covers SHA-256 of the format's signing context, a zero byte
// and the exact payload bytes, so that a signature made for one format can
// never pass for another, or for anything else the same key signs (the
// discovery packets, for one, sign "tally-offer/1" and a zero byte). Rights
// files ("tally-rights/1") predate contexts: their signature covers the
// payload alone, and since every payload a producer signs is a JSON object,
// it never starts with a context string.
//
// A Spec names a format and the errors of the package that owns it, so that
// both packages read and write envelopes the same way and still refuse with
// their own sentinels.
package envelope

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/tallyhq/tally/core/strictjson"
)

// Spec is one signed format and the errors its package refuses with.
type Spec struct {
	// Format is the envelope's format string.
	Format string
	// Context is prefixed, with a zero byte, to the signed payload; empty
	// only for tally-rights/1.
	Context string
	// MaxBytes bounds an envelope; a larger one is refused unread.
	MaxBytes int
	// The owning package's sentinels, which every error wraps.
	ErrMalformed, ErrUntrustedKey, ErrBadSignature, ErrInvalidKey error
}

// Opened is an envelope whose fields were read and decoded, not yet
// verified.
type Opened struct {
	// Key names the signer: the fingerprint of its public key or
	// certificate.
	Key       string
	Payload   []byte
	Signature []byte
}

// wire is the outer JSON object.
type wire struct {
	Format    string `json:"format"`
	Key       string `json:"key"`
	Payload   string `json:"payload"`
	Signature string `json:"signature"`
}

// digest is what a signature of the spec's format covers.
func (s *Spec) digest(payload []byte) []byte {
	h := sha256.New()
	if s.Context != "" {
		h.Write([]byte(s.Context))
		h.Write([]byte{0})
	}
	h.Write(payload)
	return h.Sum(nil)
}

// Seal encodes payload as JSON, signs it with key, names the signer as
// signer (the key's KeyFingerprint when empty), and returns the envelope
// followed by a newline. random is passed to crypto/ecdsa; nil means
// crypto/rand.
func (s *Spec) Seal(key *ecdsa.PrivateKey, signer string, payload any, random io.Reader) ([]byte, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", s.Format, err)
	}
	if key == nil {
		return nil, fmt.Errorf("%w: no key", s.ErrInvalidKey)
	}
	if err := CheckP256(&key.PublicKey); err != nil {
		return nil, fmt.Errorf("%w: %w", s.ErrInvalidKey, err)
	}
	if signer == "" {
		signer = KeyFingerprint(&key.PublicKey)
	}
	if random == nil {
		random = rand.Reader
	}
	sig, err := ecdsa.SignASN1(random, key, s.digest(body))
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", s.Format, err)
	}
	out, err := json.Marshal(wire{
		Format:    s.Format,
		Key:       signer,
		Payload:   base64.StdEncoding.EncodeToString(body),
		Signature: base64.StdEncoding.EncodeToString(sig),
	})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", s.Format, err)
	}
	return append(out, '\n'), nil
}

// Open reads an envelope of the spec's format: its size, the format string,
// the envelope as strict JSON (no unknown fields, no trailing data) and the
// base64 of payload and signature. It verifies nothing; every error wraps
// ErrMalformed.
func (s *Spec) Open(data []byte) (Opened, error) {
	if len(data) > s.MaxBytes {
		return Opened{}, fmt.Errorf("%w: %d bytes, at most %d", s.ErrMalformed, len(data), s.MaxBytes)
	}
	var probe struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return Opened{}, fmt.Errorf("%w: %w", s.ErrMalformed, err)
	}
	if probe.Format != s.Format {
		return Opened{}, fmt.Errorf("%w: format %q, want %q", s.ErrMalformed, probe.Format, s.Format)
	}
	var w wire
	if err := strictjson.Unmarshal(data, &w); err != nil {
		return Opened{}, fmt.Errorf("%w: %w", s.ErrMalformed, err)
	}
	payload, err := base64.StdEncoding.Strict().DecodeString(w.Payload)
	if err != nil {
		return Opened{}, fmt.Errorf("%w: payload: %w", s.ErrMalformed, err)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(w.Signature)
	if err != nil {
		return Opened{}, fmt.Errorf("%w: signature: %w", s.ErrMalformed, err)
	}
	return Opened{Key: w.Key, Payload: payload, Signature: sig}, nil
}

// Check verifies the signature of an opened envelope with pub; the error
// wraps ErrBadSignature.
func (s *Spec) Check(pub *ecdsa.PublicKey, o Opened) error {
	if !ecdsa.VerifyASN1(pub, s.digest(o.Payload), o.Signature) {
		return fmt.Errorf("%w with key %s", s.ErrBadSignature, o.Key)
	}
	return nil
}

// Decode reads a payload as strict JSON into v; the error wraps
// ErrMalformed.
func (s *Spec) Decode(payload []byte, v any) error {
	if err := strictjson.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("%w: payload: %w", s.ErrMalformed, err)
	}
	return nil
}

// Trust is what a server checks producer-signed envelopes against: its own
// certificate fingerprint and the producer keys it trusts. It is safe for
// concurrent use.
type Trust struct {
	// Server is the fingerprint the payloads must name.
	Server string
	keys   map[string]*ecdsa.PublicKey // by KeyFingerprint
}

// NewTrust returns the trust of a server in the given keys; nil keys and
// keys that cannot be encoded are skipped.
func NewTrust(server string, keys ...*ecdsa.PublicKey) Trust {
	t := Trust{Server: server, keys: make(map[string]*ecdsa.PublicKey, len(keys))}
	for _, pub := range keys {
		if fp := KeyFingerprint(pub); fp != "" {
			t.keys[fp] = pub
		}
	}
	return t
}

// Open opens an envelope of the spec's format, finds the key it names
// among the trusted ones (ErrUntrustedKey when it is not there), checks the
// signature and decodes the payload into v. Whether the payload names
// t.Server is the caller's to check.
func (t Trust) Open(s *Spec, data []byte, v any) error {
	o, err := s.Open(data)
	if err != nil {
		return err
	}
	pub := t.keys[o.Key]
	if pub == nil {
		return fmt.Errorf("%w: key %s", s.ErrUntrustedKey, o.Key)
	}
	if err := s.Check(pub, o); err != nil {
		return err
	}
	return s.Decode(o.Payload, v)
}

// KeyFingerprint names a public key: SHA-256 of its DER
// SubjectPublicKeyInfo as colon-separated upper-case hex pairs. It returns
// "" for a key that cannot be encoded (nil or on no known curve).
func KeyFingerprint(pub *ecdsa.PublicKey) string {
	if pub == nil || pub.Curve == nil {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	return ColonHex(sha256.Sum256(der))
}

// ColonHex writes a digest as "AB:CD:…", the form openssl prints.
func ColonHex(sum [sha256.Size]byte) string {
	const digits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(sum) * 3)
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&0x0f])
	}
	return b.String()
}

// CheckP256 refuses keys on curves other than P-256: each format names one
// algorithm, so a verifier never has to guess.
func CheckP256(pub *ecdsa.PublicKey) error {
	if pub == nil || pub.Curve != elliptic.P256() {
		return fmt.Errorf("key is not on curve P-256")
	}
	return nil
}
