package deviceproto

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Errors of the Client.
var (
	// ErrClosed is returned for requests on a closed connection.
	ErrClosed = errors.New("connection closed")
	// ErrProtocol is wrapped when the server breaks the protocol: an
	// unexpected reply, a payload for another device or request.
	ErrProtocol = errors.New("protocol violation")
	// ErrFingerprint is wrapped when the server's identity certificate does
	// not have the pinned fingerprint.
	ErrFingerprint = errors.New("identity fingerprint mismatch")
	// ErrNoDeviceKey is returned by Onboard and Authenticate when the
	// ClientConfig has no Key.
	ErrNoDeviceKey = errors.New("no device key configured")
)

// ClientConfig configures Dial.
type ClientConfig struct {
	// TLS configures the TLS connection (root CAs, or a pinned certificate
	// check through VerifyConnection). Nil uses the system roots.
	TLS *tls.Config
	// Header is sent with the WebSocket handshake.
	Header http.Header
	// NetDialContext, when set, opens the TCP connection (e.g. from a
	// chosen local address, as the benchmark of idle devices does); nil
	// uses net.Dialer.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Hello is what the device says about itself. Protocol is filled in
	// when empty.
	Hello Hello
	// VerifyFingerprint, when set, pins the licensing identity: the
	// certificate in the welcome must have this fingerprint.
	VerifyFingerprint string
	// SkipSignatureCheck accepts capability responses and pushes without
	// checking their signatures. It is meant for load generators that
	// measure the server, never for devices.
	SkipSignatureCheck bool
	// HandshakeTimeout bounds the WebSocket handshake; default 10s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds each write; a write that times out ends the
	// connection. Default 10s.
	WriteTimeout time.Duration
	// MaxMessageBytes bounds a message from the server; default 1 MiB.
	MaxMessageBytes int64
	// PushBuffer is how many pushes wait in Pushes; default 64. When it is
	// full further pushes are dropped (Status tells the current leases).
	PushBuffer int
	// Key is the device's own key (ECDSA P-256 or ed25519.PrivateKey; see
	// GenerateDeviceKey and ParseDeviceKey). Onboard presents its public
	// half, and Dial authenticates with it when the welcome says the
	// device is onboarded.
	Key crypto.Signer
	// ManualAuthentication stops Dial from authenticating: the caller
	// calls Authenticate or Onboard itself (e.g. to onboard again with a
	// new key).
	ManualAuthentication bool
}

// identity is what the welcome told the client.
type identity struct {
	welcome Welcome
	key     *ecdsa.PublicKey
}

// CapabilityResponse is a verified capabilityResponse or leaseChanged push:
// the decoded payload and the signed form to keep for offline checks.
type CapabilityResponse struct {
	Payload
	Signed Signed
}

// LeaseChanged is a verified leaseChanged push.
type LeaseChanged = CapabilityResponse

// Client is a device's connection to a Tally server. Its methods are safe
// for concurrent use; requests are multiplexed over the one connection by
// ID, so several may be in flight at once.
type Client struct {
	cfg ClientConfig
	ws  *websocket.Conn
	// id is set once the welcome is checked; the read loop may look at it
	// before Dial returns.
	id atomic.Pointer[identity]

	writeMu sync.Mutex
	nextID  atomic.Uint64

	mu      sync.Mutex
	waiters map[uint64]chan reply
	err     error // why the connection ended

	authenticated atomic.Bool

	pushes    chan LeaseChanged
	dropped   atomic.Uint64
	done      chan struct{}
	closeOnce sync.Once
}

