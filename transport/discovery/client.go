package discovery

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"time"
)

// Client defaults.
const (
	// DefaultDiscoverTimeout is how long Discover listens by default.
	DefaultDiscoverTimeout = 3 * time.Second
	// DefaultAttempts is how many times Discover sends its DISCOVER.
	DefaultAttempts = 3
	// DefaultMaxSkew is how far an OFFER's timestamp may be from the
	// device's clock.
	DefaultMaxSkew = 5 * time.Minute
	// maxAnswers bounds the packets one Discover call reads.
	maxAnswers = 4096
)

// ClientConfig configures Discover.
type ClientConfig struct {
	// Conn is the socket to send from and read OFFERs on, normally an
	// unconnected UDP socket on an ephemeral port. Discover does not close
	// it.
	Conn net.PacketConn
	// Targets are where the DISCOVER goes: 255.255.255.255 and each
	// interface's directed broadcast (BroadcastAddrs) and any configured
	// server addresses, each with DefaultPort.
	Targets []netip.AddrPort
	// PinnedFingerprint, if set, is the only licensing ID fingerprint
	// accepted (hex, colons optional).
	PinnedFingerprint string
	// HostIDHint is sent to tell servers which device asks; optional.
	HostIDHint HostID
	// Timeout is how long Discover listens; DefaultDiscoverTimeout if zero.
	Timeout time.Duration
	// Attempts is how many times the DISCOVER is sent, spread over the
	// first half of Timeout; DefaultAttempts if zero.
	Attempts int
	// StopAfter, if above zero, ends Discover as soon as that many answers
	// (verified or rejected) have arrived.
	StopAfter int
	// MaxSkew bounds the distance of an OFFER's timestamp from Now;
	// DefaultMaxSkew if zero.
	MaxSkew time.Duration
	// Now is the device's clock; time.Now if nil.
	Now func() time.Time
	// Random feeds the nonce; crypto/rand if nil.
	Random io.Reader
	// OnReject, if set, is told of each answer that was not a verified
	// OFFER and why.
	OnReject func(from netip.AddrPort, err error)
}

// Discover sends one padded DISCOVER (with one nonce, Attempts times) to
// the targets and collects the OFFERs that answer it until Timeout passes,
// ctx ends or StopAfter answers have come. It returns the verified OFFERs,
// one per node, the leader's first and then in the order they came. When
// none verified it returns ErrNoOffer, wrapping the reason of the last
// rejection if there was one.
func Discover(ctx context.Context, cfg ClientConfig) ([]Offer, error) {
	if cfg.Conn == nil || len(cfg.Targets) == 0 {
		return nil, fmt.Errorf("%w: discover needs Conn and Targets", ErrConfig)
	}
	policy := VerifyPolicy{MaxSkew: cfg.MaxSkew}
	if cfg.PinnedFingerprint != "" {
		var err error
		if policy.Pinned, err = ParseFingerprint(cfg.PinnedFingerprint); err != nil {
			return nil, err
		}
	}
	if policy.MaxSkew <= 0 {
		policy.MaxSkew = DefaultMaxSkew
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultDiscoverTimeout
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Random == nil {
		cfg.Random = rand.Reader
	}
	var err error
	if policy.Nonce, err = newNonce(cfg.Random); err != nil {
		return nil, err
	}
	request, err := EncodeRequest(Packet{Type: TypeDiscover, Nonce: policy.Nonce, HostIDHint: cfg.HostIDHint})
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	sendErr := make(chan error, 1)
	go func() { sendErr <- sendAttempts(ctx, cfg, request) }()

	var (
		offers   []Offer
		answers  int
		lastErr  error
		byNodeID = map[string]bool{}
	)
	reject := func(from netip.AddrPort, err error) {
		lastErr = err
		if cfg.OnReject != nil {
			cfg.OnReject(from, err)
		}
	}
	readErr := readLoop(ctx, cfg.Conn, func(b []byte, from netip.AddrPort) {
		if answers >= maxAnswers {
			cancel()
			return
		}
		answers++
		policy.Now = cfg.Now()
		o, err := VerifyOffer(b, policy)
		switch {
		case err != nil:
			reject(from, err)
		case !byNodeID[o.NodeID]:
			byNodeID[o.NodeID] = true
			o.From = from
			offers = append(offers, o)
		}
		if cfg.StopAfter > 0 && answers >= cfg.StopAfter {
			cancel()
		}
	})
	cancel()
	if err := <-sendErr; err != nil && len(offers) == 0 {
		return nil, fmt.Errorf("discover: %w", err)
	}
	if readErr != nil && len(offers) == 0 {
		return nil, fmt.Errorf("discover: %w", readErr)
	}
	if len(offers) == 0 {
		if lastErr != nil {
			return nil, fmt.Errorf("%w: %d answers rejected, the last: %w", ErrNoOffer, answers, lastErr)
		}
		return nil, ErrNoOffer
	}
	slices.SortStableFunc(offers, func(a, b Offer) int {
		switch {
		case a.IsLeader() == b.IsLeader():
			return 0
		case a.IsLeader():
			return -1
		}
		return 1
	})
	return offers, nil
}

// sendAttempts sends request to every target, Attempts times spread over
// the first half of the timeout. It fails only if no send succeeded.
func sendAttempts(ctx context.Context, cfg ClientConfig, request []byte) error {
	interval := cfg.Timeout / time.Duration(2*cfg.Attempts)
	var (
		anySent bool
		lastErr error
		sink    counters
	)
	for i := range cfg.Attempts {
		if i > 0 {
			t := time.NewTimer(interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		for _, dst := range cfg.Targets {
			if err := send(cfg.Conn, &sink, TypeDiscover, request, dst); err != nil {
				lastErr = fmt.Errorf("send to %s: %w", dst, err)
			} else {
				anySent = true
			}
		}
	}
	if anySent {
		return nil
	}
	return lastErr
}
