package discovery

import (
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"
)

// The signature contexts are prefixed, with a zero byte, to the signed
// bytes of a packet, so that the signature of one type can never pass for
// that of another, or for anything else the licensing ID signs.
const (
	offerContext  = "tally-offer/1"
	inviteContext = "tally-invite/1"
)

// signatureContext returns the context of a signed type.
func signatureContext(t Type) string {
	if t == TypeInvite {
		return inviteContext
	}
	return offerContext
}

// signedDigest returns the SHA-256 the signature of a packet of type t
// covers: its context string, a zero byte, and the packet up to its
// signature field.
func signedDigest(t Type, signed []byte) []byte {
	h := sha256.New()
	h.Write([]byte(signatureContext(t)))
	h.Write([]byte{0})
	h.Write(signed)
	return h.Sum(nil)
}

// SignOffer encodes an OFFER and signs it with signer, the main licensing
// ID. p.Signature is ignored; random is passed to the signer. The result is
// at most MaxPacketSize bytes or the error is ErrTooLarge.
func SignOffer(p Packet, signer crypto.Signer, random io.Reader) ([]byte, error) {
	p.Type = TypeOffer
	return sign(p, signer, random)
}

// sign encodes p, an OFFER or INVITE, and signs it in its type's context.
func sign(p Packet, signer crypto.Signer, random io.Reader) ([]byte, error) {
	p.Signature = nil
	b, err := appendUnsigned(make([]byte, 0, 1024), p)
	if err != nil {
		return nil, err
	}
	sig, err := signer.Sign(random, signedDigest(p.Type, b), crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", p.Type, err)
	}
	if b, err = appendField(b, tagSignature, sig); err != nil {
		return nil, err
	}
	return check(b)
}

// Offer is a verified OFFER: one node's answer to a DISCOVER.
type Offer struct {
	// From is the address the OFFER came from.
	From netip.AddrPort
	// NodeID is the answering node; Leader is the node it names as the
	// leader (empty when it knows none).
	NodeID string
	Leader string
	// Cluster is the cluster's name, if it has one.
	Cluster string
	// Endpoints are the wss URLs of every node of the cluster.
	Endpoints []Endpoint
	// Fingerprint is the SHA-256 of Certificate, the main licensing ID.
	Fingerprint Fingerprint
	Certificate []byte
	// Timestamp is when the node made the OFFER, by its clock.
	Timestamp time.Time
}

// IsLeader reports whether the answering node says it is the leader.
func (o Offer) IsLeader() bool { return o.Leader != "" && o.Leader == o.NodeID }

// URLs returns the endpoint URLs in the order to try them: the leader's
// first, then the answering node's, then the others as listed.
func (o Offer) URLs() []string { return orderedURLs(o.Endpoints, o.Leader, o.NodeID) }

// orderedURLs returns the URLs of endpoints, the leader's first, then the
// sending node's, then the others as listed.
func orderedURLs(endpoints []Endpoint, leader, node string) []string {
	rank := func(e Endpoint) int {
		switch e.NodeID {
		case leader:
			return 0
		case node:
			return 1
		}
		return 2
	}
	eps := slices.Clone(endpoints)
	slices.SortStableFunc(eps, func(a, b Endpoint) int { return cmp.Compare(rank(a), rank(b)) })
	urls := make([]string, len(eps))
	for i, e := range eps {
		urls[i] = e.URL
	}
	return urls
}

// VerifyPolicy is what VerifyOffer checks an OFFER against, and
// VerifyInvite an INVITE.
type VerifyPolicy struct {
	// Nonce is the nonce of the DISCOVER the OFFER must answer. An INVITE
	// answers no request, so VerifyInvite ignores it.
	Nonce Nonce
	// Pinned, when not zero, is the only licensing ID fingerprint accepted.
	Pinned Fingerprint
	// Now is the client's time and MaxSkew how far the packet's timestamp
	// may be from it in either direction.
	Now     time.Time
	MaxSkew time.Duration
}

// VerifyOffer decodes an OFFER and checks it: it answers the nonce sent
// (else ErrNonce), its fingerprint is the SHA-256 of the certificate it
// carries and, when pinned, the pin (else ErrFingerprint), the
// certificate holds an ECDSA P-256 key (else ErrBadCertificate) whose
// signature covers the OFFER (else ErrBadSignature), and its timestamp is
// within the skew (else ErrStale). Decoding errors are ErrVersion or
// ErrMalformed.
func VerifyOffer(b []byte, policy VerifyPolicy) (Offer, error) {
	p, err := verify(b, TypeOffer, policy)
	if err != nil {
		return Offer{}, err
	}
	return Offer{
		NodeID: p.NodeID, Leader: p.Leader, Cluster: p.Cluster, Endpoints: p.Endpoints,
		Fingerprint: p.Fingerprint, Certificate: p.Certificate, Timestamp: p.Timestamp,
	}, nil
}

// verify decodes a signed packet that must be of type t and makes the
// checks VerifyOffer documents; the nonce only for an OFFER.
func verify(b []byte, t Type, policy VerifyPolicy) (Packet, error) {
	p, sigOffset, err := decode(b)
	if err != nil {
		return Packet{}, err
	}
	if p.Type != t {
		return Packet{}, fmt.Errorf("%w: a %s, not an %s", ErrMalformed, p.Type, t)
	}
	if t == TypeOffer && p.Nonce != policy.Nonce {
		return Packet{}, ErrNonce
	}
	if sha256.Sum256(p.Certificate) != p.Fingerprint {
		return Packet{}, fmt.Errorf("%w: the certificate's fingerprint is not %s", ErrFingerprint, p.Fingerprint)
	}
	if !policy.Pinned.IsZero() && p.Fingerprint != policy.Pinned {
		return Packet{}, fmt.Errorf("%w: signed by %s, pinned %s", ErrFingerprint, p.Fingerprint, policy.Pinned)
	}
	pub, err := certificateKey(p.Certificate)
	if err != nil {
		return Packet{}, err
	}
	if !ecdsa.VerifyASN1(pub, signedDigest(t, b[:sigOffset]), p.Signature) {
		return Packet{}, fmt.Errorf("%w: on an %s", ErrBadSignature, t)
	}
	if d := p.Timestamp.Sub(policy.Now); d > policy.MaxSkew || d < -policy.MaxSkew {
		return Packet{}, fmt.Errorf("%w: %s from the local clock", ErrStale, d.Round(time.Millisecond))
	}
	return p, nil
}

// certificateKey returns the ECDSA P-256 public key of a DER certificate.
func certificateKey(der []byte) (*ecdsa.PublicKey, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: the key is not ECDSA P-256", ErrBadCertificate)
	}
	return pub, nil
}
