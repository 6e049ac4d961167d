package discovery

import (
	"crypto"
	"io"
	"net/netip"
	"time"
)

// InviteMaxSkew is how far an INVITE's timestamp may be from the device's
// clock, in either direction, for an Answerer to take it. An INVITE answers
// no request, so its timestamp and nonce are what keep a captured one from
// being replayed later.
const InviteMaxSkew = 5 * time.Minute

// SignInvite encodes an INVITE and signs it with signer, the main
// licensing ID, in the context "tally-invite/1", so that neither an OFFER
// nor an INVITE signature passes for the other. p must carry what an OFFER
// carries, plus Device and Secret; p.Signature is ignored and random is
// passed to the signer. The result is at most MaxPacketSize bytes or the
// error is ErrTooLarge.
func SignInvite(p Packet, signer crypto.Signer, random io.Reader) ([]byte, error) {
	p.Type = TypeInvite
	return sign(p, signer, random)
}

// Invitation is a verified INVITE: a server asks the device to onboard at
// its endpoints with a one-time key made for exactly that device.
type Invitation struct {
	// From is the address the INVITE came from.
	From netip.AddrPort
	// Nonce is the INVITE's random nonce, which tells one INVITE from a
	// copy of it.
	Nonce Nonce
	// NodeID is the inviting node; Leader is the node it names as the
	// leader (empty when it knows none). Cluster is the cluster's name, if
	// it has one.
	NodeID, Leader, Cluster string
	// Endpoints are the wss URLs of every node of the cluster.
	Endpoints []Endpoint
	// Fingerprint is the SHA-256 of Certificate, the main licensing ID.
	Fingerprint Fingerprint
	Certificate []byte
	// Timestamp is when the node made the INVITE, by its clock.
	Timestamp time.Time
	// Device is the invited device's ID and Secret the secret of the
	// one-time key, bound to Device, to authenticate with the first time.
	Device HostID
	Secret string
}

// URLs returns the endpoint URLs in the order to try them: the leader's
// first, then the inviting node's, then the others as listed.
func (inv Invitation) URLs() []string { return orderedURLs(inv.Endpoints, inv.Leader, inv.NodeID) }

// VerifyInvite decodes an INVITE and checks it as VerifyOffer checks an
// OFFER, except for the nonce: an INVITE answers no request, so
// policy.Nonce is ignored, and the caller keeps replays out (an Answerer
// remembers the nonces it took). The errors are those of VerifyOffer but
// ErrNonce.
func VerifyInvite(b []byte, policy VerifyPolicy) (Invitation, error) {
	p, err := verify(b, TypeInvite, policy)
	if err != nil {
		return Invitation{}, err
	}
	return Invitation{
		Nonce: p.Nonce, NodeID: p.NodeID, Leader: p.Leader, Cluster: p.Cluster, Endpoints: p.Endpoints,
		Fingerprint: p.Fingerprint, Certificate: p.Certificate, Timestamp: p.Timestamp,
		Device: p.Device, Secret: p.Secret,
	}, nil
}
