package device

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/transport/deviceproto"
)

// ErrConfig is wrapped by NewHandler for an unusable Config.
var ErrConfig = errors.New("invalid device handler config")

// Config configures a Handler.
type Config struct {
	Store core.Store
	// Signer is the licensing identity key (ECDSA P-256) that signs
	// capability responses and pushes.
	Signer crypto.Signer
	// Certificate is the identity's DER certificate, handed to devices in
	// the welcome so that they can verify signatures offline.
	Certificate []byte
	// Fingerprint is the certificate's fingerprint; it must match.
	Fingerprint string
	NodeID      string
	Logger      *slog.Logger
	// Now is the clock for payload times and rate limits; default time.Now.
	Now func() time.Time
	// Random feeds the signer; default crypto/rand.Reader.
	Random io.Reader
	// OnlineChanged, when set, is called when a device comes online on
	// this node (its first connection is admitted) or goes offline (its
	// last one closes, or it is dropped), after Connected says so. It must
	// not block.
	OnlineChanged func()

	// MaxMessageBytes bounds a message from a device; a bigger frame closes
	// the connection with status 1009. Default 64 KiB.
	MaxMessageBytes int64
	// ReadTimeout closes a connection that sends nothing, not even a pong,
	// for this long; the server pings every ReadTimeout/3. Default 90s.
	ReadTimeout time.Duration
	// WriteTimeout bounds each write. Default 10s.
	WriteTimeout time.Duration
	// SendQueue bounds the messages waiting to be written to a connection;
	// a connection whose queue overflows is closed. Default 64.
	SendQueue int
	// MaxConnections bounds the open connections; beyond it the upgrade is
	// refused with HTTP 503. Default 200,000.
	MaxConnections int
	// MaxRate is the messages per second a connection may send, with a
	// burst of one second's worth; beyond it messages are answered with
	// error rate_limited. Default 1,000; negative turns the limit off.
	MaxRate float64
	// MaxInFlight bounds the requests of one connection processed at once.
	// Default 8.
	MaxInFlight int
	// ApplyTimeout bounds the store operations of one request. Default 10s.
	ApplyTimeout time.Duration
	// MaxSignBatch bounds the payloads under one signature. 1 signs every
	// payload on its own. Default 256.
	MaxSignBatch int
	// MaxAuthFailures bounds the refused onboard and authenticate attempts
	// of a connection: the refusal that reaches it closes the connection
	// (status 1008). Each attempt costs a signature verification, and a
	// refused onboard may be a guess at a key secret. Default 5.
	MaxAuthFailures int
	// MaxSourceAuthFailures bounds the refused onboard and authenticate
	// attempts of one source address across its connections; one more is
	// allowed every SourceAuthInterval. Defaults 20 and 15s.
	MaxSourceAuthFailures int
	SourceAuthInterval    time.Duration
	// SignLinger is how long the signer waits for more payloads to share a
	// signature when it has signed within the last SignLinger and holds
	// only one: under load a short wait saves a signature per response,
	// while an idle server signs at once. Default 1ms; negative never waits.
	SignLinger time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.Store == nil {
		return c, fmt.Errorf("%w: no store", ErrConfig)
	}
	if c.Signer == nil {
		return c, fmt.Errorf("%w: no signer", ErrConfig)
	}
	pub, ok := c.Signer.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return c, fmt.Errorf("%w: the signer is not an ECDSA P-256 key", ErrConfig)
	}
	certKey, err := deviceproto.IdentityKey(c.Certificate)
	if err != nil {
		return c, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if !certKey.Equal(pub) {
		return c, fmt.Errorf("%w: the certificate is not for the signer's key", ErrConfig)
	}
	if fp := deviceproto.Fingerprint(c.Certificate); c.Fingerprint == "" {
		c.Fingerprint = fp
	} else if deviceproto.NormalizeFingerprint(c.Fingerprint) != fp {
		return c, fmt.Errorf("%w: fingerprint %s does not match the certificate (%s)", ErrConfig, c.Fingerprint, fp)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Random == nil {
		c.Random = rand.Reader
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 64 << 10
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 90 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 64
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 200_000
	}
	if c.MaxRate == 0 {
		c.MaxRate = 1000
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 8
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = 10 * time.Second
	}
	if c.MaxSignBatch <= 0 {
		c.MaxSignBatch = 256
	}
	if c.MaxAuthFailures <= 0 {
		c.MaxAuthFailures = 5
	}
	if c.MaxSourceAuthFailures <= 0 {
		c.MaxSourceAuthFailures = 20
	}
	if c.SourceAuthInterval <= 0 {
		c.SourceAuthInterval = 15 * time.Second
	}
	if c.SignLinger == 0 {
		c.SignLinger = time.Millisecond
	}
	return c, nil
}
