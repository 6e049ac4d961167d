package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// inviteMemory is how many INVITE nonces an Answerer remembers to refuse
// replays; an INVITE older than InviteMaxSkew is refused as stale anyway.
const inviteMemory = 64

// PresentInfo is what a device tells a scanning server about itself.
type PresentInfo struct {
	// HostIDs are the device's identities, its device ID first. Those that
	// do not fit a PRESENT are left out from the end.
	HostIDs []HostID
	Alias   string
	// Onboarded tells whether the device is onboarded, and OnboardedWith
	// the licensing ID fingerprint of the server it is onboarded with.
	Onboarded     bool
	OnboardedWith Fingerprint
}

// AnswererConfig configures an Answerer.
type AnswererConfig struct {
	// Conn is the socket to serve, bound to UDP 30005 by `tally-agent
	// listen`. The Answerer never closes it.
	Conn net.PacketConn
	// Present returns the device's current information; it is called for
	// every answer and every INVITE.
	Present func() PresentInfo
	// Invite, if set, is called with each INVITE the Answerer takes: one
	// for a HostID Present returns, whose signature verifies, from a
	// licensing ID Trust accepts, with a timestamp within InviteMaxSkew of
	// Now and a nonce not taken before. It is called on the Serve
	// goroutine, which reads no packet until it returns, so it must return
	// quickly and onboard elsewhere. If nil, INVITEs are dropped as
	// unexpected.
	Invite func(Invitation)
	// Trust reports whether the device follows INVITEs signed by the
	// licensing ID with this fingerprint (its pinned one, say). It is asked
	// only about INVITEs whose signature verified, and must return quickly.
	// Invite needs it.
	Trust func(Fingerprint) bool
	// Now is the clock of the rate limits and of INVITE timestamps;
	// time.Now if nil.
	Now func() time.Time
	// Logger receives debug records; none if nil.
	Logger *slog.Logger
	// Limits bound the answers sent, and the INVITE signatures verified,
	// per source and in total.
	Limits Limits
}

// Answerer is the device side of scans, online checks and invitations:
// it answers SCAN with PRESENT, sent to the scanning server's reply port,
// and PING with PONG, and hands the INVITEs it takes to its Invite
// callback.
type Answerer struct {
	cfg      AnswererConfig
	limiter  *limiter
	counters counters
	invites  recentNonces
}

// NewAnswerer checks cfg and returns an Answerer.
func NewAnswerer(cfg AnswererConfig) (*Answerer, error) {
	if cfg.Conn == nil || cfg.Present == nil {
		return nil, fmt.Errorf("%w: an answerer needs Conn and Present", ErrConfig)
	}
	if cfg.Invite != nil && cfg.Trust == nil {
		return nil, fmt.Errorf("%w: an answerer that takes invitations needs Trust", ErrConfig)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Answerer{cfg: cfg, limiter: newLimiter(cfg.Limits, cfg.Now)}, nil
}

// WriteMetrics writes the Answerer's packet counters in the Prometheus
// text format, with the label role="agent".
func (a *Answerer) WriteMetrics(w io.Writer) error { return a.counters.write(w, "agent") }

// Serve reads packets until ctx ends, when it returns nil, or the socket
// fails.
func (a *Answerer) Serve(ctx context.Context) error {
	return readLoop(ctx, a.cfg.Conn, a.handle)
}

func (a *Answerer) handle(b []byte, from netip.AddrPort) {
	p, err := Decode(b)
	if err != nil {
		a.counters.drop(classify(err))
		a.cfg.Logger.Debug("discovery: dropped a packet", "from", from, "err", err)
		return
	}
	a.counters.received[p.Type].Add(1)
	var dst netip.AddrPort
	switch p.Type {
	case TypeScan:
		dst = netip.AddrPortFrom(from.Addr(), p.ReplyPort)
	case TypePing:
		dst = from
	case TypeInvite:
		a.takeInvite(p.Device, b, from)
		return
	default:
		a.counters.drop(dropUnexpected)
		return
	}
	if dst.Port() < minReplyPort {
		a.counters.drop(dropAmplification)
		return
	}
	if !a.limiter.allow(from.Addr()) {
		a.counters.drop(dropRateLimited)
		return
	}
	info := a.cfg.Present()
	reply, t, err := a.reply(p, info)
	if err != nil {
		a.cfg.Logger.Warn("discovery: cannot answer", "type", p.Type, "err", err)
		return
	}
	if !replyAllowed(len(b), len(reply), dst) {
		a.counters.drop(dropAmplification)
		return
	}
	if err := send(a.cfg.Conn, &a.counters, t, reply, dst); err != nil {
		a.cfg.Logger.Debug("discovery: cannot send an answer", "to", dst, "err", err)
	}
}

// reply encodes the answer to a SCAN or PING.
func (a *Answerer) reply(p Packet, info PresentInfo) ([]byte, Type, error) {
	if p.Type == TypePing {
		if len(info.HostIDs) == 0 {
			return nil, 0, fmt.Errorf("%w: no device ID to answer a ping with", ErrConfig)
		}
		b, err := Encode(Packet{Type: TypePong, Nonce: p.Nonce, DeviceID: info.HostIDs[0]})
		return b, TypePong, err
	}
	ids := info.HostIDs[:min(len(info.HostIDs), MaxHostIDs)]
	for {
		b, err := Encode(Packet{Type: TypePresent, Nonce: p.Nonce, HostIDs: ids, Alias: info.Alias,
			Onboarded: info.Onboarded || !info.OnboardedWith.IsZero(), OnboardedWith: info.OnboardedWith})
		if err == nil || len(ids) <= 1 {
			return b, TypePresent, err
		}
		ids = ids[:len(ids)-1]
	}
}

// takeInvite hands an INVITE to cfg.Invite if it passes the checks
// AnswererConfig.Invite lists. The cheap check comes first, and the
// signature is verified only within the rate limits, so that a flood of
// INVITEs bounds the verifying work; a nonce is remembered only once the
// INVITE is taken, so that forgeries cannot push genuine nonces out.
func (a *Answerer) takeInvite(device HostID, b []byte, from netip.AddrPort) {
	if a.cfg.Invite == nil || !slices.Contains(a.cfg.Present().HostIDs, device) {
		a.counters.drop(dropUnexpected)
		return
	}
	if !a.limiter.allow(from.Addr()) {
		a.counters.drop(dropRateLimited)
		return
	}
	inv, err := VerifyInvite(b, VerifyPolicy{Now: a.cfg.Now(), MaxSkew: InviteMaxSkew})
	var reason dropReason
	switch {
	case errors.Is(err, ErrStale):
		reason = dropStale
	case err != nil:
		reason = dropUntrusted
	case !a.cfg.Trust(inv.Fingerprint):
		reason, err = dropUntrusted, fmt.Errorf("licensing ID %s is not trusted", inv.Fingerprint)
	case !a.invites.add(inv.Nonce):
		reason, err = dropReplay, errors.New("nonce taken before")
	default:
		inv.From = from
		a.cfg.Invite(inv)
		return
	}
	a.counters.drop(reason)
	a.cfg.Logger.Debug("discovery: dropped an invitation", "from", from, "err", err)
}

// recentNonces remembers the last inviteMemory nonces added.
type recentNonces struct {
	mu    sync.Mutex
	ring  [inviteMemory]Nonce
	added int
}

// add remembers n and reports whether it was not remembered already.
func (r *recentNonces) add(n Nonce) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Contains(r.ring[:min(r.added, len(r.ring))], n) {
		return false
	}
	r.ring[r.added%len(r.ring)] = n
	r.added++
	return true
}
