package discovery

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Wire constants of version 1. docs/discovery.md is the specification.
const (
	// Version is the only packet version this package speaks.
	Version = 1
	// MaxPacketSize bounds every packet, so that one always fits an
	// unfragmented datagram on any IPv4 or IPv6 path.
	MaxPacketSize = 1200
	// HeaderSize is the length of the fixed header: magic, version, type,
	// flags and nonce.
	HeaderSize = 22
	// AmplificationFactor bounds a reply: no reply is sent that is more than
	// this many times the size of the request it answers.
	AmplificationFactor = 3
	// MinRequestSize is what DISCOVER, SCAN and PING are padded to, so that
	// any reply of at most MaxPacketSize passes the amplification rule.
	MinRequestSize = MaxPacketSize / AmplificationFactor
	// DefaultPort is the UDP port of tallyd and tally-agent.
	DefaultPort = 30005

	// MaxEndpoints bounds the endpoints of an OFFER or INVITE.
	MaxEndpoints = 16
	// MaxHostIDs bounds the HostIDs of a PRESENT.
	MaxHostIDs = 16
	// MaxNameLen bounds a cluster name, node ID or leader hint.
	MaxNameLen = 64
	// MaxTextLen bounds an alias and a HostID value.
	MaxTextLen = 128
	// MaxURLLen bounds an endpoint URL.
	MaxURLLen = 255
	// MaxCertificateLen bounds the DER certificate of an OFFER or INVITE.
	MaxCertificateLen = 1024
	// MinSecretLen and MaxSecretLen bound an INVITE's key secret, as
	// core bounds a key secret.
	MinSecretLen = 8
	MaxSecretLen = 128
	// MaxSignatureLen is the longest DER ECDSA P-256 signature.
	MaxSignatureLen = 72

	minSignatureLen = 8
	fieldHeaderSize = 3
	fingerprintSize = 32
)

var magic = [3]byte{'T', 'L', 'Y'}

// Type is the kind of a packet.
type Type uint8

// The packet types of version 1.
const (
	TypeDiscover Type = 1 // device -> broadcast: where is Tally?
	TypeOffer    Type = 2 // server -> device: here, signed
	TypeScan     Type = 3 // server -> broadcast: who is there?
	TypePresent  Type = 4 // agent -> server: I am
	TypePing     Type = 5 // server -> device: are you online?
	TypePong     Type = 6 // device -> server: yes
	TypeInvite   Type = 7 // server -> agent: onboard here with this key, signed
)

// maxType is the highest type of version 1; types run from TypeDiscover to
// it without gaps.
const maxType = TypeInvite

var typeNames = [maxType + 1]string{TypeDiscover: "discover", TypeOffer: "offer", TypeScan: "scan",
	TypePresent: "present", TypePing: "ping", TypePong: "pong", TypeInvite: "invite"}