// Dial connects to url (wss://host:port/ws/device), says hello and checks
// the welcome: the protocol, the identity certificate and, when pinned, its
// fingerprint. When the welcome says the device is onboarded and a Key is
// configured, it authenticates (unless ManualAuthentication); a refusal is
// returned as *Error with code auth_failed.
func Dial(ctx context.Context, url string, cfg ClientConfig) (*Client, error) {
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 1 << 20
	}
	if cfg.PushBuffer <= 0 {
		cfg.PushBuffer = 64
	}
	if cfg.Hello.Protocol == "" {
		cfg.Hello.Protocol = Protocol
	}
	d := websocket.Dialer{
		TLSClientConfig:  cfg.TLS,
		HandshakeTimeout: cfg.HandshakeTimeout,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		Proxy:            http.ProxyFromEnvironment,
		NetDialContext:   cfg.NetDialContext,
	}
	ws, resp, err := d.DialContext(ctx, url, cfg.Header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("connect to %s: %w (HTTP %s)", url, err, resp.Status)
		}
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	ws.SetReadLimit(cfg.MaxMessageBytes)
	c := &Client{
		cfg:     cfg,
		ws:      ws,
		waiters: map[uint64]chan reply{},
		pushes:  make(chan LeaseChanged, cfg.PushBuffer),
		done:    make(chan struct{}),
	}
	go c.readLoop()
	var w Welcome
	if err := c.call(ctx, TypeHello, cfg.Hello, TypeWelcome, &w); err != nil {
		c.Close()
		return nil, err
	}
	key, err := c.checkWelcome(&w)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.id.Store(&identity{welcome: w, key: key})
	if w.Onboarded && cfg.Key != nil && !cfg.ManualAuthentication {
		if err := c.Authenticate(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (c *Client) checkWelcome(w *Welcome) (*ecdsa.PublicKey, error) {
	if w.Protocol != Protocol {
		return nil, fmt.Errorf("%w: server speaks %q, not %q", ErrProtocol, w.Protocol, Protocol)
	}
	if got := Fingerprint(w.Certificate); got != w.Fingerprint {
		return nil, fmt.Errorf("%w: the welcome names fingerprint %s but its certificate has %s", ErrFingerprint, w.Fingerprint, got)
	}
	if c.cfg.VerifyFingerprint != "" && NormalizeFingerprint(c.cfg.VerifyFingerprint) != w.Fingerprint {
		return nil, fmt.Errorf("%w: server identity is %s, pinned %s", ErrFingerprint, w.Fingerprint, NormalizeFingerprint(c.cfg.VerifyFingerprint))
	}
	return IdentityKey(w.Certificate)
}

// Welcome returns the server's welcome.
func (c *Client) Welcome() Welcome { return c.id.Load().welcome }

// IdentityKey returns the key that signs the server's payloads.
func (c *Client) IdentityKey() *ecdsa.PublicKey { return c.id.Load().key }

// Authenticated reports whether the connection has authenticated or
// onboarded.
func (c *Client) Authenticated() bool { return c.authenticated.Load() }

// Onboard onboards the device with the secret of a first-authentication
// key: it presents the public half of the configured Key and proves that
// it holds the private half. It returns the device ID (the hostid value in
// the server's canonical form). Afterwards the connection is authenticated
// and every later connection must authenticate with the same Key. A
// refusal is returned as *Error (unknown_key, key_inactive, key_used,
// invalid_key or auth_failed).
func (c *Client) Onboard(ctx context.Context, secret string) (device string, err error) {
	if c.cfg.Key == nil {
		return "", ErrNoDeviceKey
	}
	w := c.Welcome()
	if err := checkChallenge(w); err != nil {
		return "", err
	}
	pub, err := MarshalDevicePublicKey(c.cfg.Key.Public())
	if err != nil {
		return "", err
	}
	sig, err := SignChallenge(c.cfg.Key, rand.Reader, OnboardDigest(w.Challenge, w.Certificate))
	if err != nil {
		return "", err
	}
	var res Onboarded
	if err := c.call(ctx, TypeOnboard, Onboard{Key: secret, PublicKey: pub, Signature: sig}, TypeOnboarded, &res); err != nil {
		return "", err
	}
	if res.Device != w.Device {
		return "", fmt.Errorf("%w: onboarded device %s, not %s", ErrProtocol, res.Device, w.Device)
	}
	c.authenticated.Store(true)
	return res.Device.Value, nil
}

func checkChallenge(w Welcome) error {
	if len(w.Challenge) != ChallengeSize {
		return fmt.Errorf("%w: the welcome has a challenge of %d bytes, want %d", ErrProtocol, len(w.Challenge), ChallengeSize)
	}
	return nil
}

// Authenticate proves to the server that the device holds the Key it
// onboarded with. Dial does this by itself unless ManualAuthentication.
func (c *Client) Authenticate(ctx context.Context) error {
	if c.cfg.Key == nil {
		return ErrNoDeviceKey
	}
	w := c.Welcome()
	if err := checkChallenge(w); err != nil {
		return err
	}
	sig, err := SignChallenge(c.cfg.Key, rand.Reader, AuthDigest(w.Challenge, w.Certificate))
	if err != nil {
		return err
	}
	var res Authenticated
	if err := c.call(ctx, TypeAuthenticate, Authenticate{Signature: sig}, TypeAuthenticated, &res); err != nil {
		return err
	}
	if res.Device != w.Device {
		return fmt.Errorf("%w: authenticated device %s, not %s", ErrProtocol, res.Device, w.Device)
	}
	c.authenticated.Store(true)
	return nil
}

// Checkout asks for the features at the given counts (the counts to hold,
// see FeatureRequest) and returns the verified response. Denials are part
// of the response, not errors.
func (c *Client) Checkout(ctx context.Context, features ...FeatureRequest) (*CapabilityResponse, error) {
	return c.capability(ctx, TypeCapabilityRequest, CapabilityRequest{Features: features})
}

// Renew extends the leases on the features at the given counts.
func (c *Client) Renew(ctx context.Context, features ...FeatureRequest) (*CapabilityResponse, error) {
	return c.capability(ctx, TypeRenew, CapabilityRequest{Features: features})
}

// Return gives the features back; the response grants them with count 0.
func (c *Client) Return(ctx context.Context, features ...FeatureRef) (*CapabilityResponse, error) {
	return c.capability(ctx, TypeReturn, ReturnRequest{Features: features})
}

// Status returns the leases the server records for the device.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	if err := c.call(ctx, TypeStatus, StatusRequest{}, TypeStatus, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Pushes delivers verified leaseChanged pushes. It is closed when the
// connection ends.
func (c *Client) Pushes() <-chan LeaseChanged { return c.pushes }

// DroppedPushes counts pushes dropped because Pushes was full or did not
// verify.
func (c *Client) DroppedPushes() uint64 { return c.dropped.Load() }

// Done is closed when the connection has ended; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection with a normal close frame.
func (c *Client) Close() error {
	c.writeMu.Lock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	c.writeMu.Unlock()
	c.shutdown(ErrClosed)
	<-c.done
	return nil
}

func (c *Client) capability(ctx context.Context, typ string, body any) (*CapabilityResponse, error) {
	id, rep, err := c.exchange(ctx, typ, body)
	if err != nil {
		return nil, err
	}
	if rep.env.Type != TypeCapabilityResponse {
		return nil, fmt.Errorf("%w: %s answered with %s", ErrProtocol, typ, rep.env.Type)
	}
	return c.openSigned(rep, id)
}

// openSigned decodes and verifies the signed body of rep meant for request id (0 for
// a push).
func (c *Client) openSigned(rep reply, id uint64) (*CapabilityResponse, error) {
	who := c.id.Load()
	if who == nil {
		return nil, fmt.Errorf("%w: signed payload before the welcome", ErrProtocol)
	}
	var s Signed
	if rep.signed != nil {
		s = *rep.signed
	} else if err := json.Unmarshal(rep.env.Body, &s); err != nil {
		return nil, fmt.Errorf("%w: signed body: %w", ErrProtocol, err)
	}
	if !c.cfg.SkipSignatureCheck {
		if err := Verify(who.key, s); err != nil {
			return nil, err
		}
	}
	p, ok := readPayload(s.Payload)
	if !ok {
		if err := json.Unmarshal(s.Payload, &p); err != nil {
			return nil, fmt.Errorf("%w: payload: %w", ErrProtocol, err)
		}
	}
	if p.Device != who.welcome.Device {
		return nil, fmt.Errorf("%w: payload for device %s, not %s", ErrProtocol, p.Device, who.welcome.Device)
	}
	if p.RequestID != id {
		return nil, fmt.Errorf("%w: payload answers request %d, not %d", ErrProtocol, p.RequestID, id)
	}
	return &CapabilityResponse{Payload: p, Signed: s}, nil
}

// call sends a request and decodes a reply of type want into out.
func (c *Client) call(ctx context.Context, typ string, body any, want string, out any) error {
	_, env, err := c.roundTrip(ctx, typ, body)
	if err != nil {
		return err
	}
	if env.Type != want {
		return fmt.Errorf("%w: %s answered with %s", ErrProtocol, typ, env.Type)
	}
	if err := json.Unmarshal(env.Body, out); err != nil {
		return fmt.Errorf("%w: %s body: %w", ErrProtocol, want, err)
	}
	return nil
}

// reply is a message answering a request: its envelope and, when the
// client read a signed body on the way (readSigned), that body, and then
// the envelope has no Body.
type reply struct {
	env    Envelope
	signed *Signed
}

// roundTrip sends a request and waits for its reply.
func (c *Client) roundTrip(ctx context.Context, typ string, body any) (uint64, Envelope, error) {
	id, rep, err := c.exchange(ctx, typ, body)
	return id, rep.env, err
}

// exchange sends a request and waits for its reply; a server error is
// returned as *Error.
func (c *Client) exchange(ctx context.Context, typ string, body any) (uint64, reply, error) {
	id := c.nextID.Add(1)
	msg, ok := appendRequest(nil, typ, id, body)
	if !ok {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, reply{}, fmt.Errorf("encode %s: %w", typ, err)
		}
		if msg, err = json.Marshal(Envelope{Type: typ, ID: id, Body: raw}); err != nil {
			return 0, reply{}, fmt.Errorf("encode %s: %w", typ, err)
		}
	}
	wait := make(chan reply, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, reply{}, err
	}
	c.waiters[id] = wait
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.waiters, id)
		c.mu.Unlock()
	}

	// The write has its own deadline: a context that ends mid-frame would
	// leave the connection unusable; the context bounds the wait instead.
	c.writeMu.Lock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	err := c.ws.WriteMessage(websocket.TextMessage, msg)
	c.writeMu.Unlock()
	if err != nil {
		forget()
		c.shutdown(fmt.Errorf("%w: write: %w", ErrClosed, err))
		return 0, reply{}, fmt.Errorf("send %s: %w", typ, err)
	}
	select {
	case rep := <-wait:
		return answer(id, rep)
	case <-ctx.Done():
		forget()
		return 0, reply{}, ctx.Err()
	case <-c.done:
		// The reply, an error included (the server's refusal that came
		// with the close), may have arrived just before the end.
		select {
		case rep := <-wait:
			return answer(id, rep)
		default:
		}
		return 0, reply{}, c.Err()
	}
}

