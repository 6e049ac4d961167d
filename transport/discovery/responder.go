package discovery

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// OfferInfo is what a node tells devices about its cluster. It is read for
// every OFFER, so it follows leadership and membership changes.
type OfferInfo struct {
	// Endpoints are the wss URLs of every node's device protocol.
	Endpoints []Endpoint
	// Cluster is the cluster's name (may be empty).
	Cluster string
	// Leader is the node ID of the current leader, empty when unknown.
	Leader string
	// NodeID is this node's ID.
	NodeID string
}

// Config configures a Responder.
type Config struct {
	// Conn is the socket to serve, bound to UDP 30005 by tallyd. The
	// Responder reads it only in Serve; it never closes it.
	Conn net.PacketConn
	// Signer is the main licensing ID's private key (ECDSA P-256) and
	// Certificate its DER certificate.
	Signer      crypto.Signer
	Certificate []byte
	// Offer returns the current cluster information for an OFFER.
	Offer func() OfferInfo
	// Now is the clock for OFFER timestamps, rate limits and scan progress;
	// time.Now if nil.
	Now func() time.Time
	// Random feeds nonces and signatures; crypto/rand if nil.
	Random io.Reader
	// Logger receives debug and warning records; none if nil.
	Logger *slog.Logger
	// Limits bound the OFFERs sent per source and in total.
	Limits Limits
}

// Responder is the server side of discovery: it answers DISCOVER with a
// signed OFFER, runs scans and online checks, whose answers its Serve loop
// routes to them, and sends signed INVITEs.
type Responder struct {
	cfg         Config
	fingerprint Fingerprint
	limiter     *limiter
	counters    counters

	mu      sync.Mutex
	waiters map[Nonce]waiter
}

// waiter takes the answers to one outstanding request.
type waiter interface {
	// deliver hands over an answer without blocking and reports whether it
	// was taken.
	deliver(p Packet, from netip.AddrPort) bool
}