// String returns the lower-case name of the type, e.g. "offer".
func (t Type) String() string {
	if t >= TypeDiscover && t <= maxType {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// flagOnboarded is set in a PRESENT from a device that is onboarded.
const flagOnboarded = 0x01

// Nonce is the random value a request carries and its answer echoes.
type Nonce [16]byte

// Fingerprint is the SHA-256 of a DER certificate. The zero Fingerprint
// means none.
type Fingerprint [fingerprintSize]byte

// IsZero reports whether f is the zero Fingerprint (no fingerprint).
func (f Fingerprint) IsZero() bool { return f == Fingerprint{} }

// String returns f as colon-separated upper-case hex pairs, as
// `openssl x509 -noout -fingerprint -sha256` prints it, or "" for the zero
// Fingerprint.
func (f Fingerprint) String() string {
	if f.IsZero() {
		return ""
	}
	h := strings.ToUpper(hex.EncodeToString(f[:]))
	var b strings.Builder
	b.Grow(len(h) + len(f) - 1)
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// ParseFingerprint reads a SHA-256 fingerprint in hex, with or without
// colons, in either case.
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	h := strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	if len(h) != 2*fingerprintSize {
		return f, fmt.Errorf("%w: fingerprint %q is not 32 hex bytes", ErrFingerprint, s)
	}
	if _, err := hex.Decode(f[:], []byte(h)); err != nil {
		return f, fmt.Errorf("%w: fingerprint %q: %v", ErrFingerprint, s, err)
	}
	return f, nil
}

// HostIDType is the kind of a HostID. The values are those of
// core/hostid.Type, so that a conversion is all the wiring needs.
type HostIDType uint8

// The HostID types.
const (
	HostIDEthernet HostIDType = 1
	HostIDUUID     HostIDType = 2
	HostIDSerial   HostIDType = 3
	HostIDString   HostIDType = 4
	HostIDUser     HostIDType = 5
)

// HostID is one identity of a device: a type and its value in canonical
// text form (for example ETHERNET "00:11:22:aa:bb:cc"). The zero HostID
// means none.
type HostID struct {
	Type  HostIDType
	Value string
}

// IsZero reports whether h is the zero HostID.
func (h HostID) IsZero() bool { return h == HostID{} }

// Endpoint is one node of a cluster and the wss URL of its device protocol.
type Endpoint struct {
	NodeID string
	URL    string
}

// Packet is one discovery packet. Which fields a type carries, and which of
// them it must carry, is in docs/discovery.md; Encode and Decode enforce it.
// Zero values mean absent.
type Packet struct {
	Type  Type
	Nonce Nonce

	// HostIDHint is DISCOVER's optional hint of the asking device.
	HostIDHint HostID
	// Padding is the number of zero bytes in the padding field of a
	// DISCOVER, SCAN or PING.
	Padding int

	// OFFER and INVITE.
	Endpoints   []Endpoint
	Cluster     string
	Leader      string // node ID of the leader, as the answering node sees it
	NodeID      string // node ID of the answering node
	Fingerprint Fingerprint
	Certificate []byte // DER licensing ID certificate
	Timestamp   time.Time
	Signature   []byte

	// SCAN (and Fingerprint above).
	ReplyPort uint16

	// PRESENT.
	HostIDs       []HostID
	Alias         string
	Onboarded     bool
	OnboardedWith Fingerprint

	// PONG.
	DeviceID HostID

	// INVITE (and the OFFER fields above): the invited device and the
	// secret of the one-time key the server made for it.
	Device HostID
	Secret string
}

// Field tags, in the order they appear in a packet.
const (
	tagHostIDHint    = 0x01
	tagEndpoint      = 0x02
	tagCluster       = 0x03
	tagLeader        = 0x04
	tagNodeID        = 0x05
	tagFingerprint   = 0x06
	tagCertificate   = 0x07
	tagTimestamp     = 0x08
	tagReplyPort     = 0x09
	tagHostID        = 0x0A
	tagAlias         = 0x0B
	tagOnboardedWith = 0x0C
	tagDeviceID      = 0x0D
	tagDevice        = 0x0E
	tagSecret        = 0x0F
	tagPadding       = 0x7E
	tagSignature     = 0x7F
)

// typeSet is a set of packet types, one bit each.
type typeSet uint8

func setOf(ts ...Type) typeSet {
	var s typeSet
	for _, t := range ts {
		s |= 1 << t
	}
	return s
}

func (s typeSet) has(t Type) bool { return s&(1<<t) != 0 }

// signedTypes are the types signed with the licensing ID; they share the
// fields that say where the cluster is and who signs.
var signedTypes = setOf(TypeOffer, TypeInvite)

// fieldRule says where a field may appear and how long its value may be.
type fieldRule struct {
	name       string
	allowed    typeSet
	required   typeSet
	repeatable bool
	min, max   int
}

var fieldRules = map[byte]fieldRule{
	tagHostIDHint:    {name: "hostid hint", allowed: setOf(TypeDiscover), min: 2, max: 1 + MaxTextLen},
	tagEndpoint:      {name: "endpoint", allowed: signedTypes, required: signedTypes, repeatable: true, min: 2 + len("wss://x"), max: 1 + MaxNameLen + MaxURLLen},
	tagCluster:       {name: "cluster", allowed: signedTypes, min: 1, max: MaxNameLen},
	tagLeader:        {name: "leader", allowed: signedTypes, min: 1, max: MaxNameLen},
	tagNodeID:        {name: "node id", allowed: signedTypes, required: signedTypes, min: 1, max: MaxNameLen},
	tagFingerprint:   {name: "fingerprint", allowed: signedTypes | setOf(TypeScan), required: signedTypes | setOf(TypeScan), min: fingerprintSize, max: fingerprintSize},
	tagCertificate:   {name: "certificate", allowed: signedTypes, required: signedTypes, min: 1, max: MaxCertificateLen},
	tagTimestamp:     {name: "timestamp", allowed: signedTypes, required: signedTypes, min: 8, max: 8},
	tagReplyPort:     {name: "reply port", allowed: setOf(TypeScan), required: setOf(TypeScan), min: 2, max: 2},
	tagHostID:        {name: "hostid", allowed: setOf(TypePresent), required: setOf(TypePresent), repeatable: true, min: 2, max: 1 + MaxTextLen},
	tagAlias:         {name: "alias", allowed: setOf(TypePresent), min: 1, max: MaxTextLen},
	tagOnboardedWith: {name: "onboarded with", allowed: setOf(TypePresent), min: fingerprintSize, max: fingerprintSize},
	tagDeviceID:      {name: "device id", allowed: setOf(TypePong), required: setOf(TypePong), min: 2, max: 1 + MaxTextLen},
	tagDevice:        {name: "device", allowed: setOf(TypeInvite), required: setOf(TypeInvite), min: 2, max: 1 + MaxTextLen},
	tagSecret:        {name: "secret", allowed: setOf(TypeInvite), required: setOf(TypeInvite), min: MinSecretLen, max: MaxSecretLen},
	tagPadding:       {name: "padding", allowed: setOf(TypeDiscover, TypeScan, TypePing), min: 1, max: MaxPacketSize},
	tagSignature:     {name: "signature", allowed: signedTypes, required: signedTypes, min: minSignatureLen, max: MaxSignatureLen},
}

// requiredTags lists, in tag order, the fields some type requires.
var requiredTags = []byte{tagEndpoint, tagNodeID, tagFingerprint, tagCertificate, tagTimestamp, tagReplyPort, tagHostID,
	tagDeviceID, tagDevice, tagSecret, tagSignature}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Decode parses one packet. It returns ErrVersion for a Tally packet of
// another version and ErrMalformed for anything else that is not a valid
// version 1 packet. It reads b only within its bounds and keeps no
// reference to it.
func Decode(b []byte) (Packet, error) {
	p, _, err := decode(b)
	return p, err
}

// decode parses b and also returns the offset of the signature field, the
// end of the signed bytes of an OFFER or INVITE (0 for other types).
func decode(b []byte) (Packet, int, error) {
	var p Packet
	if len(b) > MaxPacketSize {
		return p, 0, malformed("%d bytes, more than %d", len(b), MaxPacketSize)
	}
	if len(b) < 4 || !bytes.Equal(b[:3], magic[:]) {
		return p, 0, malformed("not a Tally discovery packet")
	}
	if b[3] != Version {
		return p, 0, fmt.Errorf("%w: version %d", ErrVersion, b[3])
	}
	if len(b) < HeaderSize {
		return p, 0, malformed("truncated header: %d bytes", len(b))
	}
	p.Type = Type(b[4])
	if p.Type < TypeDiscover || p.Type > maxType {
		return p, 0, malformed("unknown type %d", b[4])
	}
	flags := b[5]
	if flags&^flagOnboarded != 0 || (flags&flagOnboarded != 0 && p.Type != TypePresent) {
		return p, 0, malformed("flags %#02x not allowed for %s", flags, p.Type)
	}
	p.Onboarded = flags&flagOnboarded != 0
	copy(p.Nonce[:], b[6:HeaderSize])

	var seen [128]bool
	sigOffset := 0
	last := -1
	rest := b[HeaderSize:]
	for off := HeaderSize; len(rest) > 0; {
		if len(rest) < fieldHeaderSize {
			return p, 0, malformed("truncated field header at %d", off)
		}
		tag := rest[0]
		n := int(binary.BigEndian.Uint16(rest[1:3]))
		if n > len(rest)-fieldHeaderSize {
			return p, 0, malformed("field %#02x at %d: %d bytes, only %d left", tag, off, n, len(rest)-fieldHeaderSize)
		}
		rule, ok := fieldRules[tag]
		if !ok {
			return p, 0, malformed("unknown field %#02x at %d", tag, off)
		}
		if !rule.allowed.has(p.Type) {
			return p, 0, malformed("%s field not allowed in %s", rule.name, p.Type)
		}
		if int(tag) < last || (int(tag) == last && !rule.repeatable) {
			return p, 0, malformed("%s field at %d out of order or repeated", rule.name, off)
		}
		if n < rule.min || n > rule.max {
			return p, 0, malformed("%s field of %d bytes, want %d to %d", rule.name, n, rule.min, rule.max)
		}
		v := rest[fieldHeaderSize : fieldHeaderSize+n]
		if err := p.setField(tag, v); err != nil {
			return p, 0, err
		}
		if tag == tagSignature {
			sigOffset = off
		}
		seen[tag] = true
		last = int(tag)
		off += fieldHeaderSize + n
		rest = rest[fieldHeaderSize+n:]
	}
	for _, tag := range requiredTags {
		if rule := fieldRules[tag]; rule.required.has(p.Type) && !seen[tag] {
			return p, 0, malformed("%s without %s field", p.Type, rule.name)
		}
	}
	if !p.OnboardedWith.IsZero() && !p.Onboarded {
		return p, 0, malformed("onboarded-with field without the onboarded flag")
	}
	return p, sigOffset, nil
}

// setField stores one field's value, which has a length within its rule.
func (p *Packet) setField(tag byte, v []byte) error {
	switch tag {
	case tagHostIDHint, tagHostID, tagDeviceID, tagDevice:
		h, err := decodeHostID(v)
		if err != nil {
			return err
		}
		switch tag {
		case tagHostIDHint:
			p.HostIDHint = h
		case tagHostID:
			if len(p.HostIDs) == MaxHostIDs {
				return malformed("more than %d hostids", MaxHostIDs)
			}
			p.HostIDs = append(p.HostIDs, h)
		case tagDeviceID:
			p.DeviceID = h
		default:
			p.Device = h
		}
	case tagEndpoint:
		if len(p.Endpoints) == MaxEndpoints {
			return malformed("more than %d endpoints", MaxEndpoints)
		}
		n := int(v[0])
		if n < 1 || n > MaxNameLen || len(v)-1-n < len("wss://x") || len(v)-1-n > MaxURLLen {
			return malformed("endpoint with a node id of %d bytes and a URL of %d", n, len(v)-1-n)
		}
		id, url := string(v[1:1+n]), string(v[1+n:])
		if !validText(id) || !validText(url) || !strings.HasPrefix(url, "wss://") {
			return malformed("endpoint %q %q", id, url)
		}
		p.Endpoints = append(p.Endpoints, Endpoint{NodeID: id, URL: url})
	case tagCluster, tagLeader, tagNodeID, tagAlias:
		s := string(v)
		if !validText(s) {
			return malformed("%s is not printable UTF-8", fieldRules[tag].name)
		}
		switch tag {
		case tagCluster:
			p.Cluster = s
		case tagLeader:
			p.Leader = s
		case tagNodeID:
			p.NodeID = s
		default:
			p.Alias = s
		}
	case tagFingerprint, tagOnboardedWith:
		var f Fingerprint
		copy(f[:], v)
		if f.IsZero() {
			return malformed("zero %s", fieldRules[tag].name)
		}
		if tag == tagFingerprint {
			p.Fingerprint = f
		} else {
			p.OnboardedWith = f
		}
	case tagCertificate:
		p.Certificate = bytes.Clone(v)
	case tagTimestamp:
		ms := int64(binary.BigEndian.Uint64(v))
		if ms <= 0 {
			return malformed("timestamp %d", ms)
		}
		p.Timestamp = time.UnixMilli(ms)
	case tagReplyPort:
		p.ReplyPort = binary.BigEndian.Uint16(v)
		if p.ReplyPort == 0 {
			return malformed("reply port 0")
		}
	case tagPadding:
		for _, c := range v {
			if c != 0 {
				return malformed("padding that is not zero")
			}
		}
		p.Padding = len(v)
	case tagSecret:
		if !validSecret(string(v)) {
			return malformed("secret is not printable ASCII without a space at either end")
		}
		p.Secret = string(v)
	case tagSignature:
		p.Signature = bytes.Clone(v)
	}
	return nil
}

func decodeHostID(v []byte) (HostID, error) {
	h := HostID{Type: HostIDType(v[0]), Value: string(v[1:])}
	if !validHostID(h) {
		return HostID{}, malformed("hostid of type %d with the value %q", v[0], h.Value)
	}
	return h, nil
}

// validHostID reports whether h can be encoded: a known type and a value
// of 1 to MaxTextLen bytes of text.
func validHostID(h HostID) bool {
	return h.Type >= HostIDEthernet && h.Type <= HostIDUser && len(h.Value) >= 1 && len(h.Value) <= MaxTextLen && validText(h.Value)
}

// validSecret reports whether s is a key secret as core accepts one:
// MinSecretLen to MaxSecretLen bytes of printable ASCII (0x20 to 0x7E),
// neither starting nor ending with a space.
func validSecret(s string) bool {
	if len(s) < MinSecretLen || len(s) > MaxSecretLen || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := range len(s) {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// validText reports whether s is UTF-8 without control characters.
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Encode writes p in the version 1 encoding. The result is checked with
// Decode, so Encode never writes what Decode refuses: it returns
// ErrTooLarge past MaxPacketSize and ErrInvalid for fields a packet of
// p.Type may not carry, lacks or cannot hold. An OFFER or INVITE is
// written with the Signature it has; SignOffer and SignInvite make one.
func Encode(p Packet) ([]byte, error) {
	b, err := appendUnsigned(make([]byte, 0, 256), p)
	if err != nil {
		return nil, err
	}
	if p.Signature != nil {
		if b, err = appendField(b, tagSignature, p.Signature); err != nil {
			return nil, err
		}
	}
	return check(b)
}

// check decodes an encoded packet and turns a refusal into ErrInvalid.
func check(b []byte) ([]byte, error) {
	if _, _, err := decode(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return b, nil
}

// appendUnsigned appends the header and every field of p but the
// signature, in tag order.
func appendUnsigned(b []byte, p Packet) ([]byte, error) {
	var flags byte
	if p.Onboarded {
		flags |= flagOnboarded
	}
	b = append(b, magic[:]...)
	b = append(b, Version, byte(p.Type), flags)
	b = append(b, p.Nonce[:]...)
	var err error
	add := func(tag byte, v []byte) {
		if err == nil {
			b, err = appendField(b, tag, v)
		}
	}
	if !p.HostIDHint.IsZero() {
		add(tagHostIDHint, hostIDBytes(p.HostIDHint))
	}
	for _, e := range p.Endpoints {
		v := make([]byte, 0, 1+len(e.NodeID)+len(e.URL))
		v = append(v, byte(min(len(e.NodeID), 255)))
		add(tagEndpoint, append(append(v, e.NodeID...), e.URL...))
	}
	addText := func(tag byte, s string) {
		if s != "" {
			add(tag, []byte(s))
		}
	}
	addText(tagCluster, p.Cluster)
	addText(tagLeader, p.Leader)
	addText(tagNodeID, p.NodeID)
	if !p.Fingerprint.IsZero() {
		add(tagFingerprint, p.Fingerprint[:])
	}
	if p.Certificate != nil {
		add(tagCertificate, p.Certificate)
	}
	if !p.Timestamp.IsZero() {
		add(tagTimestamp, binary.BigEndian.AppendUint64(nil, uint64(p.Timestamp.UnixMilli())))
	}
	if p.ReplyPort != 0 {
		add(tagReplyPort, binary.BigEndian.AppendUint16(nil, p.ReplyPort))
	}
	for _, h := range p.HostIDs {
		add(tagHostID, hostIDBytes(h))
	}
	addText(tagAlias, p.Alias)
	if !p.OnboardedWith.IsZero() {
		add(tagOnboardedWith, p.OnboardedWith[:])
	}
	if !p.DeviceID.IsZero() {
		add(tagDeviceID, hostIDBytes(p.DeviceID))
	}
	if !p.Device.IsZero() {
		add(tagDevice, hostIDBytes(p.Device))
	}
	addText(tagSecret, p.Secret)
	if p.Padding > 0 {
		if p.Padding > MaxPacketSize {
			return nil, fmt.Errorf("%w: %d bytes of padding", ErrTooLarge, p.Padding)
		}
		add(tagPadding, make([]byte, p.Padding))
	}
	return b, err
}

func hostIDBytes(h HostID) []byte {
	return append([]byte{byte(h.Type)}, h.Value...)
}

// appendField appends one field, refusing to grow b past MaxPacketSize.
func appendField(b []byte, tag byte, v []byte) ([]byte, error) {
	if len(b)+fieldHeaderSize+len(v) > MaxPacketSize {
		return nil, fmt.Errorf("%w: %s field takes it past %d bytes", ErrTooLarge, fieldRules[tag].name, MaxPacketSize)
	}
	b = append(b, tag)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...), nil
}

// padTo returns the padding that brings an encoded packet of n bytes to at
// least size bytes.
func padTo(n, size int) int {
	if n >= size {
		return 0
	}
	return max(1, size-n-fieldHeaderSize)
}

// EncodeRequest encodes a DISCOVER, SCAN or PING padded to at least
// MinRequestSize bytes, so that its answer passes the amplification rule.
func EncodeRequest(p Packet) ([]byte, error) {
	p.Padding = 0
	b, err := Encode(p)
	if err != nil {
		return nil, err
	}
	if p.Padding = padTo(len(b), MinRequestSize); p.Padding == 0 {
		return b, nil
	}
	return Encode(p)
}