// answer returns the reply to request id, or the server's error in it.
func answer(id uint64, rep reply) (uint64, reply, error) {
	if rep.env.Type != TypeError {
		return id, rep, nil
	}
	e := &Error{}
	if err := json.Unmarshal(rep.env.Body, e); err != nil {
		return 0, reply{}, fmt.Errorf("%w: error body: %w", ErrProtocol, err)
	}
	return 0, reply{}, e
}

// readLoop dispatches replies to their waiters and pushes to Pushes.
func (c *Client) readLoop() {
	var err error
	// buf holds one message at a time: nothing read from it keeps a
	// reference to its bytes (encoding/json copies the body; readSigned's
	// body is dropped, the signed body decoded from it is what is used).
	var buf bytes.Buffer
	for {
		var r io.Reader
		buf.Reset()
		if _, r, err = c.ws.NextReader(); err == nil {
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			break
		}
		data := buf.Bytes()
		var rep reply
		if env, signed, ok := readSigned(data); ok {
			env.Body = nil
			rep = reply{env: env, signed: &signed}
		} else if jerr := json.Unmarshal(data, &rep.env); jerr != nil {
			err = fmt.Errorf("%w: %w", ErrProtocol, jerr)
			break
		}
		if rep.env.ID == 0 {
			c.handlePush(rep)
			continue
		}
		c.mu.Lock()
		w := c.waiters[rep.env.ID]
		delete(c.waiters, rep.env.ID)
		c.mu.Unlock()
		if w != nil {
			w <- rep
		}
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		err = fmt.Errorf("%w by the server: %w", ErrClosed, ce)
	} else {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	c.shutdown(err)
	close(c.pushes)
	close(c.done)
}

func (c *Client) handlePush(rep reply) {
	if rep.env.Type != TypeLeaseChanged || bytes.Equal(rep.env.Body, []byte("null")) {
		return // an error that belongs to no request, e.g. for a frame the server could not read
	}
	lc, err := c.openSigned(rep, 0)
	if err != nil {
		c.dropped.Add(1)
		return
	}
	select {
	case c.pushes <- *lc:
	default:
		c.dropped.Add(1)
	}
}

// shutdown records why the connection ended and closes it; the read loop
// then fails the waiters.
func (c *Client) shutdown(err error) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		c.ws.Close()
	})
}