// NewResponder checks cfg and returns a Responder. The certificate must
// hold the signer's public key.
func NewResponder(cfg Config) (*Responder, error) {
	if cfg.Conn == nil || cfg.Signer == nil || cfg.Offer == nil {
		return nil, fmt.Errorf("%w: a responder needs Conn, Signer and Offer", ErrConfig)
	}
	pub, err := certificateKey(cfg.Certificate)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if !pub.Equal(cfg.Signer.Public()) {
		return nil, fmt.Errorf("%w: the certificate is not the signer's", ErrConfig)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Random == nil {
		cfg.Random = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Responder{
		cfg:         cfg,
		fingerprint: sha256.Sum256(cfg.Certificate),
		limiter:     newLimiter(cfg.Limits, cfg.Now),
		waiters:     map[Nonce]waiter{},
	}, nil
}

// Fingerprint returns the fingerprint of the licensing ID certificate the
// Responder signs with.
func (r *Responder) Fingerprint() Fingerprint { return r.fingerprint }

// WriteMetrics writes the Responder's packet counters in the Prometheus
// text format, with the label role="server".
func (r *Responder) WriteMetrics(w io.Writer) error { return r.counters.write(w, "server") }

// Serve reads packets until ctx ends, when it returns nil, or the socket
// fails. It handles one packet at a time, so its rate limits and counters
// see packets in the order they arrive.
func (r *Responder) Serve(ctx context.Context) error {
	return readLoop(ctx, r.cfg.Conn, r.handle)
}

func (r *Responder) handle(b []byte, from netip.AddrPort) {
	p, err := Decode(b)
	if err != nil {
		r.counters.drop(classify(err))
		r.cfg.Logger.Debug("discovery: dropped a packet", "from", from, "err", err)
		return
	}
	r.counters.received[p.Type].Add(1)
	switch p.Type {
	case TypeDiscover:
		r.answerDiscover(p, len(b), from)
	case TypePresent, TypePong:
		r.mu.Lock()
		w := r.waiters[p.Nonce]
		r.mu.Unlock()
		switch {
		case w == nil:
			r.counters.drop(dropUnexpected)
		case !w.deliver(p, from):
			r.counters.drop(dropOverflow)
		}
	case TypeScan, TypePing:
		r.mu.Lock()
		_, ours := r.waiters[p.Nonce]
		r.mu.Unlock()
		if !ours { // our own broadcasts come back to us; others are not for a server
			r.counters.drop(dropUnexpected)
		}
	default: // OFFER and INVITE are for devices
		r.counters.drop(dropUnexpected)
	}
}

// classify maps a decoding error to its drop reason.
func classify(err error) dropReason {
	if isVersion(err) {
		return dropVersion
	}
	return dropMalformed
}

func (r *Responder) answerDiscover(p Packet, size int, from netip.AddrPort) {
	if from.Port() < minReplyPort {
		r.counters.drop(dropAmplification)
		return
	}
	if !r.limiter.allow(from.Addr()) {
		r.counters.drop(dropRateLimited)
		return
	}
	offer, err := SignOffer(r.signedFields(p.Nonce), r.cfg.Signer, r.cfg.Random)
	if err != nil {
		r.cfg.Logger.Warn("discovery: cannot make an offer", "err", err)
		return
	}
	if !replyAllowed(size, len(offer), from) {
		r.counters.drop(dropAmplification)
		r.cfg.Logger.Debug("discovery: request too small for the offer", "from", from, "request", size, "offer", len(offer))
		return
	}
	if err := send(r.cfg.Conn, &r.counters, TypeOffer, offer, from); err != nil {
		r.cfg.Logger.Debug("discovery: cannot send an offer", "to", from, "err", err)
	}
}

// signedFields returns the fields an OFFER or INVITE shares, with nonce:
// the cluster as it is now and the licensing ID that signs.
func (r *Responder) signedFields(nonce Nonce) Packet {
	info := r.cfg.Offer()
	return Packet{
		Nonce:       nonce,
		Endpoints:   info.Endpoints,
		Cluster:     info.Cluster,
		Leader:      info.Leader,
		NodeID:      info.NodeID,
		Fingerprint: r.fingerprint,
		Certificate: r.cfg.Certificate,
		Timestamp:   r.cfg.Now(),
	}
}

// Invite sends a signed INVITE to the agent at to, asking the device whose
// device ID is device to onboard at this cluster's endpoints with the
// one-time key whose secret is secret. It returns ErrInvalid, and sends
// nothing, for a destination that is no address or has a port below 1024,
// and for a device ID or secret an INVITE cannot carry. Nothing answers an INVITE: the device onboards, or
// not, over the device protocol.
func (r *Responder) Invite(to netip.AddrPort, device HostID, secret string) error {
	switch {
	case !to.IsValid() || to.Port() < minReplyPort:
		return fmt.Errorf("%w: an invitation to %s, not an address with a port of %d or above", ErrInvalid, to, minReplyPort)
	case !validHostID(device):
		return fmt.Errorf("%w: an invitation for the device ID %d %q", ErrInvalid, device.Type, device.Value)
	case !validSecret(secret):
		return fmt.Errorf("%w: a key secret must be %d to %d printable ASCII characters, no space at either end", ErrInvalid, MinSecretLen, MaxSecretLen)
	}
	nonce, err := newNonce(r.cfg.Random)
	if err != nil {
		return err
	}
	p := r.signedFields(nonce)
	p.Device, p.Secret = device, secret
	b, err := SignInvite(p, r.cfg.Signer, r.cfg.Random)
	if err != nil {
		return fmt.Errorf("discovery: make an invitation: %w", err)
	}
	if err := send(r.cfg.Conn, &r.counters, TypeInvite, b, to); err != nil {
		return fmt.Errorf("discovery: send an invitation to %s: %w", to, err)
	}
	return nil
}

// register makes w the taker of answers to nonce, or reports false if the
// nonce is taken.
func (r *Responder) register(n Nonce, w waiter) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, taken := r.waiters[n]; taken {
		return false
	}
	r.waiters[n] = w
	return true
}

func (r *Responder) unregister(ns ...Nonce) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range ns {
		delete(r.waiters, n)
	}
}

// newNonce reads a nonce from random.
func newNonce(random io.Reader) (Nonce, error) {
	var n Nonce
	if _, err := io.ReadFull(random, n[:]); err != nil {
		return n, fmt.Errorf("discovery: read a nonce: %w", err)
	}
	return n, nil
}
